"""The callback's rules without benchmark curves, replayed on real learning curves as studies.

A user's first study with :class:`~hfselect.callbacks.ConvergenceTrendCallback` has no benchmark
curves to predict from: the callback halts on the study rule (:mod:`hfselect.core.study_rule`), and
from :data:`~hfselect.config.STUDY_TREND_MIN_RUNS` finished runs on also on the trend of the study's
own curves. This script replays each Quick-Tune dataset's full-length runs one after another as
one study (in ``--seeds`` random orders), each run deciding after every epoch as the callback would,
and compares:

* never stopping;
* Optuna's ``MedianPruner`` with its defaults (a trial below the median of the finished trials at
  the same step, once 5 trials have finished), run from Optuna itself on the same runs in the same
  order;
* the study rule alone;
* the callback: the study rule, then also the trend of the study's finished runs.

Per row: the share of all epochs saved, how often the dataset's best run (best final score) was
halted, and the normalized regret of the best run that finished (what the study would pick),
each with a 95% bootstrap interval over datasets and orders.

``python benchmarks/callback_rules.py --data ../shared/anchors/quicktune --json OUT.json``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from _shared import machine_info, table
from _stats import bootstrap_mean, resample_indices
from real_curves_data import DataError, chosen_targets, load_curves

from hfselect.config import DEFAULT_PREDICTOR, STUDY_TREND_MIN_RUNS
from hfselect.core.halving import predict_final
from hfselect.core.study_rule import RunCurve, finished_curves, study_decision, study_rule_decision
from hfselect.core.trend import TrendPredictor, make_predictor, resolve_margin

# A replay: the runs' curves (runs x epochs) and an order -> the epochs each run trained.
Replay = Callable[[np.ndarray, Sequence[int]], np.ndarray]


def replay_study(curves: np.ndarray, order: Sequence[int], *, study_trend: bool) -> np.ndarray:
    """Train the runs in ``order`` one after another, each deciding after every epoch as the callback does.

    Each run sees the runs before it as they were recorded: the finished ones whole, the halted ones
    up to where they stopped, with the predictions they recorded.
    """
    runs, budget = curves.shape
    trained = np.zeros(runs, dtype=int)
    recorded: dict[str, RunCurve] = {}
    finished: list[str] = []
    predictors: dict[int, TrendPredictor] = {}  # by the number of finished runs: it only grows
    for run in order:
        predictor = None
        if study_trend and len(finished) >= STUDY_TREND_MIN_RUNS:
            if len(finished) not in predictors:
                pool = {"study": finished_curves(recorded, finished)}
                predictors[len(finished)] = make_predictor(DEFAULT_PREDICTOR, None, pool)
            predictor = predictors[len(finished)]
        epochs, scores, predicted = [], [], []
        stop = budget
        for epoch in range(1, budget + 1):
            score = float(curves[run, epoch - 1])
            earlier = dict(zip(range(1, epoch), scores, strict=True))
            guess = score if predictor is None else predict_final(predictor, score, epoch, earlier)
            own = RunCurve(tuple(epochs), tuple(scores), tuple(predicted))
            epochs.append(float(epoch))
            scores.append(score)
            predicted.append(guess)
            if epoch == budget:
                break
            if predictor is None:
                decision = study_rule_decision(score, epoch, own, recorded, budget)
            else:
                margin = resolve_margin("auto", predictor, epoch)
                decision = study_decision(score, epoch, guess, own, recorded, budget, margin=margin)
            if decision.stop:
                stop = epoch
                break
        trained[run] = stop
        recorded[str(run)] = RunCurve(tuple(epochs), tuple(scores), tuple(predicted))
        if stop == budget:
            finished.append(str(run))
    return trained


def replay_median_pruner(curves: np.ndarray, order: Sequence[int]) -> np.ndarray:
    """Optuna's ``MedianPruner`` (its defaults) on the same runs: each run a trial reporting every epoch."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.MedianPruner())
    runs, budget = curves.shape
    trained = np.zeros(runs, dtype=int)
    for run in order:
        trial = study.ask()
        stop = budget
        for epoch in range(1, budget + 1):
            trial.report(float(curves[run, epoch - 1]), epoch)
            if epoch < budget and trial.should_prune():
                stop = epoch
                break
        trained[run] = stop
        if stop < budget:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, float(curves[run, -1]))
    return trained


def never_stop(curves: np.ndarray, order: Sequence[int]) -> np.ndarray:
    """Every run trains to the end."""
    return np.full(curves.shape[0], curves.shape[1], dtype=int)


METHODS: dict[str, Replay] = {
    "never stop": never_stop,
    "Optuna MedianPruner": replay_median_pruner,
    "study rule alone": lambda curves, order: replay_study(curves, order, study_trend=False),
    "callback (study rule, then the study's trend)": lambda curves, order: replay_study(
        curves, order, study_trend=True
    ),
}


def outcome(curves: np.ndarray, trained: np.ndarray) -> dict[str, float]:
    """Epochs saved, whether the best run was halted, and the regret of the best finished run."""
    budget = curves.shape[1]
    finals = curves[:, -1]
    best, worst = finals.max(), finals.min()
    finished = finals[trained == budget]
    picked = finished.max() if finished.size else worst
    spread = best - worst
    return {
        "epochs_saved": 1 - trained.sum() / trained.size / budget,
        "best_halted": float(trained[int(np.argmax(finals))] < budget),
        "regret": float((best - picked) / spread) if spread > 0 else 0.0,
    }


def run(data_folder: Path, targets: str | None, seeds: int, methods: Sequence[str]) -> dict:
    """Replay every method on every dataset in ``seeds`` orders; return the report."""
    data = load_curves(data_folder)
    names = chosen_targets(data, targets)
    grid: dict[str, dict[str, np.ndarray]] = {}
    per_target: dict[str, dict[str, dict[str, float]]] = {}
    seconds: dict[str, float] = {}
    for method in methods:
        started = time.perf_counter()
        cells = {key: np.zeros((seeds, len(names))) for key in ("epochs_saved", "best_halted", "regret")}
        for column, name in enumerate(names):
            full = [curve[: data.budget] for curve in data.scores[name].values() if len(curve) >= data.budget]
            curves = np.array(full, dtype=float)
            for seed in range(seeds):
                order = np.random.default_rng(seed).permutation(len(curves))
                for key, value in outcome(curves, METHODS[method](curves, order)).items():
                    cells[key][seed, column] = value
            per_target.setdefault(name, {})[method] = {
                key: float(cells[key][:, column].mean()) for key in cells
            }
        grid[method] = cells
        seconds[method] = round(time.perf_counter() - started, 1)
    draws = resample_indices(seeds, len(names), replicates=2000)
    summary = {
        method: {key: bootstrap_mean(values, draws).as_dict() for key, values in cells.items()}
        for method, cells in grid.items()
    }
    runs = {name: sum(len(c) >= data.budget for c in data.scores[name].values()) for name in names}
    return {
        "methods": summary,
        "per_target": per_target,
        "seconds": seconds,
        "data": {"folder": str(data_folder), "targets": names, "runs": runs, "budget_epochs": data.budget},
        "seeds": seeds,
    }


def print_report(report: dict) -> None:
    """The table of the module docstring."""
    rows = []
    for method, values in report["methods"].items():
        rows.append(
            [method]
            + [
                f"{values[key]['mean']:.3f} [{values[key]['low']:.3f}, {values[key]['high']:.3f}]"
                for key in ("epochs_saved", "best_halted", "regret")
            ]
            + [report["seconds"][method]]
        )
    headers = ["method", "epochs saved", "best run halted", "regret of best finished", "seconds"]
    print(table(headers, rows))


def main(argv: list[str] | None = None) -> int:
    """Replay, print the table, write ``--json``."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", required=True, help="a folder in Quick-Tune's layout (curves/, table.csv)")
    parser.add_argument("--targets", help="comma-separated datasets (default: all)")
    parser.add_argument(
        "--seeds", type=int, default=5, help="random orders of each dataset's runs (default 5)"
    )
    parser.add_argument(
        "--methods", help=f"comma-separated methods (default: all of {', '.join(METHODS)})", default=None
    )
    parser.add_argument("--json", help="write every number here")
    args = parser.parse_args(argv)
    methods = args.methods.split(",") if args.methods else list(METHODS)
    unknown = [method for method in methods if method not in METHODS]
    if unknown or args.seeds < 1:
        parser.error(f"unknown method(s) {', '.join(unknown)}" if unknown else "--seeds must be at least 1")
    started = time.perf_counter()
    try:
        report = run(Path(args.data), args.targets, args.seeds, methods)
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    report["machine"] = machine_info(seconds=round(time.perf_counter() - started, 1))
    print_report(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, allow_nan=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
