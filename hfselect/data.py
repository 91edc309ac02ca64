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

from __future__ import annotations

import hashlib
import inspect
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import datasets
import numpy as np
import pyarrow as pa

from hfselect.errors import DatasetError

__all__ = [
    "SPLIT_NAMES",
    "ClassificationData",
    "ColumnInfo",
    "DatasetSpec",
    "dataset_key",
    "expand_dataset_specs",
    "infer_columns",
    "load_classification_dataset",
    "load_target_sample",
    "preprocess_for_model",
]

#: The splits of a normalised :class:`ClassificationData`, in order.
SPLIT_NAMES: tuple[str, str, str] = ("train", "validation", "test")

# Names that identify each role of a split, in order of preference (those of datasets' own
# split inference, so ``dev.csv`` and ``valid.parquet`` are validation splits).
_SPLIT_ALIASES: dict[str, tuple[str, ...]] = {
    "train": ("train", "training"),
    "validation": ("validation", "valid", "dev", "val"),
    "test": ("test", "testing", "eval", "evaluation"),
}

# Fractions of train carved into each missing evaluation split.
_CARVE_FRACTION = 0.1

_DATA_EXTENSIONS: dict[str, tuple[str, dict[str, Any]]] = {
    ".parquet": ("parquet", {}),
    ".csv": ("csv", {}),
    ".tsv": ("csv", {"sep": "\t"}),
    ".json": ("json", {}),
    ".jsonl": ("json", {}),
    ".ndjson": ("json", {}),
    ".arrow": ("arrow", {}),
}

_LABEL_PRIMARY = ("label", "labels")
_LABEL_CANDIDATES = (
    "class",
    "class_label",
    "target",
    "category",
    "sentiment",
    "intent",
    "coarse_label",
    "fine_label",
    "y",
)
_TEXT_PAIRS: tuple[tuple[str, str], ...] = (
    ("premise", "hypothesis"),
    ("sentence1", "sentence2"),
    ("question1", "question2"),
    ("question", "sentence"),
    ("question", "passage"),
    ("question", "context"),
    ("query", "passage"),
    ("query", "document"),
    ("text1", "text2"),
    ("text_a", "text_b"),
    ("sentence_a", "sentence_b"),
    ("text", "text_pair"),
    ("claim", "evidence"),
)
_TEXT_SINGLES = (
    "text",
    "sentence",
    "content",
    "review",
    "review_text",
    "document",
    "tweet",
    "utterance",
    "comment",
    "question",
    "title",
    "body",
    "input",
    "prompt",
    "passage",
    "query",
)
_ID_LIKE = frozenset({"id", "idx", "uid", "uuid", "guid", "index", "key"})
_IMAGE_NAMES = ("image", "img", "picture", "photo")

_HUB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")
_CONFIG_RE = re.compile(r"^[^\s:/\\]+$")


# --------------------------------------------------------------------------------------------------
# Dataset specs
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetSpec:
    """A parsed dataset spec: a Hub id with an optional config, or a local path.

    Attributes:
        path: The Hub dataset id (``nyu-mll/glue``) or the local path (normalised, ``~`` expanded).
        config: The config name (``sst2``) or ``None``.
        is_local: Whether ``path`` is a local file or folder.
    """

    path: str
    config: str | None = None
    is_local: bool = False

    @classmethod
    def parse(cls, spec: str) -> DatasetSpec:
        """Parses ``ID``, ``ID:CONFIG``, ``PATH`` or ``PATH:CONFIG``.

        A local path that exists wins over ``ID:CONFIG`` parsing (a folder may contain ``:``).
        A spec that looks like a path (starts with ``/``, ``.`` or ``~``, ends with a data file
        extension, or has more than one ``/``) but does not exist is an error, as is a string that
        is neither an existing path nor a valid Hub id.

        Raises:
            DatasetError: The spec is empty, a missing local path or not a valid Hub id.
        """
        if not isinstance(spec, str) or not spec.strip():
            raise DatasetError("empty dataset name: give a Hub dataset id (ID or ID:CONFIG) or a local path")
        text = spec.strip()
        expanded = os.path.expanduser(text)
        if os.path.exists(expanded):
            return cls(path=os.path.normpath(expanded), config=None, is_local=True)
        head, sep, tail = text.rpartition(":")
        if sep and head and tail:
            head_expanded = os.path.expanduser(head)
            if os.path.exists(head_expanded):
                if not _CONFIG_RE.match(tail):
                    raise DatasetError(f"dataset '{text}': '{tail}' is not a valid config name")
                return cls(path=os.path.normpath(head_expanded), config=tail, is_local=True)
            if _HUB_ID_RE.match(head) and _CONFIG_RE.match(tail) and not _looks_like_path(head):
                return cls(path=head, config=tail, is_local=False)
        if _HUB_ID_RE.match(text) and not _looks_like_path(text):
            return cls(path=text, config=None, is_local=False)
        if _looks_like_path(text):
            raise DatasetError(f"dataset '{text}': local path '{expanded}' does not exist")
        raise DatasetError(
            f"dataset '{text}' is neither an existing local path nor a valid Hub dataset id (ID or ID:CONFIG)"
        )

    @property
    def name(self) -> str:
        """The dataset's key: ``ID[:CONFIG]`` for the Hub, the folder name (file name without
        extension) for a local path, with ``:CONFIG`` appended when a config is given."""
        if self.is_local:
            p = Path(os.path.abspath(self.path))
            base = p.stem if p.is_file() or p.suffix.lower() in _DATA_EXTENSIONS else p.name
            base = base or str(p)
        else:
            base = self.path
        return f"{base}:{self.config}" if self.config else base

    def __str__(self) -> str:
        return f"{self.path}:{self.config}" if self.config else self.path


def dataset_key(spec: str | DatasetSpec) -> str:
    """The key under which results for ``spec`` are stored (see :attr:`DatasetSpec.name`)."""
    return _as_spec(spec).name


def _as_spec(spec: str | DatasetSpec) -> DatasetSpec:
    return spec if isinstance(spec, DatasetSpec) else DatasetSpec.parse(spec)


def _looks_like_path(text: str) -> bool:
    if text.startswith(("/", ".", "~")) or text.count("/") > 1 or "\\" in text:
        return True
    return os.path.splitext(text)[1].lower() in (*_DATA_EXTENSIONS, ".txt")


def _has_data_files(folder: Path) -> bool:
    for _root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith((".", "_"))]
        if any(os.path.splitext(f)[1].lower() in _DATA_EXTENSIONS for f in files if not f.startswith(".")):
            return True
    return False


def _is_saved_dataset(folder: Path) -> bool:
    return (folder / "dataset_dict.json").is_file() or (
        (folder / "state.json").is_file() and (folder / "dataset_info.json").is_file()
    )


def _card_declares_data(readme: Path) -> bool:
    """Whether a README card's YAML header declares configs or features (a Hub-style dataset)."""
    try:
        text = readme.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    if not text.startswith("---"):
        return False
    header = text[3:].split("\n---", 1)[0]
    return re.search(r"^(configs|dataset_info)\s*:", header, flags=re.MULTILINE) is not None


def _is_dataset_dir(folder: Path) -> bool:
    """Whether ``folder`` itself is one dataset (rather than a folder of datasets)."""
    if _is_saved_dataset(folder) or _card_declares_data(folder / "README.md"):
        return True
    try:
        entries = list(folder.iterdir())
    except OSError:
        return False
    split_names = {alias for aliases in _SPLIT_ALIASES.values() for alias in aliases} | {"data"}
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_file() and entry.suffix.lower() in _DATA_EXTENSIONS:
            return True
        if entry.is_dir() and entry.name.lower() in split_names:
            return True
    return False


def expand_dataset_specs(specs: Iterable[str]) -> list[str]:
    """Expands local folders that hold several datasets into one spec per dataset.

    A local folder that is not itself a dataset (no data files or split folders at its top, not a
    ``save_to_disk`` folder, no README card declaring configs or features) but whose sub-folders are datasets, like a zoo's
    ``datasets/`` folder with one folder per dataset, becomes the paths of those sub-folders,
    sorted by name. Every other spec (Hub ids, dataset folders, files) passes through unchanged.
    Duplicates are dropped, keeping the first occurrence.
    """
    out: list[str] = []
    seen: set[str] = set()

    def add(item: str) -> None:
        if item not in seen:
            seen.add(item)
            out.append(item)

    for spec in specs:
        folder = Path(os.path.expanduser(spec.strip()))
        if folder.is_dir() and not _is_dataset_dir(folder):
            children = sorted(
                (c for c in folder.iterdir() if c.is_dir() and not c.name.startswith(".")),
                key=lambda c: c.name,
            )
            members = [c for c in children if _is_dataset_dir(c) or _has_data_files(c)]
            if members:
                for child in members:
                    add(os.path.join(spec.strip(), child.name))
                continue
        add(spec)
    return out


# --------------------------------------------------------------------------------------------------
# Column inference
# --------------------------------------------------------------------------------------------------


class _Inputs:
    """What a model reads, for anything with ``text_columns`` and ``image_column``."""

    text_columns: list[str]
    image_column: str | None

    @property
    def modality(self) -> Literal["text", "image"]:
        """``"image"`` when there is an image column, else ``"text"``."""
        return "image" if self.image_column is not None else "text"

    @property
    def input_columns(self) -> list[str]:
        """The model's input columns: the image column, or the text columns."""
        return [self.image_column] if self.image_column is not None else list(self.text_columns)


@dataclass
class ColumnInfo(_Inputs):
    """The columns of a classification dataset.

    Attributes:
        text_columns: One text column, or two for a pair task (``[]`` for images).
        label_column: The label column.
        image_column: The ``Image`` column for image classification, else ``None``.
        label_names: The class names in id order, when known (always set on the info returned by
            :func:`load_target_sample`; from :func:`infer_columns` only for ``ClassLabel`` columns).
    """

    text_columns: list[str]
    label_column: str
    image_column: str | None = None
    label_names: list[str] | None = None


def _is_string(feature: Any) -> bool:
    return isinstance(feature, datasets.Value) and feature.dtype in ("string", "large_string")


def _is_label_type(feature: Any) -> bool:
    if isinstance(feature, datasets.ClassLabel):
        return True
    return isinstance(feature, datasets.Value) and (
        feature.dtype in ("string", "large_string", "bool")
        or feature.dtype.startswith(("int", "uint", "float"))
    )


def _describe_columns(features: datasets.Features) -> str:
    return ", ".join(features) if features else "none"


def infer_columns(
    features: datasets.Features,
    *,
    text_columns: Sequence[str] | None = None,
    label_column: str | None = None,
    dataset: str = "dataset",
) -> ColumnInfo:
    """Infers the text (or image) and label columns of a classification dataset.

    Label: ``label_column`` if given; else a column named ``label``/``labels``; else the first
    ``ClassLabel`` column; else a column with a usual label name (``class``, ``target``,
    ``category``, ``sentiment``, ...) holding ints, strings, booleans or floats.

    Inputs: ``text_columns`` if given (one, or two for a pair); else, when there is no such
    override, an ``Image`` column makes it an image dataset; else a known pair of string columns
    (premise/hypothesis, sentence1/sentence2, question1/question2, question/sentence,
    question/passage, ...); else a known single text column (``text``, ``sentence``, ``content``,
    ``review``, ...); else the only string column that is not the label or an id.

    Args:
        features: The dataset's features.
        text_columns: Override of the text column(s), one or two names.
        label_column: Override of the label column.
        dataset: The dataset's name, for error messages.

    Raises:
        DatasetError: A named column is missing, there is no usable label column, or the text
            columns cannot be told apart.
    """
    columns = _describe_columns(features)
    if isinstance(text_columns, str):
        text_columns = [text_columns]

    # Label.
    if label_column is not None:
        if label_column not in features:
            raise DatasetError(
                f"dataset '{dataset}' has no label column '{label_column}' (columns: {columns})"
            )
        if not _is_label_type(features[label_column]):
            raise DatasetError(
                f"dataset '{dataset}': label column '{label_column}' has type {_feature_type(features[label_column])};"
                " hfselect needs single-label classes (ClassLabel, integers, strings or booleans)"
            )
        label = label_column
    else:
        label = _find_label(features)
        if label is None:
            raise DatasetError(
                f"dataset '{dataset}' has no usable label column (columns: {columns}); "
                "pass --label-column NAME naming a column of class labels"
            )

    # Inputs.
    if text_columns:
        names = list(text_columns)
        if len(names) > 2:
            raise DatasetError(
                f"dataset '{dataset}': give one text column or two for a pair, not {len(names)} ({', '.join(names)})"
            )
        for name in names:
            if name not in features:
                raise DatasetError(f"dataset '{dataset}' has no text column '{name}' (columns: {columns})")
        if label in names:
            raise DatasetError(f"dataset '{dataset}': column '{label}' cannot be both text and label")
        if len(set(names)) != len(names):
            raise DatasetError(f"dataset '{dataset}': text column '{names[0]}' is given twice")
        if "label" in names:
            raise DatasetError(
                f"dataset '{dataset}': a text column named 'label' is not supported (the label goes there)"
            )
        return ColumnInfo(text_columns=names, label_column=label, label_names=_class_names(features[label]))

    images = [name for name, f in features.items() if isinstance(f, datasets.Image) and name != label]
    if images:
        preferred = [name for name in _IMAGE_NAMES if name in images]
        image = preferred[0] if preferred else images[0]
        return ColumnInfo(
            text_columns=[], label_column=label, image_column=image, label_names=_class_names(features[label])
        )

    strings = [name for name, f in features.items() if _is_string(f) and name not in (label, "label")]
    chosen: list[str] | None = None
    for first, second in _TEXT_PAIRS:
        if first in strings and second in strings:
            chosen = [first, second]
            break
    if chosen is None:
        for name in _TEXT_SINGLES:
            if name in strings:
                chosen = [name]
                break
    if chosen is None:
        candidates = [name for name in strings if name.lower() not in _ID_LIKE]
        if len(candidates) == 1:
            chosen = candidates
        elif not candidates:
            raise DatasetError(
                f"dataset '{dataset}' has no text or image column (columns: {columns}); "
                "pass --text-column NAME"
            )
        else:
            raise DatasetError(
                f"dataset '{dataset}': cannot tell which column is the text ({', '.join(candidates)}); "
                "pass --text-column NAME (twice for a pair)"
            )
    return ColumnInfo(text_columns=chosen, label_column=label, label_names=_class_names(features[label]))


def _find_label(features: datasets.Features) -> str | None:
    for name in _LABEL_PRIMARY:
        if name in features and _is_label_type(features[name]):
            return name
    for name, feature in features.items():
        if isinstance(feature, datasets.ClassLabel):
            return name
    for name in _LABEL_CANDIDATES:
        if name in features and _is_label_type(features[name]):
            return name
    return None


def _class_names(feature: Any) -> list[str] | None:
    return list(feature.names) if isinstance(feature, datasets.ClassLabel) else None


def _feature_type(feature: Any) -> str:
    if isinstance(feature, datasets.Value):
        return feature.dtype
    return type(feature).__name__


# --------------------------------------------------------------------------------------------------
# Raw loading
# --------------------------------------------------------------------------------------------------


def _one_line(exc: BaseException, limit: int = 240) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _wrap_load_error(spec: DatasetSpec, exc: Exception) -> DatasetError:
    name = str(spec)
    msg = _one_line(exc)
    if isinstance(exc, datasets.exceptions.DatasetNotFoundError):
        return DatasetError(
            f"dataset '{name}' was not found on the Hub and is not a local path "
            "(check the id; for a private or gated dataset log in or pass a token)"
        )
    if isinstance(exc, ConnectionError) and not spec.is_local:
        return DatasetError(
            f"dataset '{name}' is not a local path and the Hub could not be reached to load it ({msg})"
        )
    if "Config name is missing" in msg:
        return DatasetError(f"dataset '{name}': {msg} (give the config as ID:CONFIG)")
    if "BuilderConfig" in msg:
        return DatasetError(f"dataset '{name}': {msg}")
    empty = re.search(r'Instruction "([^"]+)" corresponds to no data', msg)
    if empty:
        return DatasetError(f"dataset '{name}': split '{empty.group(1)}' is empty")
    if "Unknown split" in msg:
        return DatasetError(f"dataset '{name}': {msg}")
    if "script" in msg.lower() and "support" in msg.lower():
        return DatasetError(
            f"dataset '{name}' needs a loading script, which hfselect never runs; "
            "use a version of it stored as data files (parquet/csv/json)"
        )
    return DatasetError(f"dataset '{name}' could not be loaded: {type(exc).__name__}: {msg}")


def _load_local_raw(
    spec: DatasetSpec, *, split: str | None, streaming: bool = False
) -> dict[str, datasets.Dataset] | dict[str, datasets.IterableDataset]:
    path = Path(spec.path)
    name = str(spec)
    if path.is_file():
        ext = path.suffix.lower()
        if ext not in _DATA_EXTENSIONS:
            raise DatasetError(
                f"dataset '{name}': file '{path}' is not a supported data file "
                f"({', '.join(sorted(_DATA_EXTENSIONS))})"
            )
        if spec.config:
            raise DatasetError(f"dataset '{name}': a config cannot be given for a single file")
        builder, kwargs = _DATA_EXTENSIONS[ext]
        split_name = split or "train"
        if streaming and split_name != "train":
            raise DatasetError(f"dataset '{name}': a single file has only a 'train' split, not '{split}'")
        loaded = datasets.load_dataset(
            builder, data_files={"train": str(path)}, split=split_name, streaming=streaming, **kwargs
        )
        return {split_name: loaded}
    if not path.is_dir():
        raise DatasetError(f"dataset '{name}': local path '{path}' is neither a file nor a folder")
    if _is_saved_dataset(path):
        if spec.config:
            raise DatasetError(f"dataset '{name}': a save_to_disk folder has no configs")
        loaded = datasets.load_from_disk(str(path))
        splits: dict[str, Any] = (
            dict(loaded.items()) if isinstance(loaded, datasets.DatasetDict) else {"train": loaded}
        )
        if split is not None:
            if split not in splits:
                raise DatasetError(
                    f"dataset '{name}' has no split '{split}' (splits: {', '.join(splits) or 'none'})"
                )
            splits = {split: splits[split]}
        if streaming:
            return {k: v.to_iterable_dataset() for k, v in splits.items()}
        return splits
    if not _has_data_files(path):
        raise DatasetError(
            f"dataset '{name}': folder '{path}' holds no data files ({', '.join(sorted(_DATA_EXTENSIONS))}) "
            "and is not a save_to_disk folder (loading scripts are never run)"
        )
    return _load_with_datasets(spec, split=split, streaming=streaming, cache_dir=_local_cache_dir(path))


def _local_cache_dir(folder: Path) -> str:
    """A datasets cache folder of its own for this version of a local dataset folder.

    datasets keys its prepared copy of a local folder by the folder's name and card, not by the
    contents of its data files: a folder rebuilt in place (a zoo built again with another seed or
    other split sizes) would be read back from the cache as it was. Keying on each file's path, size
    and modification time makes a rebuilt folder prepare afresh.
    """
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    entries = [(str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    digest = hashlib.sha256(json.dumps([str(folder.resolve()), entries]).encode()).hexdigest()[:16]
    return str(Path(datasets.config.HF_DATASETS_CACHE) / "hfselect-local" / digest)


def _load_with_datasets(
    spec: DatasetSpec,
    *,
    split: str | None,
    streaming: bool,
    token: str | bool | None = None,
    cache_dir: str | None = None,
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"streaming": streaming}
    if token is not None:
        kwargs["token"] = token
    if cache_dir is not None:
        kwargs["cache_dir"] = cache_dir
    if split is not None and not streaming:
        loaded = datasets.load_dataset(spec.path, spec.config, split=split, **kwargs)
        return {split: loaded}
    loaded = datasets.load_dataset(spec.path, spec.config, **kwargs)
    splits = dict(loaded.items())
    if split is not None:
        if split not in splits:
            raise DatasetError(
                f"dataset '{spec}' has no split '{split}' (splits: {', '.join(splits) or 'none'})"
            )
        splits = {split: splits[split]}
    return splits


def _load_raw(
    spec: DatasetSpec, *, split: str | None, streaming: bool = False, token: str | bool | None = None
) -> dict[str, Any]:
    """Loads the splits of ``spec`` as a dict (all of them, or only ``split``)."""
    try:
        if spec.is_local:
            splits = _load_local_raw(spec, split=split, streaming=streaming)
        else:
            from hfselect.hub.client import notice_if_slow

            with notice_if_slow(f"the Hub to load dataset {spec}"):
                splits = _load_with_datasets(spec, split=split, streaming=streaming, token=token)
    except DatasetError:
        raise
    except Exception as exc:
        raise _wrap_load_error(spec, exc) from exc
    if not splits:
        raise DatasetError(f"dataset '{spec}' has no splits")
    return splits


def _assign_roles(names: Sequence[str]) -> dict[str, str]:
    """Maps each role (train/validation/test) to the dataset split that plays it, where present."""
    roles: dict[str, str] = {}
    lowered = {n.lower(): n for n in names}
    for role, aliases in _SPLIT_ALIASES.items():
        for alias in aliases:
            if alias in lowered and lowered[alias] not in roles.values():
                roles[role] = lowered[alias]
                break
        else:
            # e.g. MNLI's validation_matched / test_matched.
            prefixed = sorted(
                n
                for n in names
                if any(n.lower().startswith(a + "_") for a in aliases) and n not in roles.values()
            )
            if prefixed:
                roles[role] = prefixed[0]
    if "train" not in roles and len(names) == 1:
        roles = {"train": names[0]}
    return roles


# --------------------------------------------------------------------------------------------------
# Label normalisation
# --------------------------------------------------------------------------------------------------


def _arrow_column(ds: datasets.Dataset, column: str) -> pa.Array:
    values = ds.with_format("arrow")[column]
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks else pa.array([], type=values.type)
    return values


def _raw_values(ds: datasets.Dataset, column: str) -> list[Any]:
    return _arrow_column(ds, column).to_pylist()


@dataclass
class _LabelMapper:
    """Maps raw label values of one column to class ids (-1 for a missing label)."""

    names: list[str]
    mapping: dict[Any, int] | None  # None: values are already ids (ClassLabel)

    def ids(self, values: list[Any]) -> np.ndarray:
        if self.mapping is None:
            arr = np.array([-1 if v is None else int(v) for v in values], dtype=np.int64)
            arr[(arr < 0) | (arr >= len(self.names))] = -1
            return arr
        return np.array([self.mapping.get(_norm_value(v), -1) for v in values], dtype=np.int64)


def _norm_value(v: Any) -> Any:
    if isinstance(v, float):
        if math.isnan(v):
            return None
        return int(v)
    return v


def _build_label_mapper(
    feature: Any, train_values: list[Any], other_values: Iterable[list[Any]], *, dataset: str, column: str
) -> _LabelMapper:
    """Builds the class names and the value -> id mapping of a label column.

    ``ClassLabel``: its names; -1 marks a missing label. Strings: the sorted distinct non-empty
    values. Booleans: ``False``/``True``. Integers (and integral floats): the sorted distinct values,
    with -1 a missing label unless train uses it next to other values (a split of only -1 is
    unlabeled). Non-integral floats (regression) are an error.
    """
    if isinstance(feature, datasets.ClassLabel):
        return _LabelMapper(names=[str(n) for n in feature.names], mapping=None)
    dtype = feature.dtype
    splits = [train_values, *other_values]
    if dtype in ("string", "large_string"):
        classes = sorted({v for vals in splits for v in vals if v is not None and v != ""})
        return _LabelMapper(names=classes, mapping={c: i for i, c in enumerate(classes)})
    if dtype == "bool":
        classes_b = sorted({v for vals in splits for v in vals if v is not None})
        return _LabelMapper(
            names=[str(c) for c in classes_b], mapping={c: i for i, c in enumerate(classes_b)}
        )
    if dtype.startswith("float"):
        for vals in splits:
            for v in vals:
                if v is not None and not math.isnan(v) and not float(v).is_integer():
                    raise DatasetError(
                        f"dataset '{dataset}': label column '{column}' holds non-integer numbers "
                        "(regression?); hfselect handles classification only (pass --label-column)"
                    )
    train_set = {_norm_value(v) for v in train_values} - {None}
    minus_one_is_class = -1 in train_set and len(train_set) > 1
    classes_i: set[int] = set()
    for vals in splits:
        for v in vals:
            nv = _norm_value(v)
            if nv is None or (nv == -1 and not minus_one_is_class):
                continue
            classes_i.add(int(nv))
    ordered = sorted(classes_i)
    return _LabelMapper(names=[str(c) for c in ordered], mapping={c: i for i, c in enumerate(ordered)})


def _normalise_split(
    ds: datasets.Dataset, info: ColumnInfo, mapper: _LabelMapper, class_label: datasets.ClassLabel
) -> datasets.Dataset:
    """Keeps the input columns and puts the class ids (-1 where missing) in ``label``."""
    values = _raw_values(ds, info.label_column)
    ids = mapper.ids(values)
    ds = ds.select_columns(info.input_columns)
    if ds._indices is not None:
        ds = ds.flatten_indices(keep_in_memory=True)
    return ds.add_column("label", ids.tolist(), feature=class_label)


def _labeled_indices(ds: datasets.Dataset) -> np.ndarray:
    labels = np.asarray(_raw_values(ds, "label"), dtype=np.int64)
    return np.flatnonzero(labels >= 0)


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), *stream])


# --------------------------------------------------------------------------------------------------
# Classification data
# --------------------------------------------------------------------------------------------------


@dataclass
class ClassificationData(_Inputs):
    """A classification dataset normalised for fine-tuning.

    Attributes:
        spec: The dataset's spec.
        splits: Exactly ``train``, ``validation`` and ``test``; each holds the input columns (text
            or image) and ``label`` (a ``ClassLabel`` of int ids, no missing labels).
        text_columns: One text column, or two for a pair task; ``[]`` for images.
        image_column: The image column for image classification, else ``None``.
        label_names: The class names in id order.
        fingerprint: A stable hash of the dataset's key, columns, classes and the content of each
            split, for caching.
        label_column: The label column of the source dataset (renamed to ``label``).
        split_origin: Where each split came from, e.g. ``{"train": "train", "validation":
            "validation", "test": "carved from train"}``.
    """

    spec: DatasetSpec
    splits: datasets.DatasetDict
    text_columns: list[str]
    image_column: str | None
    label_names: list[str]
    fingerprint: str
    label_column: str = "label"
    split_origin: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The dataset's key (see :attr:`DatasetSpec.name`)."""
        return self.spec.name

    @property
    def num_labels(self) -> int:
        """The number of classes."""
        return len(self.label_names)

    @property
    def id2label(self) -> dict[int, str]:
        """Class id -> name, as model configs want it."""
        return dict(enumerate(self.label_names))

    @property
    def label2id(self) -> dict[str, int]:
        """Class name -> id, as model configs want it."""
        return {n: i for i, n in enumerate(self.label_names)}


def load_classification_dataset(
    spec: str | DatasetSpec,
    *,
    text_columns: Sequence[str] | None = None,
    label_column: str | None = None,
    split: str | None = None,
    seed: int = 0,
    train_samples: int | None = None,
    eval_samples: int | None = None,
    token: str | bool | None = None,
) -> ClassificationData:
    """Loads a classification dataset as train/validation/test splits with normalised columns.

    The dataset's own splits are used where present (``train``/``training``;
    ``validation``/``valid``/``dev``/``val`` or ``validation_*``; ``test``/``testing``/``eval`` or
    ``test_*``). A dataset with a single split of another name uses it as train. A missing
    validation or test split, or one without any label (like GLUE's test splits, label -1
    everywhere), is carved from train with a permutation seeded by ``seed``: 10% of train for each
    carved split (80/10/10 when both are carved), at least one example each. Rows without a label
    are dropped from every split. Then ``train_samples`` and ``eval_samples`` (for validation and
    test each) take deterministic seeded subsamples.

    Args:
        spec: ``ID``, ``ID:CONFIG``, a local path, or a parsed :class:`DatasetSpec`.
        text_columns: Override of the text column(s) (one, or two for a pair).
        label_column: Override of the label column.
        split: Use only this split of the dataset (for Hub and data-file datasets any ``datasets``
            split expression such as ``train[:5000]``) as train, carving validation and test
            from it.
        seed: Seed of the carving and subsampling.
        train_samples: Keep at most this many train examples.
        eval_samples: Keep at most this many validation and test examples each.
        token: Hub token (``True``: the saved login) for private or gated datasets.

    Raises:
        DatasetError: Unknown id or path, no usable label or text column, an empty split, a single
            class, or too few examples to carve the missing splits.
    """
    spec = _as_spec(spec)
    name = str(spec)
    raw: dict[str, datasets.Dataset] = _load_raw(spec, split=split, token=token)
    roles = {"train": next(iter(raw))} if split is not None else _assign_roles(list(raw))
    if "train" not in roles:
        raise DatasetError(
            f"dataset '{name}' has no train split (splits: {', '.join(raw)}); pass --split NAME to use one"
        )
    for key in roles.values():
        if raw[key].num_rows == 0:
            raise DatasetError(f"dataset '{name}': split '{key}' is empty")

    train_raw = raw[roles["train"]]
    info = infer_columns(
        train_raw.features, text_columns=text_columns, label_column=label_column, dataset=name
    )
    needed = info.input_columns
    # Evaluation splits lacking the label column count as unlabeled; lacking inputs is an error.
    eval_keys: dict[str, str] = {}
    for role in ("validation", "test"):
        key = roles.get(role)
        if key is None:
            continue
        missing = [c for c in needed if c not in raw[key].column_names]
        if missing:
            raise DatasetError(f"dataset '{name}': split '{key}' lacks column(s) {', '.join(missing)}")
        if info.label_column in raw[key].column_names:
            eval_keys[role] = key

    label_feature = train_raw.features[info.label_column]
    mapper = _build_label_mapper(
        label_feature,
        _raw_values(train_raw, info.label_column),
        [_raw_values(raw[k], info.label_column) for k in eval_keys.values()],
        dataset=name,
        column=info.label_column,
    )
    if len(mapper.names) < 2:
        only = f" ({mapper.names[0]})" if mapper.names else ""
        raise DatasetError(
            f"dataset '{name}': label column '{info.label_column}' has fewer than two classes{only}; "
            "classification needs at least two"
        )
    class_label = datasets.ClassLabel(names=mapper.names)

    normalised: dict[str, datasets.Dataset] = {}
    origin: dict[str, str] = {}
    train = _normalise_split(train_raw, info, mapper, class_label)
    labeled = _labeled_indices(train)
    if labeled.size == 0:
        raise DatasetError(
            f"dataset '{name}': split '{roles['train']}' has no labels in column '{info.label_column}'"
        )
    if labeled.size < train.num_rows:
        train = train.select(labeled)
    origin["train"] = roles["train"]
    for role, key in eval_keys.items():
        ds = _normalise_split(raw[key], info, mapper, class_label)
        idx = _labeled_indices(ds)
        if idx.size == 0:
            continue  # unlabeled (e.g. GLUE test): carved from train instead
        normalised[role] = ds if idx.size == ds.num_rows else ds.select(idx)
        origin[role] = key

    carve = [role for role in ("validation", "test") if role not in normalised]
    if carve:
        n = train.num_rows
        n_each = max(1, round(n * _CARVE_FRACTION))
        if n - n_each * len(carve) < 1:
            raise DatasetError(
                f"dataset '{name}': only {n} labeled train examples, too few to carve "
                f"{' and '.join(carve)} split(s) from"
            )
        perm = _rng(seed, 0).permutation(n)
        start = 0
        for role in carve:
            normalised[role] = train.select(np.sort(perm[start : start + n_each]))
            origin[role] = f"carved from {roles['train']}"
            start += n_each
        train = train.select(np.sort(perm[start:]))
    normalised["train"] = train

    present = sorted(set(_raw_values(train, "label")))
    if len(present) < 2:
        raise DatasetError(
            f"dataset '{name}': the train split holds a single class ({mapper.names[present[0]]}); "
            "classification needs at least two"
        )

    for role, limit, stream in (
        ("train", train_samples, 1),
        ("validation", eval_samples, 2),
        ("test", eval_samples, 3),
    ):
        if limit is not None:
            if limit < 1:
                raise DatasetError(f"dataset '{name}': sample sizes must be at least 1, not {limit}")
            ds = normalised[role]
            if ds.num_rows > limit:
                normalised[role] = ds.select(np.sort(_rng(seed, stream).permutation(ds.num_rows)[:limit]))

    splits = datasets.DatasetDict({role: normalised[role] for role in SPLIT_NAMES})
    fingerprint = _fingerprint(spec, info, mapper.names, splits)
    return ClassificationData(
        spec=spec,
        splits=splits,
        text_columns=list(info.text_columns),
        image_column=info.image_column,
        label_names=list(mapper.names),
        fingerprint=fingerprint,
        label_column=info.label_column,
        split_origin=origin,
    )


def _content_hash(ds: datasets.Dataset) -> str:
    h = hashlib.sha256()
    for table in ds.with_format("arrow").iter(batch_size=4096):
        table = table.replace_schema_metadata(None).combine_chunks()
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        h.update(sink.getvalue().to_pybytes())
    return h.hexdigest()


def _fingerprint(
    spec: DatasetSpec, info: ColumnInfo, label_names: list[str], splits: datasets.DatasetDict
) -> str:
    payload = {
        "dataset": spec.name,
        "text_columns": list(info.text_columns),
        "image_column": info.image_column,
        "label_column": info.label_column,
        "label_names": list(label_names),
        "splits": {k: {"rows": v.num_rows, "content": _content_hash(v)} for k, v in splits.items()},
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]


# --------------------------------------------------------------------------------------------------
# Target samples
# --------------------------------------------------------------------------------------------------


def load_target_sample(
    spec: str | DatasetSpec,
    n: int = 1000,
    *,
    text_columns: Sequence[str] | None = None,
    label_column: str | None = None,
    split: str | None = None,
    seed: int = 0,
    streaming: bool = True,
    token: str | bool | None = None,
) -> tuple[datasets.Dataset, ColumnInfo]:
    """Draws a labeled sample of a target dataset, for proxy scores.

    The sample is drawn from ``split`` (default: the train split, or the only split). From the
    Hub with ``streaming`` the data are streamed, shuffled with a seeded buffer and cut at ``n``
    labeled rows, so the whole dataset is not downloaded; local data (or ``streaming=False``) are
    loaded whole and ``n`` labeled rows chosen by a seeded permutation (kept in dataset order).
    Rows without a label are skipped.

    Returns:
        The sample, normalised like :func:`load_classification_dataset` (input columns plus
        ``label``, a ``ClassLabel`` of int ids), and a :class:`ColumnInfo` describing it (its
        ``label_column`` is ``"label"``, ``label_names`` set; for non-``ClassLabel`` labels the
        classes are those seen in the sample).

    Raises:
        DatasetError: As :func:`load_classification_dataset`; also when the split has no labels.
    """
    if n < 1:
        raise DatasetError(f"sample size must be at least 1, not {n}")
    spec = _as_spec(spec)
    name = str(spec)
    use_stream = streaming and not spec.is_local
    if use_stream:
        if split is not None and ("[" in split or "+" in split):
            raise DatasetError(f"dataset '{name}': split expressions like '{split}' need streaming=False")
        raw_stream = _load_raw(spec, split=None, streaming=True, token=token)
        key = _sample_split_key(name, list(raw_stream), split)
        sample, features = _stream_sample(
            raw_stream[key], n, seed=seed, spec=spec, text_columns=text_columns, label_column=label_column
        )
    else:
        raw = _load_raw(spec, split=split, token=token)
        key = _sample_split_key(name, list(raw), split)
        sample = raw[key]
        features = sample.features
    if sample.num_rows == 0:
        raise DatasetError(f"dataset '{name}': split '{key}' is empty")

    info = infer_columns(features, text_columns=text_columns, label_column=label_column, dataset=name)
    mapper = _build_label_mapper(
        features[info.label_column],
        _raw_values(sample, info.label_column),
        [],
        dataset=name,
        column=info.label_column,
    )
    if not mapper.names:
        raise DatasetError(
            f"dataset '{name}': split '{key}' has no labels in column '{info.label_column}'; "
            "choose a labeled split with --split"
        )
    class_label = datasets.ClassLabel(names=mapper.names)
    normalised = _normalise_split(sample, info, mapper, class_label)
    labeled = _labeled_indices(normalised)
    if labeled.size == 0:
        raise DatasetError(
            f"dataset '{name}': split '{key}' has no labels in column '{info.label_column}'; "
            "choose a labeled split with --split"
        )
    if not use_stream:
        if labeled.size > n:
            labeled = np.sort(labeled[_rng(seed, 4).permutation(labeled.size)[:n]])
        normalised = normalised.select(labeled) if labeled.size < normalised.num_rows else normalised
    elif labeled.size < normalised.num_rows:
        normalised = normalised.select(labeled)
    out_info = ColumnInfo(
        text_columns=list(info.text_columns),
        label_column="label",
        image_column=info.image_column,
        label_names=list(mapper.names),
    )
    return normalised, out_info


def _sample_split_key(name: str, keys: list[str], split: str | None) -> str:
    if split is not None:
        if split not in keys:
            # With a split expression the loader already returned just that split.
            if len(keys) == 1:
                return keys[0]
            raise DatasetError(f"dataset '{name}' has no split '{split}' (splits: {', '.join(keys)})")
        return split
    roles = _assign_roles(keys)
    if "train" not in roles:
        raise DatasetError(
            f"dataset '{name}' has no train split (splits: {', '.join(keys)}); pass --split NAME to sample one"
        )
    return roles["train"]


def _stream_sample(
    stream: datasets.IterableDataset,
    n: int,
    *,
    seed: int,
    spec: DatasetSpec,
    text_columns: Sequence[str] | None,
    label_column: str | None,
) -> tuple[datasets.Dataset, datasets.Features]:
    name = str(spec)
    try:
        features = stream.features
        if features is None:
            stream = stream._resolve_features()
            features = stream.features
        info = infer_columns(features, text_columns=text_columns, label_column=label_column, dataset=name)
        wanted = [*info.input_columns, info.label_column]
        stream = stream.select_columns(wanted)
        label = info.label_column
        label_feature = features[label]

        def has_label(example: dict[str, Any]) -> bool:
            value = example[label]
            if value is None or value == "":
                return False
            if isinstance(value, float) and math.isnan(value):
                return False
            return not (isinstance(label_feature, datasets.ClassLabel) and value < 0)

        shuffle_kwargs: dict[str, Any] = {"seed": seed, "buffer_size": max(1000, n)}
        if "max_buffer_input_shards" in inspect.signature(datasets.IterableDataset.shuffle).parameters:
            # Interleaving shards (datasets >= 4) sleeps 5 s on shutdown; only worth it with several.
            shuffle_kwargs["max_buffer_input_shards"] = max(1, min(10, stream.num_shards))
        stream = stream.filter(has_label).shuffle(**shuffle_kwargs)
        rows = list(stream.take(n))
    except DatasetError:
        raise
    except Exception as exc:
        raise _wrap_load_error(spec, exc) from exc
    sub_features = datasets.Features({c: features[c] for c in wanted})
    if not rows:
        raise DatasetError(
            f"dataset '{name}': no labeled rows in the sampled split (column '{label}'); "
            "choose a labeled split with --split"
        )
    return datasets.Dataset.from_list(rows, features=sub_features), sub_features


# --------------------------------------------------------------------------------------------------
# Preprocessing for a model
# --------------------------------------------------------------------------------------------------


def _as_text(value: Any) -> str:
    return "" if value is None else value if isinstance(value, str) else str(value)


def preprocess_for_model(
    data: ClassificationData, tokenizer_or_processor: Any, *, max_length: int = 128
) -> datasets.DatasetDict:
    """Turns normalised splits into model inputs with ``labels``.

    Text: tokenizes the text column (or the pair) with truncation to ``max_length`` (or the
    tokenizer's ``model_max_length`` if smaller), without padding (pad per batch, e.g. with
    :class:`transformers.DataCollatorWithPadding`); the result holds the tokenizer's outputs
    (``input_ids``, ``attention_mask``, maybe ``token_type_ids``) and ``labels``, no other columns.

    Images: returns the splits reduced to two columns, the images renamed ``pixel_values`` (still
    ``Image`` features) and ``labels``, with an on-the-fly transform (``with_transform``) that
    applies the image processor, so that indexing yields ``pixel_values`` (a float tensor per
    row) and ``labels``; processed pixels are never stored. The column names match the models'
    ``forward`` arguments, so a ``Trainer`` works with its default ``remove_unused_columns=True``
    and the default collator.

    A processor that bundles a tokenizer or an image processor (``AutoProcessor``) is accepted.
    Deterministic: the same data and tokenizer give the same result.

    Raises:
        DatasetError: A tokenizer given for image data, or an image processor for text.
    """
    if data.modality == "image":
        processor = getattr(tokenizer_or_processor, "image_processor", None) or tokenizer_or_processor
        if _is_tokenizer(processor):
            raise DatasetError(
                f"dataset '{data.spec}' holds images; it needs an image processor (AutoImageProcessor), not a tokenizer"
            )
        image_column = data.image_column
        assert image_column is not None
        splits = data.splits.select_columns([image_column, "label"])
        renames = {k: v for k, v in ((image_column, "pixel_values"), ("label", "labels")) if k != v}
        return splits.rename_columns(renames).with_transform(_image_transform(processor))

    tokenizer = tokenizer_or_processor
    if not _is_tokenizer(tokenizer):
        tokenizer = getattr(tokenizer_or_processor, "tokenizer", None)
    if tokenizer is None or not _is_tokenizer(tokenizer):
        raise DatasetError(
            f"dataset '{data.spec}' holds text; it needs a tokenizer, not {type(tokenizer_or_processor).__name__}"
        )
    model_max = getattr(tokenizer, "model_max_length", None)
    limit = int(min(max_length, model_max)) if isinstance(model_max, int) and model_max > 0 else max_length
    columns = list(data.text_columns)

    def tokenize(batch: dict[str, list[Any]]) -> dict[str, Any]:
        first = [_as_text(v) for v in batch[columns[0]]]
        second = [_as_text(v) for v in batch[columns[1]]] if len(columns) > 1 else None
        encoded = tokenizer(first, second, truncation=True, max_length=limit)
        out = {k: v for k, v in encoded.items() if k != "labels"}
        out["labels"] = list(batch["label"])
        return out

    # datasets would fingerprint the map by pickling ``tokenize`` and the tokenizer inside it, which
    # takes longer than tokenising a small split; the result is kept in memory (no cache file to
    # find again), so a fingerprint naming what the output depends on is enough.
    recipe = f"{getattr(tokenizer, 'name_or_path', '')}|{type(tokenizer).__name__}|{len(tokenizer)}|{limit}|{columns}"
    result = datasets.DatasetDict()
    for split_name, ds in data.splits.items():
        fingerprint = hashlib.sha256(f"{ds._fingerprint}|{recipe}".encode()).hexdigest()[:16]
        result[split_name] = ds.map(
            tokenize,
            batched=True,
            remove_columns=ds.column_names,
            keep_in_memory=True,
            new_fingerprint=fingerprint,
            desc=f"Tokenizing {data.name} {split_name}",
        )
    return result


def _is_tokenizer(obj: Any) -> bool:
    try:
        from transformers import PreTrainedTokenizerBase
    except ImportError:  # pragma: no cover - transformers is a dependency
        return hasattr(obj, "convert_tokens_to_ids")
    return isinstance(obj, PreTrainedTokenizerBase)


def _image_transform(processor: Any) -> Callable[[dict[str, list[Any]]], dict[str, Any]]:
    def transform(batch: dict[str, list[Any]]) -> dict[str, Any]:
        images = [
            img.convert("RGB") if getattr(img, "mode", "RGB") != "RGB" else img
            for img in batch["pixel_values"]
        ]
        encoded = processor(images=images, return_tensors="pt")
        return {"pixel_values": encoded["pixel_values"], "labels": list(batch["labels"])}

    return transform
