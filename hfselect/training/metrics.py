"""Scoring metrics for fine-tuning: the built-in ones, and `evaluate` metrics only when allowed.

``evaluate.load(NAME)`` downloads a metric's Python code from the Hub and runs it, so a name that is
neither built in nor a local script is refused unless the user opts in (``--allow-hub-metric-code``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from hfselect.errors import HfSelectError

__all__ = ["BUILTIN_METRICS", "METRIC_ALIASES", "canonical_metric", "check_metric_allowed", "metric_function"]

BUILTIN_METRICS = ("accuracy", "macro_f1", "matthews_correlation")
METRIC_ALIASES = {
    "f1": "macro_f1",
    "f1_macro": "macro_f1",
    "mcc": "matthews_correlation",
    "matthews": "matthews_correlation",
}


def canonical_metric(name: str) -> str:
    """The stored name of a metric (``f1`` means macro-F1, ``mcc`` Matthews correlation)."""
    return METRIC_ALIASES.get(name, name)


def check_metric_allowed(name: str, *, allow_hub_code: bool = False) -> None:
    """Refuse a metric whose code would come from the Hub, unless ``allow_hub_code``.

    Built-in metrics and local metric scripts (an existing file or folder) are always allowed;
    any other name makes ``evaluate.load`` download the metric's Python code and run it.
    """
    if allow_hub_code or canonical_metric(name) in BUILTIN_METRICS or Path(name).expanduser().exists():
        return
    raise HfSelectError(
        f"--metric {name} is neither built in ({', '.join(BUILTIN_METRICS)}; f1 and mcc for short) nor a "
        "local metric script: evaluate would download its code from the Hub and run it. Pass "
        "--allow-hub-metric-code (allow_hub_metric_code=True) if you trust that code"
    )


def metric_function(name: str, *, allow_hub_code: bool = False) -> Callable[[np.ndarray, np.ndarray], float]:
    """``f(predictions, references) -> score`` for a built-in metric or a loadable ``evaluate`` metric.

    The built-in ones are computed with scikit-learn because ``evaluate.load`` fetches metric code
    from the Hub at run time; a local metric script goes through ``evaluate``, and so does any other
    name, but only with ``allow_hub_code`` (see :func:`check_metric_allowed`).
    """
    from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

    check_metric_allowed(name, allow_hub_code=allow_hub_code)
    name = canonical_metric(name)
    if name == "accuracy":
        return lambda predictions, references: float(accuracy_score(references, predictions))
    if name == "macro_f1":
        return lambda predictions, references: float(f1_score(references, predictions, average="macro"))
    if name == "matthews_correlation":
        return lambda predictions, references: float(matthews_corrcoef(references, predictions))
    try:
        import evaluate

        module = evaluate.load(name)
    except Exception as error:
        raise HfSelectError(
            f"cannot load metric {name!r} ({' '.join(str(error).split())[:120]}); "
            f"built-in metrics: {', '.join(BUILTIN_METRICS)}"
        ) from error

    def compute(predictions: np.ndarray, references: np.ndarray) -> float:
        result = module.compute(predictions=predictions, references=references)
        return float(result[name] if name in result else next(iter(result.values())))

    return compute
