"""The ``hfselect`` row of ``anytime.py``: the library's budget-first selection on a Quick-Tune target.

What the library knows before training, as it would know it from a repository of the other
datasets:

* recall's ranking: Quick-Tune has no model outputs to compute a proxy on, so the stand-in is the
  learned prior of ``real_curves.py`` (a regression of each benchmark run's percentile among its
  dataset's runs on what is known before training: its model, its hyperparameters, the dataset's
  descriptors), fitted on the other datasets' runs;
* each candidate's seconds per epoch: its model's median seconds per epoch and per training
  example on the other datasets, times the target's examples (``meta/descriptors.json``), as the
  library scales the repository's benchmark timings by the target's size;
* how much the ranking is worth: :func:`hfselect.core.budget.evidence_best_ranks` on the other
  datasets' final scores (the place of each one's best model when ranked by the rest);
* each model's trend predictor, fitted on its curves on the other datasets.

Then :func:`hfselect.core.budget.plan_budget` and :func:`~hfselect.core.budget.run_budget` with a
:class:`~hfselect.core.budget.ReplayTrainer`: the loop ``hfselect select --budget`` runs.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

import numpy as np
from real_curves_data import CurveData
from real_curves_protocol import PRIOR_TREES, BenchmarkRun, dataset_percentiles, run_regression

from hfselect.config import DEFAULT_PREDICTOR
from hfselect.core.budget import (
    BudgetCandidate,
    BudgetTooSmallError,
    ReplayTrainer,
    evidence_best_ranks,
    plan_budget,
    run_budget,
)
from hfselect.core.trend import make_predictor


def hfselect_pick(problem: Any, budget_seconds: float, seed: int) -> tuple[str, float]:
    """hfselect's pick within the budget and its total cost (epochs trained + finishing the pick).

    Deterministic (``seed`` is unused). When not even the cheapest candidate's full run fits, the
    top-ranked candidate is returned with its full cost, which is over the budget.
    """
    key = (id(problem.data), problem.target, tuple(problem.repository))
    ranked = ranking(problem)
    epoch_seconds = estimated_epoch_seconds(problem)
    candidates = [BudgetCandidate(config, epoch_seconds[config]) for config in ranked]
    try:
        plan = plan_budget(
            candidates,
            problem.budget_epochs,
            budget_seconds,
            best_ranks=_cached(
                "ranks", key, lambda: evidence_best_ranks(problem.data.performance(problem.repository))
            ),
        )
    except BudgetTooSmallError:
        top = ranked[0]
        return top, float(sum(problem.seconds[top]))
    predictors = _cached("predictors", key, lambda: trend_predictors(problem))
    outcome = run_budget(
        plan,
        ReplayTrainer(problem.curves, problem.seconds),
        predictors={config: predictors[problem.model_of[config]] for config in plan.candidates},
    )
    return outcome.selected, outcome.seconds


def ranking(problem: Any) -> list[str]:
    """The candidate configs, best first by the learned prior fitted on the other datasets."""
    key = (id(problem.data), problem.target, tuple(problem.repository))
    prior = _cached("prior", key, lambda: learned_prior(problem.data, problem.repository))
    features = np.array([problem.data.run_features(problem.target, config) for config in problem.configs])
    scores = prior.predict(features)
    order = sorted(range(len(problem.configs)), key=lambda i: (-scores[i], i))
    return [problem.configs[i] for i in order]


# What is fitted once per target and shared by every budget and seed: (kind, key) -> value.
_CACHE: dict[tuple[str, tuple[Any, ...]], Any] = {}


def _cached(kind: str, key: tuple[Any, ...], make: Any) -> Any:
    if (kind, key) not in _CACHE:
        _CACHE[kind, key] = make()
    return _CACHE[kind, key]


def learned_prior(data: CurveData, repository: Sequence[str]) -> Any:
    """The prior's regression on every full-length run of ``repository`` (fitted once per target)."""
    runs = [
        BenchmarkRun(dataset, data.run_features(dataset, config), tuple(curve[: data.budget]))
        for dataset in repository
        for config, curve in data.scores[dataset].items()
        if config in data.model_of and len(curve) >= data.budget
    ]
    features = np.array([run.features for run in runs])
    return run_regression(PRIOR_TREES).fit(features, dataset_percentiles(runs))


def estimated_epoch_seconds(problem: Any) -> dict[str, float]:
    """Each candidate's seconds per epoch on the target, from the timings on the other datasets.

    A regression of the log seconds per epoch and per training example on the run's protocol
    (its model and hyperparameters: batch size, mixed precision, ... change an epoch's cost 10,000
    fold across Quick-Tune's runs), fitted on the other datasets' runs, times the target's examples.
    """
    key = (id(problem.data), problem.target, tuple(problem.repository))
    regression = _cached("cost", key, lambda: cost_regression(problem.data, problem.repository))
    data: CurveData = problem.data
    features = np.array([data.protocol_of[config] for config in problem.configs])
    per_example = np.exp(regression.predict(features))
    examples = _examples(data, problem.target)
    return {
        config: float(value * examples) for config, value in zip(problem.configs, per_example, strict=True)
    }


def _examples(data: CurveData, dataset: str) -> float:
    """A dataset's training examples (the first descriptor); 1 when the data has no descriptors."""
    return float(data.descriptors[dataset][0]) if data.descriptors else 1.0


def cost_regression(data: CurveData, repository: Sequence[str]) -> Any:
    """The regression of :func:`estimated_epoch_seconds`, on every timed run of ``repository``."""
    features, outcome = [], []
    for dataset in repository:
        for config, seconds in data.seconds[dataset].items():
            if seconds and config in data.protocol_of:
                features.append(data.protocol_of[config])
                outcome.append(math.log(statistics.median(seconds) / _examples(data, dataset)))
    return run_regression(PRIOR_TREES).fit(np.array(features), np.array(outcome))


def trend_predictors(problem: Any) -> dict[str, Any]:
    """Each candidate model's trend predictor, fitted on its curves on the other datasets."""
    curves = problem.data.full_curves(list(problem.repository))
    models = {problem.model_of[config] for config in problem.configs}
    return {model: make_predictor(DEFAULT_PREDICTOR, model, curves) for model in models}
