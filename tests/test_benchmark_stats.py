"""The bootstrap intervals and ties the benchmarks report (``benchmarks/_stats.py``)."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from _stats import (
    bootstrap_mean,
    compare,
    mean_of_defined,
    rank_correlation,
    replicate_means,
    resample_indices,
)


def test_constant_grid_has_a_point_interval() -> None:
    draws = resample_indices(3, 12, 500)
    interval = bootstrap_mean(np.full((3, 12), 0.25), draws)
    assert (interval.mean, interval.low, interval.high) == (0.25, 0.25, 0.25)


def test_replicate_means_resample_runs_and_targets_together() -> None:
    grid = np.arange(12, dtype=float).reshape(3, 4)
    runs = np.array([[0, 0, 0], [2, 1, 2]])
    targets = np.array([[1, 1, 1, 1], [0, 3, 3, 0]])
    means = replicate_means(grid, (runs, targets))
    assert means.tolist() == [1.0, np.mean([[8, 11, 11, 8], [4, 7, 7, 4], [8, 11, 11, 8]])]


def test_interval_holds_the_mean_and_narrows_with_more_cells() -> None:
    rng = np.random.default_rng(1)
    small = bootstrap_mean(rng.normal(0.1, 0.05, (2, 6)), resample_indices(2, 6, 1000))
    large = bootstrap_mean(rng.normal(0.1, 0.05, (8, 48)), resample_indices(8, 48, 1000))
    for interval in (small, large):
        assert interval.low <= interval.mean <= interval.high
    assert large.high - large.low < small.high - small.low
    assert large.contains(0.1)


def test_run_effects_widen_the_interval() -> None:
    # The same targets, but each run shifted as a whole (a training seed that is better everywhere):
    # resampling runs must see that spread, which resampling targets alone would not.
    rng = np.random.default_rng(2)
    cells = rng.normal(0.0, 0.01, (4, 12))
    shifted = cells + np.array([[-0.05], [0.05], [-0.05], [0.05]])
    draws = resample_indices(4, 12, 1000)
    plain, spread = bootstrap_mean(cells, draws), bootstrap_mean(shifted, draws)
    assert spread.high - spread.low > 3 * (plain.high - plain.low)


def test_compare_calls_ties_inside_the_noise() -> None:
    rng = np.random.default_rng(3)
    reference = rng.uniform(0, 0.02, (3, 12))
    draws = resample_indices(3, 12, 1000)
    assert compare(reference, reference, draws)[1] == "tie"
    noisy = reference + rng.normal(0, 0.02, (3, 12))  # no systematic difference
    assert compare(noisy, reference, draws)[1] == "tie"
    difference, verdict = compare(reference + 0.05, reference, draws)
    assert verdict == "higher" and difference.low > 0
    assert compare(reference - 0.05, reference, draws)[1] == "lower"


def test_rank_correlation_is_none_where_undefined_and_silent() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scipy's ConstantInputWarning would fail the test
        assert rank_correlation([1.0, 2.0, 3.0], [0.5, 0.5, 0.5]) is None
        assert rank_correlation([2.0, 2.0], [0.1, 0.9]) is None
        assert rank_correlation([1.0], [0.3]) is None
    assert rank_correlation([1.0, 2.0, 3.0], [0.1, 0.3, 0.2]) == pytest.approx(0.5)
    assert rank_correlation([3.0, 1.0], [0.1, 0.9]) == pytest.approx(-1.0)


def test_mean_of_defined_skips_none_and_nan() -> None:
    assert mean_of_defined([0.2, None, float("nan"), 0.4]) == pytest.approx(0.3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "Mean of empty slice" would fail the test
        assert mean_of_defined([None, float("nan")]) is None and mean_of_defined([]) is None
