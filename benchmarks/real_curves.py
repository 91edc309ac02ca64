"""Model selection replayed on real learning curves: the Quick-Tune meta-dataset, leave one dataset out.

    python benchmarks/real_curves.py --data ../shared/anchors/quicktune --json real_curves.json

``--data`` holds Quick-Tune's layout: ``curves/perf.json`` (dataset -> config id -> validation
accuracy in % after each epoch), ``curves/cost.json`` (the same keys -> seconds of each epoch) and
``table.csv`` (one row per config id: the model as one-hot ``cat:model:NAME`` columns and the
hyperparameters). Nothing about the datasets is hard-coded: every dataset in ``perf.json`` is a
target in turn (or those named by ``--targets``), and everything hfselect learns for it (the
performance matrix, the clustering, the trend predictors and their held-out errors, the recall
prior) comes from the *other* datasets only.

Protocol. A model's run on a dataset is the first config id, in ``perf.json``'s order, whose curve
has the full budget (the longest curve in the file: 50 epochs); a model without one is no candidate
there. Ground truth is the run's final validation accuracy. Cost is the seconds (``cost.json``) of
every epoch trained: a run resumed at the next rung does not repeat epochs, and the winner's
remaining epochs to the budget count. Normalized regret = (best final - selected's final) /
(best final - worst final) over the target's candidates. A run ends at its first non-finite score
(it diverged) or where its seconds end, whichever comes first; a target with fewer than two
candidates is skipped. The JSON's ``data`` counts both.

Methods (the same runs for all):

* ``brute_force``: every candidate to the budget; the best final wins.
* ``successive_halving``: every candidate; rungs at epochs 1, 2, 4, 8, 16 (doubling below the
  budget); the better half by current score goes on; the survivor to the budget.
* ``two_phase_paper``: the paper's clustering (0.09) and recall rule (its released code's scope) of
  its share of the models (15 of 39), then one-epoch halving rounds with the k-means trend filter,
  margin 0, the worse half by predicted final score.
* ``hfselect``: its defaults (the default recall scope, 4 candidates, the default trend predictor,
  ``margin="auto"``, halving rounds at :func:`hfselect.core.halving.halving_rungs` that drop the
  worse half by rank sum, :func:`hfselect.core.halving.halving_order`), run through the
  library (:func:`hfselect.core.recall.coarse_recall`, :func:`hfselect.core.halving.replay_halving`).
  Then hfselect with one choice changed at a time, and as it was before this benchmark.
* ``hfselect, one-epoch probe recall`` (:func:`probe_recall`): every model trains one epoch and
  that score is the proxy of hfselect's default recall rule, which then weighs each benchmark
  dataset by how well it agrees with the probe; the recalled runs go on through the library's
  halving. With 4 candidates, and with a third of the pool.
* ``hfselect, worse half by predicted final`` (the rule before ``DEFAULT_HALVING_ORDER``) and
  ``hfselect, worse half by current score`` (plain successive halving's order, with the trend's
  low-performer rule): the other two orders of :func:`hfselect.core.halving.halving_order`.
* ``hfselect, margin of the mean held-out error``: ``margin="auto"`` as it was before
  ``DEFAULT_MARGIN_COVERAGE``: the mean of the predictor's held-out errors, not their 90th percentile.
* ``hfselect, 8 candidates, recall on the prior alone``: 8 candidates ranked by the learned prior
  alone (``scope="every"``: the prior was fitted on the benchmark runs, so the evidence rule would
  count them twice, the second time blind to the protocol). Found by looking at the 17 datasets of
  ``../shared/anchors/quicktune`` (4, 6 or 8 candidates; ``evidence`` or ``every``): a
  configuration to confirm on other datasets, not a default.
* ``hfselect, protocol-aware trend``: the defaults, but each run's final score is predicted by a
  regression on its protocol and its first epochs (:mod:`real_curves_protocol`), the predictor the
  issue suggested, not from its curve's shape alone; its ``auto`` margin is the same quantile of
  its errors on held-out benchmark datasets.
* With ``--coverage-candidates`` (:func:`coverage_rows`): hfselect recalling by the prior alone
  (``every``) or by ``evidence``, as many candidates as held the best model on 75% or 90% of the
  benchmark datasets (:mod:`real_curves_coverage`).
* ``hfselect, runs not judged in their warmup``: the defaults, but a run still in its protocol's
  learning-rate warmup (``warmup_epochs`` in ``table.csv``: 0, 5 or 10 epochs) is kept at a rung
  and judged at the first rung after it (``replay_halving``'s ``warmup_epochs``).

No proxy scores exist here (no model outputs on the targets). What recall uses instead:

* ``hfselect`` gets a *learned prior* (:func:`real_curves_priors.learned_prior`) as its proxy:
  each candidate run's standing among the target's runs predicted before it trains, by a
  regression fitted on every run of the other datasets (its percentile among its own dataset's
  runs) from the run's protocol (hyperparameters), its model and its dataset's descriptors.
* ``hfselect, prior of final scores``: the learned prior before 2026-12-02, the same regression of
  the runs' final scores themselves (:func:`real_curves_priors.final_score_prior`).
* ``hfselect, protocol prior recall`` (the stand-in before it, :func:`protocol_prior`): each
  model's mean final score over the better half of all its full-length runs on the other datasets,
  whatever their protocol. Each pair there has several runs with random hyperparameters; the
  performance matrix keeps one of them.
* ``two_phase_paper`` and ``hfselect, mean-score recall`` get the same proxy for every model, so the
  rules fall back on the performance matrix alone: hfselect's rule ranks by mean benchmark score,
  the paper's by mean score (cluster members) and cosine similarity (singletons).

``diagnosis`` in the JSON (:func:`diagnose`) says, per target, what hfselect's recall lost (the
best recalled model's regret) and what its halving lost on top, and where successive halving's
seconds go (the winner's run, the runs it dropped by the epoch they were dropped at).

``uncertainty`` in the JSON (:func:`uncertainty`): each method's mean regret with its bootstrap
interval over targets, and whether it differs from successive halving's beyond the noise.

``recall`` in the JSON measures both: how close the best of the top 4 and top 8 comes to the best
model (normalized regret) and the Spearman correlation of the ranking with the final scores.

Also reported: each trend predictor's mean absolute error of the predicted final score of every
candidate run after 1, 3, 5 and 10 epochs (from its curve up to there), fitted as fine selection
fits it: on the model's curves on the other datasets (the neighbours predictor: every model's; the
protocol-aware one: every run of the other datasets, with its protocol).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from _shared import machine_info
from _stats import mean_of_defined, rank_correlation
from real_curves_coverage import best_model_ranks, coverage_candidates
from real_curves_data import CurveData, DataError, Target, chosen_targets, load_curves, make_target
from real_curves_priors import final_score_prior, learned_prior, no_prior, no_proxy, protocol_prior
from real_curves_protocol import PROTOCOL_PREDICTOR
from real_curves_report import (
    diagnosis_summary,
    print_data,
    print_diagnosis,
    print_report,
    uncertainty,
)

from hfselect.config import (
    DEFAULT_CANDIDATES,
    DEFAULT_HALVING_ORDER,
    DEFAULT_MARGIN,
    DEFAULT_PREDICTOR,
    DEFAULT_REDUCTION_FACTOR,
    HalvingOrder,
)
from hfselect.core.clustering import DEFAULT_K_LARGEST, DEFAULT_THRESHOLD
from hfselect.core.halving import halving_rungs, replay_halving
from hfselect.core.recall import DEFAULT_SCOPE, SCOPES, coarse_recall
from hfselect.core.trend import PREDICTORS, TrendPredictor

PAPER_SHARE = 15 / 39  # the paper recalls 15 of its 39 NLP models
COVERAGE_SCOPES = ("every", "evidence")  # --coverage-candidates: the prior alone, and fused with the matrix
COVERAGES = (0.75, 0.9)
TREND_EPOCHS = (1, 3, 5, 10)


def halving_rungs_doubling(budget: int) -> list[int]:
    """Plain successive halving's rungs: 1, 2, 4, ... below the budget (1, 2, 4, 8, 16, 32 for 50)."""
    rungs, rung = [], 1
    while rung < budget:
        rungs.append(rung)
        rung *= 2
    return rungs


def recall(target: Target, top_k: int, scope: str, prior: Mapping[str, float] | None = None) -> list[str]:
    """The recalled candidates (best first), through :func:`hfselect.core.recall.coarse_recall`.

    ``prior`` (model -> a positive score) stands in for a proxy; by default every model gets the same.
    """
    candidates = list(target.curves)
    performance = target.performance.loc[candidates]
    proxies = dict(prior) if prior is not None else no_proxy(candidates)
    result = coarse_recall(
        performance,
        proxies,
        top_k,
        DEFAULT_THRESHOLD,
        DEFAULT_K_LARGEST,
        scope,  # type: ignore[arg-type]
        proxy_transform=(lambda value: max(float(value), 1e-12)) if prior is not None else math.exp,
    )
    return list(result.models)


def select(
    target: Target,
    candidates: Sequence[str],
    predictor: str | None,
    margin: float | str = 0.0,
    rungs: Sequence[int] | None = None,
    warmup: bool = False,
    mean_error_margin: bool = False,
    order_by: HalvingOrder = DEFAULT_HALVING_ORDER,
    reduction_factor: int = DEFAULT_REDUCTION_FACTOR,
) -> dict[str, Any]:
    """Halving over ``candidates`` on the target's curves: the selection, its cost and regret.

    ``warmup``: runs are not judged before their protocol's learning-rate warmup is over.
    ``order_by``: how a round orders the candidates before dropping the worse half
    (:func:`hfselect.core.halving.halving_order`); ``reduction_factor``: a round keeps the best
    ``1 / reduction_factor`` of them.
    ``mean_error_margin``: ``margin="auto"`` is each predictor's mean held-out error (the rule
    before ``DEFAULT_MARGIN_COVERAGE``), not its error bound.
    """
    budget = target.budget
    predictors = target.predictors(predictor, candidates) if predictor is not None else None
    if predictors is not None and mean_error_margin:
        predictors = {model: _with_mean_error_margin(p) for model, p in predictors.items()}
    replay = replay_halving(
        {model: target.curves[model] for model in candidates},
        budget,
        predictors=predictors,
        margin=margin,
        rungs=rungs,
        warmup_epochs=target.warmup if warmup else None,
        order_by=order_by,
        reduction_factor=reduction_factor,
    )
    return {
        "selected": replay.selected,
        "cost_seconds": target.cost(replay.epochs),
        "normalized_regret": target.normalized_regret(replay.selected),
    }


def _with_mean_error_margin(predictor: TrendPredictor) -> TrendPredictor:
    """A copy of ``predictor`` whose error bound is its mean held-out error (the ``"auto"`` margin before)."""
    mean_error = copy.copy(predictor)
    mean_error.error_bound = lambda epoch, coverage=None: predictor.holdout_error(epoch)  # type: ignore[method-assign]
    return mean_error


Method = Callable[[Target], dict[str, Any]]


def brute_force(target: Target) -> dict[str, Any]:
    """Every candidate to the budget; the best final score wins."""
    finals = target.final
    selected = max(finals, key=lambda model: finals[model])
    epochs = {model: len(curve) for model, curve in target.curves.items()}
    return {"selected": selected, "cost_seconds": target.cost(epochs), "normalized_regret": 0.0}


def successive_halving(target: Target) -> dict[str, Any]:
    """Plain successive halving: every candidate, the better half by current score at each doubling rung."""
    return select(target, list(target.curves), None, rungs=halving_rungs_doubling(target.budget))


def every_epoch(target: Target) -> list[int]:
    """The paper's schedule: a halving round after every epoch."""
    return list(range(1, target.budget + 1))


def hfselect_method(
    candidates: int | Callable[[int], int] = DEFAULT_CANDIDATES,
    predictor: str = DEFAULT_PREDICTOR,
    margin: float | str = DEFAULT_MARGIN,
    prior: Callable[[Target], dict[str, float]] | None = None,
    schedule: Callable[[Target], list[int]] | None = None,
    warmup: bool = False,
    scope: str = DEFAULT_SCOPE,
    mean_error_margin: bool = False,
    order_by: HalvingOrder = DEFAULT_HALVING_ORDER,
) -> Method:
    """hfselect's recall then its sync halving, with one choice changed when asked.

    ``prior`` stands in for the proxy (default: :func:`learned_prior`); ``scope`` is the recall rule
    (default: the library's); ``schedule`` gives the rungs (default: the library's
    :func:`hfselect.core.halving.halving_rungs`); ``warmup``: a run is not judged at a rung within
    its learning-rate warmup (``warmup_epochs`` in ``table.csv``); ``mean_error_margin`` and
    ``order_by``: see :func:`select`.
    """

    def run(target: Target) -> dict[str, Any]:
        k = candidates(len(target.curves)) if callable(candidates) else candidates
        chosen = recall(target, k, scope, (prior or learned_prior)(target))
        rungs = schedule(target) if schedule else None
        return select(
            target,
            chosen,
            predictor,
            margin,
            rungs,
            warmup=warmup,
            mean_error_margin=mean_error_margin,
            order_by=order_by,
        )

    return run


def probe_recall(candidates: Callable[[int], int], predictor: str = DEFAULT_PREDICTOR) -> Method:
    """Recall on a one-epoch probe: every candidate trains one epoch, its score is the proxy.

    hfselect's default rule (``scope="evidence"``) then fuses that score with the benchmark
    evidence, each benchmark dataset weighted by how well its scores agree with the probe's (a
    dataset similarity measured on the target itself). The recalled runs go on from epoch 1 through
    the library's halving (its rungs after the first epoch, its default predictor and margin). The
    probe epoch of every model is in the cost.
    """

    def run(target: Target) -> dict[str, Any]:
        pool = list(target.curves)
        chosen = recall(target, candidates(len(pool)), DEFAULT_SCOPE, one_epoch_probe(target))
        rungs = [rung for rung in halving_rungs(target.budget) if rung > 1]
        predictors = target.predictors(predictor, chosen)
        replay = replay_halving(
            {model: target.curves[model] for model in chosen},
            target.budget,
            predictors=predictors,
            margin=DEFAULT_MARGIN,
            rungs=rungs,
        )
        epochs = {model: max(1, replay.epochs.get(model, 0)) for model in pool}
        return {
            "selected": replay.selected,
            "cost_seconds": target.cost(epochs),
            "normalized_regret": target.normalized_regret(replay.selected),
        }

    return run


def methods() -> dict[str, Method]:
    """Every method replayed, by name: the four of the issue, then hfselect with one choice changed."""
    return {
        "brute_force": brute_force,
        "successive_halving": successive_halving,
        "two_phase_paper": lambda t: select(
            t,
            recall(t, max(2, round(PAPER_SHARE * len(t.curves))), "all"),
            "kmeans",
            0.0,
            every_epoch(t),
            order_by="predicted",
        ),
        "hfselect": hfselect_method(),
        "hfselect before this benchmark": hfselect_method(
            predictor="headroom",
            prior=no_prior,
            schedule=every_epoch,
            mean_error_margin=True,
            order_by="predicted",
        ),
        "hfselect, worse half by predicted final": hfselect_method(order_by="predicted"),
        "hfselect, worse half by current score": hfselect_method(order_by="score"),
        "hfselect, protocol prior recall": hfselect_method(prior=protocol_prior),
        "hfselect, prior of final scores": hfselect_method(prior=final_score_prior),
        "hfselect, margin of the mean held-out error": hfselect_method(mean_error_margin=True),
        "hfselect, 8 candidates, recall on the prior alone": hfselect_method(candidates=8, scope="every"),
        "hfselect, runs not judged in their warmup": hfselect_method(warmup=True),
        "hfselect, mean-score recall": hfselect_method(prior=no_prior),
        "hfselect, headroom trend": hfselect_method(predictor="headroom"),
        "hfselect, protocol-aware trend": hfselect_method(predictor=PROTOCOL_PREDICTOR),
        "hfselect, rounds every epoch": hfselect_method(schedule=every_epoch),
        "hfselect, margin=0": hfselect_method(margin=0.0),
        "hfselect, 8 candidates": hfselect_method(candidates=8),
        "hfselect, a quarter of the pool": hfselect_method(candidates=lambda pool: max(2, round(pool / 4))),
        "hfselect, one-epoch probe recall": probe_recall(lambda pool: DEFAULT_CANDIDATES),
        "hfselect, one-epoch probe recall, a third of the pool": probe_recall(
            lambda pool: max(2, round(pool / 3))
        ),
    }


def recall_orders(target: Target, scopes: Sequence[str]) -> dict[str, list[str]]:
    """Every candidate in each scope's recall order under the learned prior (best first)."""
    prior = learned_prior(target)
    return {scope: recall(target, len(target.curves), scope, prior) for scope in scopes}


def coverage_rows(data: CurveData, target: Target) -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
    """hfselect with as many candidates as the benchmark datasets say cover the best model.

    Per scope and coverage (:mod:`real_curves_coverage`): the rows, and how many each recalled.
    """
    ranks = best_model_ranks(data, target.name, COVERAGE_SCOPES, recall_orders)
    rows, counts = {}, {}
    for scope in COVERAGE_SCOPES:
        for coverage in COVERAGES:
            name = f"hfselect, candidates holding the best on {coverage:.0%} of benchmarks ({scope})"
            counts[name] = coverage_candidates(ranks[scope], len(target.curves), coverage)
            rows[name] = hfselect_method(candidates=counts[name], scope=scope)(target)
    return rows, counts


def diagnose(target: Target) -> dict[str, Any]:
    """Where hfselect's regret and successive halving's cost come from, on one target.

    hfselect (its defaults): ``recall_regret`` is the normalized regret of the best model it
    recalled (what recall lost), ``selection_regret`` what halving lost on top of it, and, when the
    best recalled model was dropped, the epoch and reason. Successive halving: the seconds of the
    winner's run and of the runs it dropped, by the epoch they were dropped at.
    """
    chosen = recall(target, DEFAULT_CANDIDATES, DEFAULT_SCOPE, learned_prior(target))
    best_recalled = min(chosen, key=target.normalized_regret)
    replay = replay_halving(
        {model: target.curves[model] for model in chosen},
        target.budget,
        predictors=target.predictors(DEFAULT_PREDICTOR, chosen),
        margin=DEFAULT_MARGIN,
    )
    recall_regret = target.normalized_regret(best_recalled)
    halving = replay_halving(target.curves, target.budget, rungs=halving_rungs_doubling(target.budget))
    dropped: dict[str, float] = {}
    for model, epochs in halving.epochs.items():
        if model != halving.selected:
            dropped[str(epochs)] = dropped.get(str(epochs), 0.0) + target.cost({model: epochs})
    return {
        "hfselect": {
            "candidates": chosen,
            "recall_regret": recall_regret,
            "selection_regret": target.normalized_regret(replay.selected) - recall_regret,
            "best_recalled_dropped": (
                {"epoch": replay.epochs[best_recalled], "reason": replay.drops[best_recalled]}
                if best_recalled in replay.drops
                else None
            ),
        },
        "successive_halving": {
            "winner_seconds": target.cost({halving.selected: target.budget}),
            "dropped_seconds_by_epoch": dict(sorted(dropped.items(), key=lambda item: int(item[0]))),
        },
    }


def trend_errors(target: Target, epochs: Sequence[int] = TREND_EPOCHS) -> dict[str, dict[int, list[float]]]:
    """Per predictor and epoch, the absolute error of the predicted final score of each candidate run."""
    errors: dict[str, dict[int, list[float]]] = {}
    for name in (*PREDICTORS, PROTOCOL_PREDICTOR):
        fitted = target.predictors(name, list(target.curves))
        for epoch in epochs:
            errors.setdefault(name, {}).setdefault(epoch, [])
            for model, curve in target.curves.items():
                if epoch < len(curve):
                    predicted = fitted[model].predict_curve(curve[:epoch])
                    errors[name][epoch].append(abs(predicted - curve[-1]))
    return errors


def one_epoch_probe(target: Target) -> dict[str, float]:
    """Each candidate's validation score after its first epoch on the target (a proxy that costs an epoch)."""
    return {model: target.curves[model][0] for model in target.curves}


# What stands in for a proxy score in the recall-quality table (no model outputs exist here).
RECALL_PROXIES: dict[str, Callable[[Target], dict[str, float]]] = {
    "learned prior": learned_prior,
    "learned prior of final scores": final_score_prior,
    "protocol prior": protocol_prior,
    "one-epoch probe": one_epoch_probe,
}
RECALL_KS = (1, 3, DEFAULT_CANDIDATES, 5, 8)


def recall_quality(target: Target, ks: Sequence[int] = RECALL_KS) -> dict[str, dict[str, float | None]]:
    """Every recall rule here: Spearman with the finals, and hit and regret of the best model in the top K.

    A rule is a proxy stand-in (:data:`RECALL_PROXIES`) with a recall scope (every one of
    :data:`hfselect.core.recall.SCOPES`), plus the mean benchmark score alone (no proxy).
    """
    finals = target.final
    rules: dict[str, tuple[str, dict[str, float] | None]] = {"mean benchmark score": (DEFAULT_SCOPE, None)}
    for proxy, stand_in in RECALL_PROXIES.items():
        scores = stand_in(target)
        for scope in SCOPES:
            rules[f"{proxy}, {scope}"] = (scope, scores)
    quality = {}
    for rule, (scope, prior) in rules.items():
        ranking = recall(target, len(target.curves), scope, prior)
        order = {model: rank for rank, model in enumerate(ranking)}
        # Undefined (None in the JSON) when every candidate's final is the same.
        correlation = rank_correlation([-order[m] for m in finals], list(finals.values()))
        regrets = {k: min(target.normalized_regret(m) for m in ranking[:k]) for k in ks}
        quality[rule] = {
            "spearman": correlation,
            **{f"top{k}_regret": regret for k, regret in regrets.items()},
            **{f"top{k}_hit": float(regret <= 1e-12) for k, regret in regrets.items()},
        }
    return quality


def run(data: CurveData, targets: Sequence[str], coverage: bool = False) -> dict[str, Any]:
    """Every method on every target, the trend errors and the recall quality.

    ``coverage``: also the rows of :func:`coverage_rows` (minutes more), and their candidate counts
    (``coverage_candidates``: target -> row -> count).
    """
    per_target: dict[str, dict[str, dict[str, Any]]] = {}
    errors: dict[str, dict[int, list[float]]] = {}
    quality: dict[str, dict[str, Any]] = {}
    diagnosis: dict[str, dict[str, Any]] = {}
    candidates: dict[str, dict[str, int]] = {}  # --coverage-candidates: target -> row -> candidates
    for name in targets:
        if not data.has_choice(name):
            print(f"  {name}: fewer than 2 candidates with {data.budget} epochs, skipped", file=sys.stderr)
            continue
        target = make_target(data, name)
        started = time.perf_counter()
        per_target[name] = {method: replay(target) for method, replay in methods().items()}
        if coverage:
            rows, candidates[name] = coverage_rows(data, target)
            per_target[name] |= rows
        for predictor, by_epoch in trend_errors(target).items():
            for epoch, values in by_epoch.items():
                errors.setdefault(predictor, {}).setdefault(epoch, []).extend(values)
        quality[name] = recall_quality(target)
        diagnosis[name] = diagnose(target)
        print(
            f"  {name}: {len(target.curves)} candidates, {time.perf_counter() - started:.1f} s",
            file=sys.stderr,
        )
    if not per_target:
        raise DataError("no target has two or more candidates with a full-length curve")
    summary = {
        method: {
            "cost_seconds": float(np.mean([rows[method]["cost_seconds"] for rows in per_target.values()])),
            "mean_normalized_regret": float(
                np.mean([rows[method]["normalized_regret"] for rows in per_target.values()])
            ),
        }
        for method in next(iter(per_target.values()))
    }
    trend = {
        predictor: {str(epoch): float(np.mean(values)) for epoch, values in by_epoch.items() if values}
        for predictor, by_epoch in errors.items()
    }
    first = next(iter(quality.values()))
    recall_summary = {
        rule: {key: mean_of_defined([row[rule][key] for row in quality.values()]) for key in first[rule]}
        for rule in first
    }
    return {
        "targets": per_target,
        "summary": summary,
        "trend_mae": trend,
        "recall": {"per_target": quality, "mean": recall_summary},
        "diagnosis": {"per_target": diagnosis, "mean": diagnosis_summary(diagnosis)},
        "uncertainty": uncertainty(per_target),
    } | ({"coverage_candidates": candidates} if coverage else {})


def main(argv: list[str] | None = None) -> int:
    """Run the replay, print the tables, write ``--json``."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", required=True, help="a folder in Quick-Tune's layout (curves/, table.csv)")
    parser.add_argument("--targets", help="comma-separated datasets to hold out in turn (default: all)")
    parser.add_argument("--json", help="write every number here")
    parser.add_argument(
        "--coverage-candidates",
        action="store_true",
        help="also recall as many candidates as held the best model on the benchmark datasets "
        "(one prior per benchmark dataset and target: about 5 more minutes on 17 datasets)",
    )
    args = parser.parse_args(argv)
    try:
        data = load_curves(Path(args.data))
        targets = chosen_targets(data, args.targets)
        started = time.perf_counter()
        report = run(data, targets, coverage=args.coverage_candidates)
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    report["machine"] = machine_info(seconds=round(time.perf_counter() - started, 1))
    report["data"] = {
        "folder": str(args.data),
        "datasets": len(data.datasets),
        "budget_epochs": data.budget,
        "truncated_runs": data.truncated,
        "skipped_targets": [name for name in targets if name not in report["targets"]],
    }
    print_report(report)
    print_diagnosis(report)
    print_data(report["data"])
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
