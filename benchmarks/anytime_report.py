"""``anytime.py``'s summary: mean regret per method and budget with bootstrap intervals, tables, plot.

Every cell of a (seed, target) grid is one run's normalized regret at one budget; a deterministic
method repeats its one run for every seed. Intervals are :func:`_stats.bootstrap_mean` over seeds
and targets at once, the same replicates for every method of a candidate set; each method's regret
minus a reference's (:data:`REFERENCES`) is :func:`_stats.compare`'s paired difference on them:
``lower``, ``higher`` or ``tie`` (zero inside its interval).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from _shared import table
from _stats import bootstrap_mean, compare, resample_indices

REPLICATES = 2000
#: Every method is compared with these, where they ran (paired, on the same replicates).
REFERENCES = ("hfselect", "successive_halving")


def budget_key(multiplier: float) -> str:
    """A budget's JSON key: ``"1"``, ``"2"``, ... (its multiple of the median full run)."""
    return f"{multiplier:g}"


def summarize(
    per_target: Mapping[str, Mapping[str, Any]], sets: Sequence[str], multipliers: Sequence[float], seeds: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(``sets`` section, ``targets`` section) of the JSON from :func:`anytime_methods.run_target`'s results.

    ``sets[set]["methods"][method][budget]``: mean normalized regret, its 95% interval, mean cost
    in seconds and as a fraction of the budget, how many (seed, target) cells had no pick, and
    ``vs``: its paired difference with each reference that ran.
    ``targets[target][set][method][budget]``: the seed means of regret and cost, no-pick count,
    and each seed's regret.
    """
    summary: dict[str, Any] = {}
    targets: dict[str, Any] = {target: {} for target in per_target}
    for candidate_set in sets:
        present = [target for target, sets_out in per_target.items() if sets_out.get(candidate_set)]
        if not present:
            continue
        draws = resample_indices(seeds, len(present), REPLICATES, seed=0)
        methods: dict[str, Any] = {}
        grids: dict[str, np.ndarray] = {}
        names = list(per_target[present[0]][candidate_set]["methods"])
        for name in names:
            runs = {target: per_target[target][candidate_set]["methods"][name]["runs"] for target in present}
            # (targets, seeds, budgets) each
            regret = np.array([[run["normalized_regret"] for run in runs[t]] for t in present])
            cost = np.array([[run["cost_seconds"] for run in runs[t]] for t in present])
            no_pick = np.array([[[pick is None for pick in run["pick"]] for run in runs[t]] for t in present])
            budgets = np.array([per_target[t][candidate_set]["budgets_seconds"] for t in present])
            grids[name] = regret
            row = {}
            for b, multiplier in enumerate(multipliers):
                interval = bootstrap_mean(regret[:, :, b].T, draws)  # grid (seeds, targets)
                row[budget_key(multiplier)] = {
                    "mean_normalized_regret": interval.mean,
                    "interval": [interval.low, interval.high],
                    "mean_cost_seconds": float(cost[:, :, b].mean()),
                    "mean_cost_fraction": float((cost[:, :, b] / budgets[:, b : b + 1]).mean()),
                    "no_pick": int(no_pick[:, :, b].sum()),
                }
            methods[name] = row
            for i, target in enumerate(present):
                targets[target].setdefault(candidate_set, {})[name] = {
                    budget_key(multiplier): {
                        "normalized_regret": float(regret[i, :, b].mean()),
                        "cost_seconds": float(cost[i, :, b].mean()),
                        "no_pick": int(no_pick[i, :, b].sum()),
                        "per_seed": [float(value) for value in regret[i, :, b]],
                    }
                    for b, multiplier in enumerate(multipliers)
                }
        for reference in (name for name in REFERENCES if name in grids):
            for name, row in methods.items():
                for b, multiplier in enumerate(multipliers):
                    difference, verdict = compare(grids[name][:, :, b].T, grids[reference][:, :, b].T, draws)
                    row[budget_key(multiplier)].setdefault("vs", {})[reference] = {
                        "difference": difference.mean,
                        "interval": [difference.low, difference.high],
                        "verdict": verdict,
                    }
        summary[candidate_set] = {"targets": present, "cells": len(present) * seeds, "methods": methods}
    return summary, targets


def print_tables(summary: Mapping[str, Any], multipliers: Sequence[float]) -> None:
    """One table per candidate set: methods x budgets, ``mean [lo, hi]`` of normalized regret."""
    for candidate_set, section in summary.items():
        print(
            f"\n{candidate_set}: mean normalized regret [95% interval] at each budget (x the median full run), "
            f"{len(section['targets'])} targets x seeds; (n) = cells without a pick"
        )
        rows = []
        for name, row in section["methods"].items():
            cells = []
            for multiplier in multipliers:
                cell = row[budget_key(multiplier)]
                text = f"{cell['mean_normalized_regret']:.3f} [{cell['interval'][0]:.3f}, {cell['interval'][1]:.3f}]"
                cells.append(text + (f" ({cell['no_pick']})" if cell["no_pick"] else ""))
            rows.append([name, *cells])
        headers = ["method", *(f"{budget_key(m)}x" for m in multipliers)]
        print(table(headers, rows))
        for reference in REFERENCES:
            if reference not in section["methods"]:
                continue
            print(f"\n{candidate_set}: regret minus {reference}'s, paired [95% interval], and the verdict")
            rows = []
            for name, row in section["methods"].items():
                if name == reference:
                    continue
                cells = []
                for multiplier in multipliers:
                    vs = row[budget_key(multiplier)]["vs"][reference]
                    low, high = vs["interval"]
                    cells.append(f"{vs['difference']:+.3f} [{low:+.3f}, {high:+.3f}] {vs['verdict']}")
                rows.append([name, *cells])
            print(table(headers, rows))


def plot(summary: Mapping[str, Any], multipliers: Sequence[float], path: Path) -> None:
    """Mean regret against budget (log2 axis), one line per method, a panel per candidate set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = list(summary)
    figure, axes = plt.subplots(1, len(sets), figsize=(6 * len(sets), 4.5), squeeze=False, sharey=True)
    for axis, candidate_set in zip(axes[0], sets, strict=True):
        for name, row in summary[candidate_set]["methods"].items():
            means = [row[budget_key(m)]["mean_normalized_regret"] for m in multipliers]
            low = [row[budget_key(m)]["interval"][0] for m in multipliers]
            high = [row[budget_key(m)]["interval"][1] for m in multipliers]
            (line,) = axis.plot(multipliers, means, marker="o", label=name)
            axis.fill_between(multipliers, low, high, color=line.get_color(), alpha=0.1)
        axis.set_xscale("log", base=2)
        axis.set_xticks(list(multipliers), [budget_key(m) for m in multipliers])
        axis.set_xlabel("budget (x the median full-length run)")
        axis.set_title(f"{candidate_set} ({len(summary[candidate_set]['targets'])} targets)")
        axis.grid(alpha=0.3)
    axes[0][0].set_ylabel("mean normalized regret")
    axes[0][-1].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
