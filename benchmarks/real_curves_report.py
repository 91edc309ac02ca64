"""The summaries and printed tables of ``real_curves.py``: what the replay's numbers mean together.

Bootstrap intervals over targets and the paired comparison with successive halving
(:mod:`_stats`), the diagnosis's means, and the tables the script prints.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from _shared import table
from _stats import CONFIDENCE, bootstrap_mean, compare, replicate_means, resample_indices

BOOTSTRAP_REPLICATES = 2000
# The real-data issue's goal: at most successive halving's mean regret, at most this share of its cost.
GOAL_COST_SHARE = 0.75
ISSUE_METHODS = ("brute_force", "successive_halving", "two_phase_paper", "hfselect")


def uncertainty(per_target: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per method: its mean regret's bootstrap interval over targets, its difference with SH's, the goal's odds.

    Paired on the same replicates (:mod:`_stats`); ``vs_successive_halving`` is ``"lower"``,
    ``"higher"`` or ``"tie"`` (zero inside the difference's interval). Another draw of targets
    moves a mean over 17 of them by several hundredths, so a smaller mean alone is no win.
    ``goal_share`` is the share of those replicates in which the method meets the goal (mean regret
    at most successive halving's, mean cost at most ``GOAL_COST_SHARE`` of its): how often another
    draw of as many targets would find the goal met.
    """
    methods = list(next(iter(per_target.values())))
    regret = {method: _grid(per_target, method, "normalized_regret") for method in methods}
    cost = {method: _grid(per_target, method, "cost_seconds") for method in methods}
    draws = resample_indices(1, len(per_target), BOOTSTRAP_REPLICATES)
    halving_regret = replicate_means(regret["successive_halving"], draws)
    halving_cost = replicate_means(cost["successive_halving"], draws)
    result = {}
    for method in methods:
        difference, verdict = compare(regret[method], regret["successive_halving"], draws)
        meets = (replicate_means(regret[method], draws) <= halving_regret + 1e-12) & (
            replicate_means(cost[method], draws) <= GOAL_COST_SHARE * halving_cost
        )
        result[method] = {
            "mean_normalized_regret": bootstrap_mean(regret[method], draws).as_dict(),
            "regret_minus_successive_halving": difference.as_dict(),
            "vs_successive_halving": verdict,
            "goal_share": float(meets.mean()),
        }
    return result


def _grid(per_target: Mapping[str, Mapping[str, Mapping[str, Any]]], method: str, key: str) -> np.ndarray:
    """One method's ``key`` over the targets, as the ``(1, targets)`` grid :mod:`_stats` takes."""
    return np.array([[rows[method][key] for rows in per_target.values()]], dtype=float)


def diagnosis_summary(diagnosis: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    """Means over targets of :func:`diagnose`'s numbers (seconds for successive halving's split)."""
    rows = list(diagnosis.values())
    epochs = sorted(
        {e for row in rows for e in row["successive_halving"]["dropped_seconds_by_epoch"]}, key=int
    )
    return {
        "hfselect_recall_regret": float(np.mean([row["hfselect"]["recall_regret"] for row in rows])),
        "hfselect_selection_regret": float(np.mean([row["hfselect"]["selection_regret"] for row in rows])),
        "successive_halving_winner_seconds": float(
            np.mean([row["successive_halving"]["winner_seconds"] for row in rows])
        ),
        **{
            f"successive_halving_dropped_at_{epoch}_seconds": float(
                np.mean(
                    [row["successive_halving"]["dropped_seconds_by_epoch"].get(epoch, 0.0) for row in rows]
                )
            )
            for epoch in epochs
        },
    }


def print_report(report: dict[str, Any]) -> None:
    """The summary, per-target hfselect, trend and recall tables."""
    summary = report["summary"]
    brute = summary["brute_force"]["cost_seconds"]
    halving = summary["successive_halving"]["cost_seconds"]
    rows = [
        [
            method,
            f"{row['cost_seconds'] / 3600:.1f}",
            f"{brute / row['cost_seconds']:.1f}x",
            f"{row['cost_seconds'] / halving:.2f}",
            f"{row['mean_normalized_regret']:.3f}",
            _interval(report["uncertainty"][method]["mean_normalized_regret"]),
            report["uncertainty"][method]["vs_successive_halving"] if method != "successive_halving" else "-",
            f"{report['uncertainty'][method]['goal_share']:.2f}",
        ]
        for method, row in summary.items()
    ]
    print(
        f"{len(report['targets'])} targets, leave one dataset out; [low, high]: {CONFIDENCE:.0%} bootstrap over targets"
    )
    headers = [
        "method",
        "hours",
        "vs brute force",
        "cost / SH",
        "mean norm. regret",
        "[low, high]",
        "regret vs SH",
        "goal met",
    ]
    print(table(headers, rows))
    print(
        f"goal met: share of the bootstrap replicates with mean regret <= SH's at <= {GOAL_COST_SHARE:.2f}x its cost"
    )
    print("\nper target (normalized regret; hours):")
    names = [*sorted(ISSUE_METHODS, key=list(summary).index), "hfselect before this benchmark"]
    print(
        table(
            ["target", *names],
            [
                [
                    target,
                    *(
                        f"{rows[m]['normalized_regret']:.3f} {rows[m]['cost_seconds'] / 3600:.1f}h"
                        for m in names
                    ),
                ]
                for target, rows in report["targets"].items()
            ],
        )
    )
    print("\ntrend predictors, mean absolute error of the predicted final score after N epochs:")
    trend = report["trend_mae"]
    epochs = list(next(iter(trend.values())))
    print(table(["predictor", *epochs], [[p, *(f"{v[e]:.3f}" for e in epochs)] for p, v in trend.items()]))
    print(
        "\nrecall without proxies, every rule (hit rate / normalized regret of the best model in the top K; "
        "Spearman with the finals):"
    )
    recall_rows = report["recall"]["mean"]
    ks = [key[3:-7] for key in next(iter(recall_rows.values())) if key.endswith("_regret")]
    print(
        table(
            ["rule", *(f"K={k}" for k in ks), "Spearman"],
            [
                [
                    rule,
                    *(f"{row[f'top{k}_hit']:.2f} / {row[f'top{k}_regret']:.3f}" for k in ks),
                    "-" if row["spearman"] is None else f"{row['spearman']:.2f}",
                ]
                for rule, row in recall_rows.items()
            ],
        )
    )


def _interval(row: Mapping[str, float]) -> str:
    return f"[{row['low']:.3f}, {row['high']:.3f}]"


def print_diagnosis(report: dict[str, Any]) -> None:
    """Per target: what hfselect's recall and its halving lost; successive halving's cost split."""
    per_target = report["diagnosis"]["per_target"]
    rows = []
    for target, row in per_target.items():
        mine, halving = row["hfselect"], row["successive_halving"]
        dropped = sum(halving["dropped_seconds_by_epoch"].values())
        lost = mine["best_recalled_dropped"]
        rows.append(
            [
                target,
                f"{mine['recall_regret']:.3f}",
                f"{mine['selection_regret']:.3f}",
                f"epoch {lost['epoch']}" if lost else "-",
                f"{halving['winner_seconds'] / 3600:.1f}",
                f"{dropped / 3600:.1f}",
            ]
        )
    print(
        "\ndiagnosis: hfselect's regret (recall: best recalled model; selection: halving on top), SH's hours:"
    )
    print(
        table(
            ["target", "recall", "selection", "best recalled dropped", "SH winner h", "SH dropped h"],
            rows,
        )
    )
    mean = report["diagnosis"]["mean"]
    split = ", ".join(
        f"{key.split('_at_')[1].split('_')[0]}: {value / 3600:.2f}"
        for key, value in mean.items()
        if "_dropped_at_" in key
    )
    print(f"SH's dropped runs, mean hours by the epoch they were dropped at: {split}")


def print_data(data: Mapping[str, Any]) -> None:
    """What the replay read: datasets, budget, runs cut short on reading, targets skipped."""
    skipped = ", ".join(data["skipped_targets"]) or "none"
    print(
        f"\ndata: {data['datasets']} datasets, a {data['budget_epochs']}-epoch budget; "
        f"{data['truncated_runs']} runs cut at a non-finite score or their last timed epoch; "
        f"targets skipped (fewer than 2 full-length runs): {skipped}"
    )
