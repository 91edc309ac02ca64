"""Loading classification datasets (targets and benchmarks) and inferring their columns.

A dataset is named by a string, the *spec*:

* a Hugging Face Hub dataset id with an optional config, ``ID`` or ``ID:CONFIG``
  (``imdb``, ``nyu-mll/glue:sst2``), loaded with :func:`datasets.load_dataset`;
* or a local path: a :meth:`datasets.Dataset.save_to_disk` folder, a folder of parquet, csv, tsv,
  json/jsonl or arrow files (split names come from the file names, ``train.parquet``,
  ``validation.parquet``, ``test.parquet`` ...), or one such file (which becomes the train split).
  A local path that exists always wins over ``ID:CONFIG`` parsing; ``FOLDER:CONFIG`` picks a config
  of a local folder whose README card declares several.

Dataset loading scripts are never run (``trust_remote_code`` is never enabled).

The *key* of a dataset (:attr:`DatasetSpec.name`, the name under which the model repository stores
results) is ``ID`` or ``ID:CONFIG`` for a Hub dataset (``nyu-mll/glue:sst2``); for a local folder it
is the folder's name (``zoo/datasets/sst2-tiny`` -> ``sst2-tiny``), for a local file the file's name
without its extension (``data/reviews.csv`` -> ``reviews``), with ``:CONFIG`` appended when a
config is given. The same data loaded from a local folder and from a Hub repository thus have
different keys.

Columns are inferred (:func:`infer_columns`) unless given: the text column (one, or a pair such as
premise/hypothesis), the label column (a ``ClassLabel``, or integers/strings/booleans mapped to
class ids, sorted for determinism) and, for image classification, an ``Image`` column. Loaded data
are normalised (:func:`load_classification_dataset`) to exactly three splits, ``train``,
``validation`` and ``test``, holding the text (or image) columns and ``label`` (a ``ClassLabel`` of
int ids). A split the dataset lacks, or one without labels (label -1 everywhere, like GLUE's test
splits), is carved from train with a seeded, deterministic permutation.
"""

from hfselect.data.classification import (
    SPLIT_NAMES,
    ClassificationData,
    hash_rows,
    load_classification_dataset,
)
from hfselect.data.columns import ColumnInfo, infer_columns
from hfselect.data.preprocessing import preprocess_for_model
from hfselect.data.sampling import load_target_sample
from hfselect.data.spec import DatasetSpec, dataset_key, expand_dataset_specs

__all__ = [
    "SPLIT_NAMES",
    "ClassificationData",
    "ColumnInfo",
    "DatasetSpec",
    "dataset_key",
    "expand_dataset_specs",
    "hash_rows",
    "infer_columns",
    "load_classification_dataset",
    "load_target_sample",
    "preprocess_for_model",
]
