"""The tables ``selection_replay.py`` prints: methods with intervals, hfselect per target, recall and trends."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from _shared import table
from _stats import CONFIDENCE

from hfselect.core.recall import DEFAULT_SCOPE


def run_label(run: dict[str, Any]) -> str:
    """A replay run's name: its zoo seed and its training seed."""
    return f"zoo seed {run['zoo_seed']}, training seed {run['training_seed']}"


def print_report(runs: list[dict[str, Any]], summary: dict[str, dict[str, Any]], candidates: int) -> None:
    """The tables: methods with intervals and worst run, hfselect per target, recall and trend quality."""
    first = runs[0]
    print(
        f"zoo: {first['models']} models x {first['datasets']} datasets, {first['epochs']} epochs budget; "
        f"{first['clusters'][0]} clusters at 0.09 ({first['clusters'][1]} of several) in the first run; "
        f"{len(runs)} run(s): " + "; ".join(run_label(run) for run in runs)
    )
    print(
        f"[low, high]: {CONFIDENCE:.0%} bootstrap intervals over runs and targets; "
        "tie: the regret difference with hfselect has zero inside its interval"
    )
    brute, halving = summary["brute_force"]["cost_epochs"], summary["successive_halving"]["cost_epochs"]
    rows = []
    for method, row in summary.items():
        low, high = row["cost_interval"]
        rlow, rhigh = row["regret_interval"]
        rows.append(
            [
                method,
                f"{row['cost_epochs']:.1f} [{low:.1f}, {high:.1f}]",
                f"{brute / row['cost_epochs']:.1f}x",
                f"{halving / row['cost_epochs']:.1f}x",
                f"{row['mean_regret']:.4f} [{rlow:.4f}, {rhigh:.4f}]",
                f"{row['worst_run_mean_regret']:.4f}",
                f"{row['max_regret']:.4f}",
                f"{row['hit_rate']:.2f}",
                row.get("regret_vs_hfselect", "-"),
            ]
        )
    headers = [
        "method",
        "epochs",
        "vs brute",
        "vs SH",
        "mean regret",
        "worst run",
        "max regret",
        "hit rate",
        "vs hfselect",
    ]
    print(table(headers, rows))
    if "mean_rerun_regret" in summary["hfselect"]:
        print(
            "\nrerun regret: each run's pick scored by its mean test score over the repository's other "
            "training seeds, against the best model's mean there (a rerun of the fine-tuning):"
        )
        rows = [
            [
                method,
                f"{row['mean_rerun_regret']:.4f} [{row['rerun_regret_interval'][0]:.4f}, "
                f"{row['rerun_regret_interval'][1]:.4f}]",
                " / ".join(f"{v:.4f}" for v in row["per_run_mean_rerun_regret"]),
                row.get("rerun_regret_vs_hfselect", "-"),
            ]
            for method, row in summary.items()
        ]
        print(table(["method", "mean rerun regret", "per run", "vs hfselect"], rows))
    print(
        f"\nhfselect per target ({candidates} candidates; epochs = fine-tuning only), over {len(runs)} run(s):"
    )
    rows = []
    for target in first["per_target"]:
        cells = [run["per_target"][target]["hfselect"] for run in runs if target in run["per_target"]]
        rows.append(
            [
                target,
                f"{np.mean([c['regret'] for c in cells]):.4f}",
                f"{np.max([c['regret'] for c in cells]):.4f}",
                f"{np.mean([c['regret_vs_candidates'] for c in cells]):.4f}",
                f"{np.mean([c['finetune_epochs'] for c in cells]):.1f}",
                f"{np.mean([c['candidates_brute_force_epochs'] for c in cells]):.0f}",
            ]
        )
    print(table(["target", "mean regret", "max regret", "vs best candidate", "epochs", "brute force"], rows))
    quality = pd.concat([pd.DataFrame(run["recall_quality"]) for run in runs])
    quality = quality.groupby(["proxy", "scope", "K"], sort=False).mean().reset_index()
    print(
        f"\nrecall quality, mean over runs ({DEFAULT_SCOPE} = hfselect's rule, representatives = the paper's):"
    )
    print(quality.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    trend = pd.concat([pd.DataFrame(run["trend_error"]) for run in runs])
    trend = trend.groupby(["predictor", "epoch"], sort=False).mean().reset_index()
    print("\ntrend predictors, held-out error of the predicted final validation score, mean over runs:")
    print(trend.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
