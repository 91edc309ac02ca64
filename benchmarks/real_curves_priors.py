"""What stands in for a proxy score on Quick-Tune's curves, where no model outputs exist.

Recall ranks a target's candidates by a proxy (LogME, LEEP, ...) computed on the target's data.
Quick-Tune has curves, not models, so ``real_curves.py`` recalls by a *prior* instead: a score per
candidate run known before it trains, learned from the benchmark datasets only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from real_curves_data import Target
from real_curves_protocol import PriorObjective


def no_proxy(models: Sequence[str]) -> dict[str, float]:
    """The same proxy for every model: recall then ranks on the benchmark results alone."""
    return dict.fromkeys(models, 0.0)


def no_prior(target: Target) -> None:
    """No prior: recall ranks by mean benchmark score (the performance matrix's one run per pair)."""
    return None


def protocol_prior(target: Target) -> dict[str, float]:
    """What each candidate reaches under a good protocol: the mean of the better half of its final scores.

    Over every full-length run the model has on the benchmark datasets (each dataset has several
    runs per model, with different hyperparameters). One run per pair, as in the performance
    matrix, is one random draw of those hyperparameters: a good model with one bad draw looks bad.
    """
    prior = {}
    for model in target.curves:
        finals = sorted(curve.final for curve in target.benchmark_curves.get(model, []))
        better_half = finals[len(finals) // 2 :]
        prior[model] = float(np.mean(better_half)) if better_half else 0.0
    return prior


def learned_prior(target: Target, objective: PriorObjective = "percentile") -> dict[str, float]:
    """Each candidate's standing among the target's runs, predicted before it trains.

    A gradient-boosted regression on a run's features (its protocol's hyperparameters, its model,
    its dataset's descriptors: :meth:`CurveData.run_features`), fitted on every full-length run of
    the benchmark datasets. The protocol prior averages a model over hyperparameters; this one asks
    how *this* run's protocol suits the model: on real curves a learning rate 1000x off decides
    more than the architecture.

    ``objective="percentile"`` (the default since 2026-12-02) learns each benchmark run's
    percentile among the runs of its own dataset, not its final score: recall needs the order of
    one dataset's runs, and a final score is mostly its dataset's difficulty, which the
    regression would otherwise spend its trees on. ``"final"`` is the prior before
    (:func:`final_score_prior`). With fewer than 10 benchmark runs to learn from, the protocol
    prior. Deterministic: a fixed seed and no early-stopping split.
    """
    if len(target.benchmark_runs) < 10:
        return protocol_prior(target)
    models = list(target.curves)
    features = np.array([target.features[model] for model in models])
    predicted = target.prior_regression(objective).predict(features)
    return {m: float(v) for m, v in zip(models, predicted, strict=True)}


def final_score_prior(target: Target) -> dict[str, float]:
    """The learned prior before 2026-12-02: a regression of the benchmark runs' final scores themselves."""
    return learned_prior(target, objective="final")
