"""hfselect: find the best pretrained Hugging Face Hub model for your dataset, fast.

The library follows the two-phase recall-and-select method (Cui et al., arXiv 2404.00069):
an offline model repository of benchmark results and learning curves, a coarse recall of
candidates with cheap proxy scores, and a fine selection by successive halving guided by each
model's convergence trend.

    >>> import hfselect
    >>> report = hfselect.select("stanfordnlp/imdb", candidates=4)  # doctest: +SKIP
    >>> report.selected_model  # doctest: +SKIP

:func:`recall` and :func:`select` are the pipeline (:mod:`hfselect.api`); :func:`coarse_recall`
is the recall rule on a performance matrix and proxy scores you already have.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from hfselect._version import __version__

if TYPE_CHECKING:
    from hfselect.api import bench, cluster, recall, select
    from hfselect.callbacks import ConvergenceTrendCallback
    from hfselect.cards.selection_report import SelectionReport
    from hfselect.core.clustering import ModelClustering
    from hfselect.core.proxies import hscore, knn_probe, leep, logme, nce
    from hfselect.core.recall import coarse_recall
    from hfselect.core.recall_result import RecallResult
    from hfselect.store import ModelRepository
    from hfselect.training.proxy_scoring import score_models

# Public name -> the module defining it. Imported on first use: `import hfselect` (and the CLI's
# --help) stays fast, as scikit-learn, torch and transformers load only when a name needs them.
_EXPORTS = {
    "bench": "hfselect.api",
    "cluster": "hfselect.api",
    "recall": "hfselect.api",
    "select": "hfselect.api",
    "RecallResult": "hfselect.core.recall_result",
    "SelectionReport": "hfselect.cards.selection_report",
    "coarse_recall": "hfselect.core.recall",
    "ModelClustering": "hfselect.core.clustering",
    "ModelRepository": "hfselect.store.repository",
    "ConvergenceTrendCallback": "hfselect.callbacks",
    "score_models": "hfselect.training.proxy_scoring",
    "leep": "hfselect.core.proxies",
    "nce": "hfselect.core.proxies",
    "logme": "hfselect.core.proxies",
    "hscore": "hfselect.core.proxies",
    "knn_probe": "hfselect.core.proxies",
}

__all__ = [
    "ConvergenceTrendCallback",
    "ModelClustering",
    "ModelRepository",
    "RecallResult",
    "SelectionReport",
    "__version__",
    "bench",
    "cluster",
    "coarse_recall",
    "hscore",
    "knn_probe",
    "leep",
    "logme",
    "nce",
    "recall",
    "score_models",
    "select",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value  # looked up once
        return value
    raise AttributeError(f"module 'hfselect' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
