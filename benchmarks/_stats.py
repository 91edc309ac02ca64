"""Uncertainty of benchmark means: two-way bootstrap intervals and ties.

A benchmark mean is taken over a grid of cells, one per (run, target): a run is one training seed
of one zoo, a target one held-out dataset. Both are samples (another seed, other targets would give
other numbers), so an interval resamples both at once: each replicate draws runs with replacement and
targets with replacement, and averages the resampled grid. With one run it is the plain bootstrap
over targets.

Two methods are compared on the same replicates (paired): their difference is only called a win
when its interval excludes zero; otherwise it is a tie.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import spearmanr

#: Coverage of every interval the benchmarks report.
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Interval:
    """A mean and its bootstrap interval."""

    mean: float
    low: float
    high: float

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies inside the interval (bounds included)."""
        return self.low <= value <= self.high

    def format(self, digits: int = 4) -> str:
        """``mean [low, high]`` with ``digits`` decimals."""
        return f"{self.mean:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"

    def as_dict(self) -> dict[str, float]:
        """JSON form."""
        return {"mean": self.mean, "low": self.low, "high": self.high}


def resample_indices(
    n_runs: int, n_targets: int, replicates: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap draws of runs ``(replicates, n_runs)`` and of targets ``(replicates, n_targets)``.

    Draw them once and pass them to :func:`bootstrap_mean` for every quantity, so that methods are
    compared on the same replicates.
    """
    rng = np.random.default_rng(seed)
    runs = rng.integers(0, n_runs, size=(replicates, n_runs))
    targets = rng.integers(0, n_targets, size=(replicates, n_targets))
    return runs, targets


def replicate_means(grid: np.ndarray, draws: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """The mean of a ``(runs, targets)`` grid in each bootstrap replicate of ``draws``."""
    grid = np.asarray(grid, dtype=float)
    runs, targets = draws
    # grid[runs][:, :, targets] per replicate, without materialising every resampled grid at once.
    return np.array([grid[r][:, t].mean() for r, t in zip(runs, targets, strict=True)])


def bootstrap_mean(grid: np.ndarray, draws: tuple[np.ndarray, np.ndarray]) -> Interval:
    """The mean of a ``(runs, targets)`` grid and its percentile interval over the given draws."""
    grid = np.asarray(grid, dtype=float)
    means = replicate_means(grid, draws)
    alpha = (1 - CONFIDENCE) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return Interval(float(grid.mean()), float(low), float(high))


def compare(
    grid: np.ndarray, reference: np.ndarray, draws: tuple[np.ndarray, np.ndarray]
) -> tuple[Interval, str]:
    """Paired difference ``grid - reference`` (lower is better, as for regret and cost).

    Returns the difference's interval and ``"lower"``, ``"higher"`` or ``"tie"`` (zero inside it).
    """
    difference = bootstrap_mean(np.asarray(grid, dtype=float) - np.asarray(reference, dtype=float), draws)
    if difference.contains(0.0):
        return difference, "tie"
    return difference, "lower" if difference.mean < 0 else "higher"


def rank_correlation(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rank correlation of paired values, or None where it is undefined.

    It is undefined with fewer than two pairs, or when either side is constant (every value tied):
    scipy then warns and returns NaN, which neither a mean nor a JSON file should take.
    """
    if len(x) < 2 or len(set(x)) < 2 or len(set(y)) < 2:
        return None
    return float(spearmanr(x, y).statistic)


def mean_of_defined(values: Iterable[float | None]) -> float | None:
    """The mean of the values that are defined (neither None nor NaN); None when none is."""
    defined = [value for value in values if value is not None and not math.isnan(value)]
    return float(np.mean(defined)) if defined else None
