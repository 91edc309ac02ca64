"""A small, fully offline model zoo that behaves like a model hub, for tests, the demo and benchmarks.

The two-phase method (Cui et al., arXiv 2404.00069) only works when the model repository has the
structure of a real hub: models pre-trained on different source tasks, so that each transfers
well to some targets and badly to others, the ranking of models changes from one target to the
next, and groups of models behave alike on the benchmark datasets (the clusters of the offline
phase). Real checkpoints are far too big to fine-tune hundreds of times in a test, so this module
builds a miniature hub with that structure on a CPU in seconds:

* a synthetic language whose sentences are generated from *latent factors* (topic, polarity,
  negation, style, setting) out of invented words, so that the relatedness of two tasks is known
  and controlled (it is the overlap of the factors they label);
* small text-classification datasets labelled by one or a combination of those factors
  (``DIR/datasets/<name>/``), and larger *source* datasets used only for pre-training
  (``DIR/sources/<name>/``), all as parquet files with a ``ClassLabel`` feature and a dataset card;
* tiny BERT, DistilBERT and RoBERTa models with real trained tokenizers (WordPiece, byte-level BPE),
  each briefly pre-trained on a different source task (some on two, some longer or shorter, some
  only with masked-language modelling, some not at all), saved with safetensors and a model card
  (``DIR/models/<name>/``);
* a manifest ``DIR/zoo.json`` (:class:`ZooManifest`) describing every model and dataset.

Everything is seeded, so two builds with the same seed give byte-identical datasets and identical
weights. :func:`publish_zoo` pushes a built zoo to a Hub (a local test server, or the real one).
"""

from hfselect.zoo.build import build_zoo
from hfselect.zoo.manifest import ZOO_TAG, ZooDataset, ZooManifest, ZooModel
from hfselect.zoo.publish import publish_zoo

__all__ = [
    "ZOO_TAG",
    "ZooDataset",
    "ZooManifest",
    "ZooModel",
    "build_zoo",
    "publish_zoo",
]
