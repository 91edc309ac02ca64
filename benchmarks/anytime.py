"""Anytime model selection on real learning curves: regret against budget, hfselect beside its peers.

    python benchmarks/anytime.py --data ../shared/anchors/quicktune --json anytime.json --plot anytime.png

``--data`` holds Quick-Tune's layout (``curves/perf.json``, ``curves/cost.json``, ``table.csv``;
see ``real_curves.py``). Each dataset is the target once (or those of ``--targets``); the other
datasets are the repository, which only transfer methods learn from.

Candidate sets (``--sets``): ``models``, each model's first full-length run on the target
(``CurveData.runs``), and ``joint``, every full-length run of the target (about 7 configurations
per model). Only runs of the full budget (50 epochs) are candidates; a target with fewer than two
is left out of that set.

Budgets: 1, 2, 4, 8 and 16 times the target's median full-length run (over the candidate set, the
seconds of all its epochs in ``cost.json``).

Accounting, the same for every method (:meth:`anytime_data.Problem.total_cost`): the seconds of
every epoch trained (a continued or promoted run never repeats an epoch; a configuration started
again pays again) plus the seconds that finish the pick to the full budget. A budgeted method is
called once per budget; an anytime method runs once up to the largest budget and each budget is
read off its trajectory: its pick at the last moment whose total is within the budget, the pick
being its incumbent, the configuration with the best score at the largest epoch any of its runs
has reached (:meth:`anytime_data.Trajectory.moments`). No pick within a budget: the candidate
set's worst (regret 1), its cost the whole budget; the JSON counts these (``no_pick``).

Regret: (best final - pick's final) / (best final - worst final) within the candidate set, averaged
over targets and seeds (``--seeds``, default 5; deterministic methods run once), with 95%
bootstrap intervals over seeds and targets (``_stats``).

Methods (``--methods``; :mod:`anytime_methods` has the registry): ``hfselect`` (budgeted, from
``anytime_hfselect.py`` where it exists), ``successive_halving`` (budgeted, deterministic: as many
candidates as fit, in :meth:`anytime_data.Problem.interleaved` order), Syne Tune's
``random_search``, ``syne_asha``, ``syne_hyperband``, ``syne_bohb``, ``syne_bounding_box``
(:mod:`anytime_syne`), Optuna's ``optuna_sh`` and ``optuna_hyperband``
(:func:`anytime_methods.optuna_trajectory`). Quick-Tune's own optimizer does not install here:
``skipped`` in the JSON says why.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _shared import machine_info, package_versions
from anytime_data import BUDGET_MULTIPLIERS, CANDIDATE_SETS
from anytime_methods import registry, run_target, skipped_methods
from anytime_report import plot, print_tables, summarize
from real_curves_data import DataError, chosen_targets, load_curves

PEERS = ("syne-tune", "optuna", "xgboost", "statsmodels")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, required=True, help="a folder in Quick-Tune's layout")
    parser.add_argument("--targets", help="comma-separated datasets (default: every one)")
    parser.add_argument("--seeds", type=int, default=5, help="seeds of each randomized method (default 5)")
    parser.add_argument("--sets", default=",".join(CANDIDATE_SETS), help="candidate sets: models,joint")
    parser.add_argument("--methods", help="comma-separated methods (default: every one that can run)")
    parser.add_argument("--jobs", type=int, default=1, help="targets in parallel processes (same numbers)")
    parser.add_argument("--json", type=Path, required=True, help="where to write every number")
    parser.add_argument("--plot", type=Path, help="a PNG of mean regret against budget")
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.jobs < 1:
        parser.error("--seeds and --jobs must be at least 1")
    return args


def chosen(requested: str | None, known: Sequence[str], what: str) -> list[str]:
    names = requested.split(",") if requested else list(known)
    unknown = [name for name in names if name not in known]
    if unknown:
        raise DataError(f"unknown {what} {', '.join(unknown)}; known: {', '.join(known)}")
    return names


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    try:
        data = load_curves(args.data)
        targets = chosen_targets(data, args.targets)
        sets = chosen(args.sets, CANDIDATE_SETS, "candidate set(s)")
        methods = registry()
        skipped = skipped_methods()
        runnable = [name for name in methods if name not in skipped]
        names = chosen(args.methods, runnable, "or unavailable method(s)") if args.methods else runnable
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for name, reason in skipped.items():
        print(f"skipped {name}: {reason}")
    tasks = [(str(args.data), target, sets, names, args.seeds) for target in targets]
    print(
        f"{len(targets)} targets x {len(sets)} sets x {len(names)} methods, {args.seeds} seeds, {args.jobs} jobs"
    )
    per_target: dict[str, Any] = {}
    if args.jobs == 1:
        results = map(run_target, tasks)
    else:
        pool = multiprocessing.get_context("spawn").Pool(args.jobs)
        results = pool.imap(run_target, tasks)  # in target order, whichever process ran it
    for target, out in results:
        per_target[target] = out
        seconds = {s: round(sum(m["seconds"] for m in o["methods"].values()), 1) for s, o in out.items() if o}
        print(f"  {target}: {seconds} s")
    if args.jobs > 1:
        pool.close()
        pool.join()
    multipliers = list(BUDGET_MULTIPLIERS)
    summary, rows = summarize(per_target, sets, multipliers, args.seeds)
    print_tables(summary, multipliers)
    elapsed = time.perf_counter() - started
    report = {
        "budgets": multipliers,
        "sets": summary,
        "targets": rows,
        "problems": {
            target: {
                s: {k: o[k] for k in ("candidates", "median_run_seconds", "budgets_seconds")} if o else None
                for s, o in out.items()
            }
            for target, out in per_target.items()
        },
        "details": {
            target: {
                s: {m: [run["details"] for run in r["runs"][: args.seeds]] for m, r in o["methods"].items()}
                for s, o in out.items()
                if o
            }
            for target, out in per_target.items()
        },
        "method_seconds": {
            s: {
                m: round(sum(out[s]["methods"][m]["seconds"] for out in per_target.values() if out.get(s)), 2)
                for m in names
            }
            for s in sets
        },
        "skipped": skipped,
        "seeds": args.seeds,
        "command": shlex.join(["python", "benchmarks/anytime.py", *(sys.argv[1:] if argv is None else argv)]),
        "runtime_seconds": round(elapsed, 1),
        "machine": machine_info(
            jobs=args.jobs, packages=package_versions(("hfselect", "numpy", "pandas", *PEERS))
        ),
    }
    args.json.write_text(json.dumps(report, indent=1))
    if args.plot is not None:
        plot(summary, multipliers, args.plot)
    print(f"\n{elapsed:.0f} s; wrote {args.json}" + (f" and {args.plot}" if args.plot else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
