"""What the benchmark datasets say hfselect's selection can reach: its regret-cost frontier, nested.

    OMP_NUM_THREADS=1 python benchmarks/real_curves_frontier.py --data ../shared/anchors/quicktune \\
        --jobs 2 --json real_curves_frontier.json

``real_curves.py`` replays fixed configurations on each target. This script asks a different
question, of the repository instead of the targets: which configuration of hfselect's selection
(recall scope, number of candidates, halving schedule) would the *benchmark datasets* choose, and
can any of them meet the real-data goal (successive halving's mean regret at most, at 0.75x its
cost) there at all?

For each target, each other dataset in turn plays the target of the remaining ones (its learned
prior, trend predictors and their held-out errors fitted without it and without the target: the
same nesting as ``--coverage-candidates``), and every configuration of the grid is replayed on it
with successive halving beside it:

* ``scope``: ``every`` (the learned prior alone) or ``evidence`` (hfselect's default rule);
* ``candidates``: 2 to 12 (the pool, where it is smaller);
* ``schedule``: the library's rungs (:func:`hfselect.core.halving.halving_rungs`: epochs 3, 6, 12,
  24 of 50), successive halving's (1, 2, 4, 8, 16, 32) or doubling from epoch 2; each with rounds
  that keep the better half (the library's default ``reduction_factor=2``) or the best third
  (``reduction_factor=3``, Hyperband's: ``"library, a third kept"``).

Per target, over its benchmark datasets, each configuration gets its mean regret and its cost as a
share of successive halving's (total seconds over total seconds). The *calibrated* configuration is
the cheapest one whose mean regret there is at most successive halving's (the lowest regret where
none is): the rule a user who wants successive halving's accuracy for less would apply, asked of
data the target is not in. It is then replayed on the target; those rows are scored like
``real_curves.py``'s, with the same bootstrap. ``frontier`` in the JSON is each configuration's
mean over the targets' nested replays, and ``goal_line`` the lowest of those regrets at or under
the goal's cost share.

``--prior final`` recalls with the learned prior of final scores, the stand-in before
2026-12-02 (:func:`real_curves_priors.final_score_prior`), for the before and after of that change.

Nothing here looks at a target's curves before its calibrated configuration is chosen. It fits one
prior and one predictor set per (target, benchmark dataset): about 70 CPU-minutes on 17 datasets,
hence ``--jobs`` (targets in parallel processes).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, get_args

import numpy as np
from _shared import machine_info, table
from real_curves import halving_rungs_doubling, recall, select, successive_halving
from real_curves_coverage import nested_targets
from real_curves_data import CurveData, DataError, Target, chosen_targets, load_curves, make_target
from real_curves_priors import learned_prior
from real_curves_protocol import PriorObjective
from real_curves_report import GOAL_COST_SHARE, uncertainty

from hfselect.config import DEFAULT_MARGIN, DEFAULT_PREDICTOR, DEFAULT_REDUCTION_FACTOR
from hfselect.core.halving import halving_rungs

SCOPES = ("every", "evidence")
MAX_CANDIDATES = 12  # beyond 12 every configuration cost more than successive halving when tried


@dataclass(frozen=True)
class Schedule:
    """When halving decides (its rungs for a budget) and what share of the candidates a round keeps."""

    rungs: Callable[[int], list[int]]
    reduction_factor: int = DEFAULT_REDUCTION_FACTOR  # a round keeps the best 1/reduction_factor (rounded up)


def _from_epoch_2(budget: int) -> list[int]:
    return [rung for rung in halving_rungs_doubling(budget) if rung >= 2]


_RUNGS: dict[str, Callable[[int], list[int]]] = {
    "library": halving_rungs,
    "from epoch 1": halving_rungs_doubling,
    "from epoch 2": _from_epoch_2,
}
# Each set of rungs keeping the better half (the library's default), then keeping the best third
# (Hyperband's reduction factor): more candidates for the same epochs, judged on fewer rungs.
SCHEDULES: dict[str, Schedule] = {
    **{name: Schedule(rungs) for name, rungs in _RUNGS.items()},
    **{f"{name}, a third kept": Schedule(rungs, 3) for name, rungs in _RUNGS.items()},
}

HALVING = "successive_halving"

# One replay: [normalized regret, cost in seconds]
Outcome = list[float]


def config_name(scope: str, candidates: int, schedule: str) -> str:
    """A configuration's key in the JSON: ``"every, 8 candidates, library"``."""
    return f"{scope}, {candidates} candidates, {schedule}"


def configurations(pool: int) -> list[tuple[str, int, str]]:
    """Every (scope, candidates, schedule) of the grid for a pool of ``pool`` models."""
    top = min(pool, MAX_CANDIDATES)
    return [(scope, k, schedule) for scope in SCOPES for k in range(2, top + 1) for schedule in SCHEDULES]


def replay_grid(target: Target, prior: PriorObjective = "percentile") -> dict[str, Any]:
    """Successive halving and every configuration on ``target``: ``{name: [regret, cost]}`` and its pool.

    ``prior``: what the learned prior regresses (:func:`real_curves_priors.learned_prior`).
    """
    pool = len(target.curves)
    halving = successive_halving(target)
    outcomes: dict[str, Any] = {
        "pool": pool,
        HALVING: [halving["normalized_regret"], halving["cost_seconds"]],
    }
    scores = learned_prior(target, prior)
    orders = {scope: recall(target, pool, scope, scores) for scope in SCOPES}
    for scope, k, schedule in configurations(pool):
        plan = SCHEDULES[schedule]
        result = select(
            target,
            orders[scope][:k],
            DEFAULT_PREDICTOR,
            DEFAULT_MARGIN,
            plan.rungs(target.budget),
            reduction_factor=plan.reduction_factor,
        )
        outcomes[config_name(scope, k, schedule)] = [result["normalized_regret"], result["cost_seconds"]]
    return outcomes


def lookup(outcomes: Mapping[str, Any], scope: str, k: int, schedule: str) -> Outcome:
    """A configuration's outcome; asking for more candidates than the pool holds gets the whole pool."""
    return outcomes[config_name(scope, min(k, outcomes["pool"], MAX_CANDIDATES), schedule)]


def nested_grid(
    data: CurveData, target: str, prior: PriorObjective = "percentile"
) -> dict[str, dict[str, Any]]:
    """Each other dataset with two or more candidates as the target of the rest: its grid of outcomes."""
    return {held_out.name: replay_grid(held_out, prior) for held_out in nested_targets(data, target)}


def calibrate(grids: Mapping[str, Mapping[str, Any]]) -> tuple[dict[str, dict[str, float]], float]:
    """Every configuration's mean regret and cost share over ``grids``, and successive halving's mean regret."""
    halving_cost = sum(outcomes[HALVING][1] for outcomes in grids.values())
    stats = {}
    # Up to the largest pool: asking more of a smaller pool repeats its whole-pool outcome (lookup).
    for scope, k, schedule in configurations(max(outcomes["pool"] for outcomes in grids.values())):
        picked = [lookup(outcomes, scope, k, schedule) for outcomes in grids.values()]
        stats[config_name(scope, k, schedule)] = {
            "mean_normalized_regret": float(np.mean([regret for regret, _ in picked])),
            "cost_share": float(sum(cost for _, cost in picked) / halving_cost),
        }
    halving_regret = float(np.mean([outcomes[HALVING][0] for outcomes in grids.values()]))
    return stats, halving_regret


def calibrated(stats: Mapping[str, Mapping[str, float]], halving_regret: float, scope: str) -> str:
    """The cheapest configuration of ``scope`` at most as wrong as successive halving; else the least wrong."""
    own = {name: row for name, row in stats.items() if name.startswith(f"{scope}, ")}
    matching = [name for name, row in own.items() if row["mean_normalized_regret"] <= halving_regret + 1e-12]
    if matching:
        return min(matching, key=lambda name: (own[name]["cost_share"], own[name]["mean_normalized_regret"]))
    return min(own, key=lambda name: own[name]["mean_normalized_regret"])


def replay_target(data: CurveData, name: str, prior: PriorObjective = "percentile") -> dict[str, Any]:
    """One target: its nested calibration, the configurations chosen, and their replay on it."""
    started = time.perf_counter()
    grids = nested_grid(data, name, prior)
    if not grids:
        raise DataError(f"{name}: no other dataset has two or more full-length candidates to calibrate on")
    stats, halving_regret = calibrate(grids)
    target = make_target(data, name)
    outcomes = replay_grid(target, prior)
    rows = {HALVING: outcomes[HALVING]}
    chosen = {}
    grid = {config_name(*config): config for config in configurations(MAX_CANDIDATES)}
    for scope in SCOPES:
        chosen[scope] = calibrated(stats, halving_regret, scope)
        rows[f"hfselect, calibrated on the benchmark datasets ({scope})"] = lookup(
            outcomes, *grid[chosen[scope]]
        )
    print(
        f"  {name}: {len(grids)} benchmark datasets, {time.perf_counter() - started:.0f} s", file=sys.stderr
    )
    return {
        "rows": {method: {"normalized_regret": r, "cost_seconds": c} for method, (r, c) in rows.items()},
        "chosen": chosen,
        "benchmark_means": stats,
        "benchmark_successive_halving_regret": halving_regret,
    }


def run(
    data: CurveData, targets: Sequence[str], jobs: int = 1, prior: PriorObjective = "percentile"
) -> dict[str, Any]:
    """Every target's nested calibration (``jobs`` targets at a time), the frontier and the scored rows."""
    replay = partial(replay_target, data, prior=prior)
    if jobs > 1:
        # Spawned, not forked: a child forked after scikit-learn's OpenMP threads started can hang.
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            per_target = dict(zip(targets, pool.map(replay, targets), strict=True))
    else:
        per_target = {name: replay(name) for name in targets}
    if not per_target:
        raise DataError("no target has two or more full-length candidates")
    rows = {name: result["rows"] for name, result in per_target.items()}
    frontier = {
        config: {
            key: float(np.mean([result["benchmark_means"][config][key] for result in per_target.values()]))
            for key in ("mean_normalized_regret", "cost_share")
        }
        for config in next(iter(per_target.values()))["benchmark_means"]
        if all(config in result["benchmark_means"] for result in per_target.values())
    }
    halving = float(
        np.mean([result["benchmark_successive_halving_regret"] for result in per_target.values()])
    )
    within = [
        row["mean_normalized_regret"] for row in frontier.values() if row["cost_share"] <= GOAL_COST_SHARE
    ]
    halving_cost = sum(row[HALVING]["cost_seconds"] for row in rows.values())
    summary = {
        method: {
            "mean_normalized_regret": float(
                np.mean([row[method]["normalized_regret"] for row in rows.values()])
            ),
            "cost_share": float(sum(row[method]["cost_seconds"] for row in rows.values()) / halving_cost),
        }
        for method in next(iter(rows.values()))
    }
    return {
        "targets": {
            name: {k: v for k, v in result.items() if k != "benchmark_means"}
            for name, result in per_target.items()
        },
        "summary": summary,
        "uncertainty": uncertainty(rows),
        "frontier": frontier,
        "benchmark_successive_halving_regret": halving,
        "goal_line": {"cost_share": GOAL_COST_SHARE, "lowest_regret": min(within) if within else None},
        "prior": prior,
    }


def pareto(frontier: Mapping[str, Mapping[str, float]], scope: str) -> list[str]:
    """The configurations of ``scope`` that no other beats on both regret and cost, cheapest first."""
    own = sorted(
        (name for name in frontier if name.startswith(f"{scope}, ")),
        key=lambda name: (frontier[name]["cost_share"], frontier[name]["mean_normalized_regret"]),
    )
    kept: list[str] = []
    for name in own:
        if (
            not kept
            or frontier[name]["mean_normalized_regret"] < frontier[kept[-1]]["mean_normalized_regret"]
        ):
            kept.append(name)
    return kept


def print_report(report: Mapping[str, Any]) -> None:
    """The frontier on the benchmark datasets, then the calibrated rows on the targets."""
    frontier = report["frontier"]
    print(
        f"\nOn the benchmark datasets (nested), successive halving: {report['benchmark_successive_halving_regret']:.3f}"
    )
    print(
        table(
            ["configuration", "cost / SH", "mean regret"],
            [
                [
                    name,
                    f"{frontier[name]['cost_share']:.2f}",
                    f"{frontier[name]['mean_normalized_regret']:.3f}",
                ]
                for scope in SCOPES
                for name in pareto(frontier, scope)
            ],
        )
    )
    line = report["goal_line"]
    if line["lowest_regret"] is not None:
        print(
            f"lowest regret at <= {line['cost_share']}x successive halving's cost: {line['lowest_regret']:.3f}"
        )
    print("\nOn the targets:")
    print(
        table(
            ["method", "cost / SH", "mean regret [95%]", "vs SH", "goal met"],
            [
                [
                    method,
                    f"{row['cost_share']:.2f}",
                    "{mean:.3f} [{low:.3f}, {high:.3f}]".format(
                        **report["uncertainty"][method]["mean_normalized_regret"]
                    ),
                    report["uncertainty"][method]["vs_successive_halving"],
                    f"{report['uncertainty'][method]['goal_share']:.2f}",
                ]
                for method, row in report["summary"].items()
            ],
        )
    )


def main(argv: list[str] | None = None) -> int:
    """Run the nested calibration, print the tables, write ``--json``."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", required=True, help="a folder in Quick-Tune's layout (curves/, table.csv)")
    parser.add_argument("--targets", help="comma-separated datasets to hold out in turn (default: all)")
    parser.add_argument("--jobs", type=int, default=1, help="targets replayed in parallel processes")
    parser.add_argument(
        "--prior",
        choices=get_args(PriorObjective),
        default="percentile",
        help="what the learned prior regresses: each run's percentile among its dataset's runs "
        "(default), or its final score (the prior before 2026-12-02)",
    )
    parser.add_argument("--json", help="write every number here")
    args = parser.parse_args(argv)
    try:
        data = load_curves(Path(args.data))
        requested = chosen_targets(data, args.targets)
        targets = [name for name in requested if data.has_choice(name)]
        started = time.perf_counter()
        report = run(data, targets, max(1, args.jobs), args.prior)
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    report["machine"] = machine_info(seconds=round(time.perf_counter() - started, 1), jobs=args.jobs)
    report["data"] = {
        "folder": str(args.data),
        "datasets": len(data.datasets),
        "budget_epochs": data.budget,
        "skipped_targets": [name for name in requested if name not in targets],  # fewer than 2 candidates
    }
    print_report(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
