"""A trend predictor that knows each run's protocol: the benchmark's test of that idea (issue 12).

On Quick-Tune's curves every run has its own randomly drawn hyperparameters (learning rates 1000x
apart, warmups, frozen layers), and the library's trend predictors see only a run's scores so far.
:class:`ProtocolTrendPredictor` sees the rest too: a gradient-boosted regression of a run's final
score on its features (protocol, model, dataset descriptors: the learned prior's) and its first
epochs' scores, fitted for each epoch count on every full-length run of the benchmark datasets.

Benchmark only: in the library every candidate of a selection trains with the same recipe, so a
protocol carries nothing there that the model and the curve do not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.stats import rankdata
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.model_selection import GroupKFold

from hfselect.core.trend import TrendPredictor

PROTOCOL_PREDICTOR = "protocol"
HOLDOUT_FOLDS = 4


@dataclass(frozen=True)
class BenchmarkRun:
    """One full-length run on a benchmark dataset: what was known before it trained, and its curve."""

    dataset: str
    features: tuple[float, ...]
    curve: tuple[float, ...]

    @property
    def final(self) -> float:
        """Its score at the end of the budget."""
        return self.curve[-1]


# What the learned prior regresses: a run's percentile among its dataset's runs, or its final score
PriorObjective = Literal["percentile", "final"]
PRIOR_TREES = 300  # the learned prior's boosting iterations: one fit per target
PROTOCOL_TREES = 200  # fewer than the learned prior's: one fit per epoch count and fold, not per target


def run_regression(trees: int) -> HistGradientBoostingRegressor:
    """The benchmark's regression of a run's final score (the learned prior's and this module's).

    Deterministic: a fixed seed and no early-stopping split.
    """
    return HistGradientBoostingRegressor(
        max_iter=trees, learning_rate=0.05, early_stopping=False, random_state=0
    )


def dataset_percentiles(runs: Sequence[BenchmarkRun]) -> np.ndarray:
    """Each run's final score as a percentile among the runs of its own dataset, in (0, 1).

    ``(rank - 1/2) / n`` with ties at their mean rank: the best of 10 runs is 0.95, the worst
    0.05, whatever the dataset's accuracy level. One value per run, in ``runs``' order.
    """
    finals = np.array([run.final for run in runs], dtype=float)
    datasets = np.array([run.dataset for run in runs])
    percentiles = np.empty_like(finals)
    for dataset in dict.fromkeys(datasets):
        mask = datasets == dataset
        percentiles[mask] = (rankdata(finals[mask]) - 0.5) / mask.sum()
    return percentiles


class ProtocolRegressions:
    """Per epoch count ``e``: final score ~ (run features, scores after epochs 1..e), with held-out errors.

    Fitted lazily, once per ``e``, on ``runs``; shared by every candidate of a target.
    """

    def __init__(self, runs: Sequence[BenchmarkRun], folds: int = HOLDOUT_FOLDS) -> None:
        self.runs = list(runs)
        self.folds = folds
        self._designs: dict[int, np.ndarray] = {}
        self._fitted: dict[int, HistGradientBoostingRegressor] = {}
        self._errors: dict[int, list[float]] = {}
        self._finals = np.array([run.final for run in self.runs])

    def _design(self, epochs: int) -> np.ndarray:
        """Each run's features and first ``epochs`` scores, one row per run (built once per count)."""
        if epochs not in self._designs:
            rows = [run.features + run.curve[:epochs] for run in self.runs]
            self._designs[epochs] = np.array(rows, dtype=float)
        return self._designs[epochs]

    def predict(self, features: tuple[float, ...], scores: Sequence[float]) -> float:
        """The predicted final score of a run with ``features`` and ``scores`` after epochs 1..n."""
        epochs = len(scores)
        if epochs not in self._fitted:
            self._fitted[epochs] = run_regression(PROTOCOL_TREES).fit(self._design(epochs), self._finals)
        row = np.array([features + tuple(float(v) for v in scores)], dtype=float)
        return float(self._fitted[epochs].predict(row)[0])

    def holdout_errors(self, epochs: int) -> list[float]:
        """Absolute errors on runs of held-out datasets (``folds`` folds by dataset); [] with one dataset."""
        if epochs not in self._errors:
            groups = [run.dataset for run in self.runs]
            splits = min(self.folds, len(set(groups)))
            errors: list[float] = []
            if splits >= 2:
                rows, finals = self._design(epochs), self._finals
                for train, test in GroupKFold(n_splits=splits).split(rows, finals, groups):
                    fitted = run_regression(PROTOCOL_TREES).fit(rows[train], finals[train])
                    errors.extend(np.abs(fitted.predict(rows[test]) - finals[test]).tolist())
            self._errors[epochs] = errors
        return self._errors[epochs]


class ProtocolTrendPredictor(TrendPredictor):
    """One candidate run's view of :class:`ProtocolRegressions`: its features are fixed, its scores grow.

    Replays evaluate after whole epochs (:meth:`predict_curve`); a score alone, mid-epoch, is
    predicted to be the final one, as the base class does.
    """

    name = PROTOCOL_PREDICTOR

    def __init__(self, regressions: ProtocolRegressions, features: tuple[float, ...]) -> None:
        super().__init__(())
        self.regressions = regressions
        self.features = features

    def predict_curve(self, scores: Sequence[float]) -> float:
        """See :meth:`ProtocolRegressions.predict`."""
        return self.regressions.predict(self.features, scores)

    def holdout_errors(self, epoch: float, groups: Sequence[object] | None = None) -> list[float]:
        """The regressions' errors on held-out datasets after whole ``epoch`` epochs (mid-epoch: none)."""
        if not float(epoch).is_integer() or epoch < 1:
            return []
        return self.regressions.holdout_errors(int(epoch))
