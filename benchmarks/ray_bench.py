"""Wall time of the small-zoo bench through Ray (1 and 2 workers) against the sequential bench.

Usage::

    nice python benchmarks/ray_bench.py --json ray_bench.json [--zoo DIR] [--models N] [--rounds R]

Every run fine-tunes the same (model, dataset) pairs under README's bench protocol (4 epochs,
learning rate 3e-3) into its own fresh repository: sequentially in this process with one torch
thread, and through a local Ray started with 1 CPU and with 2 CPUs (one task, one thread, per
CPU; Ray's workers keep this process's priority instead of Ray's default of 15 lower). The
datasets are loaded once before the first timed run. Each round runs every setting, the second
round in reverse order, so a drift in a shared machine's load weighs on every setting alike
(``--rounds``). It reports each wall time, whether every result and learning curve equals the
sequential run's of the same round, Ray's start-up, the round trip of an empty task, the mean wall
time and speed-up of each setting, and Ray's overhead per pair (1 worker against sequential). The
load average is printed before and after.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _shared import machine_info, table

from hfselect.data import expand_dataset_specs
from hfselect.logs import quiet_libraries
from hfselect.models import expand_model_specs
from hfselect.store import ModelRepository, hfselect_cache
from hfselect.training.bench import BenchConfig, load_data, plan_jobs, run_bench
from hfselect.training.distributed import RayResources, bench_on_ray


def results_table(path: Path) -> list[tuple[str, str, str, float | None, list[float]]]:
    """(model, dataset, status, score, curve) of every pair of a repository, sorted."""
    with ModelRepository(path) as repository:
        results = repository.results(status=None)
        curves = repository.curves()
    rows = []
    for row in results.itertuples():
        points = curves[(curves["model_id"] == row.model_id) & (curves["dataset"] == row.dataset)]
        score = None if row.score != row.score else float(row.score)  # NaN for failed pairs
        rows.append((row.model_id, row.dataset, row.status, score, [float(v) for v in points["score"]]))
    return sorted(rows)


def empty_task_round_trip(ray: Any, count: int = 20) -> float:
    """Mean seconds from submitting an empty task to having its result, one task at a time."""

    def nothing() -> None:
        return None

    task = ray.remote(nothing).options(num_cpus=1)
    ray.get(task.remote())  # a worker is up
    started = time.perf_counter()
    for _ in range(count):
        ray.get(task.remote())
    return (time.perf_counter() - started) / count


def run_sequential(models: list[str], datasets: list[str], config: BenchConfig, path: Path) -> dict[str, Any]:
    """The sequential bench of ``models`` x ``datasets`` in this process into ``path``; its timing."""
    started = time.perf_counter()
    with ModelRepository(path) as repository:
        summary = run_bench(repository, models, datasets, config, progress=False)
    return {
        "setting": "sequential",
        "wall_s": round(time.perf_counter() - started, 1),
        "failed": len(summary.failed),
    }


def run_on_ray(jobs: list[tuple[str, str]], config: BenchConfig, workers: int, path: Path) -> dict[str, Any]:
    """Start a local Ray with ``workers`` CPUs, bench ``jobs`` through it into ``path``; the timings."""
    import ray

    started = time.perf_counter()
    ray.init(address="local", num_cpus=workers, log_to_driver=False)  # a new Ray, even if one runs
    startup = time.perf_counter() - started
    try:
        round_trip = empty_task_round_trip(ray)
        started = time.perf_counter()
        with ModelRepository(path) as repository:
            summary = bench_on_ray(repository, jobs, config, resources=RayResources(cpus=1), progress=False)
        wall = time.perf_counter() - started
    finally:
        ray.shutdown()
    return {
        "setting": f"ray, {workers} worker(s)",
        "workers": workers,
        "wall_s": round(wall, 1),
        "ray_startup_s": round(startup, 1),
        "empty_task_round_trip_ms": round(1000 * round_trip, 1),
        "failed": len(summary.failed),
    }


def timed_runs(
    models: list[str],
    datasets: list[str],
    config: BenchConfig,
    workers: list[int],
    rounds: int,
    scratch: Path,
) -> list[dict[str, Any]]:
    """Every setting once per round, in forward order then backward (so a drift in the machine's load
    weighs on every setting alike), each into a fresh repository under ``scratch``."""
    settings: list[int | None] = [None, *workers]  # None: sequential
    runs = []
    for round_number in range(1, rounds + 1):
        tables = {}
        for setting in settings if round_number % 2 else settings[::-1]:
            path = scratch / f"round{round_number}-{setting or 'sequential'}.sqlite"
            if setting is None:
                run = run_sequential(models, datasets, config, path)
            else:
                run = run_on_ray(plan_jobs(models, datasets), config, setting, path)
            tables[setting] = results_table(path)
            runs.append({"round": round_number, **run})
        for run in runs[-len(settings) :]:
            if "workers" in run:
                run["same_results_as_sequential"] = tables[run["workers"]] == tables[None]
    return runs


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print its table; write ``--json``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--zoo", help="the small zoo (default: hfselect's cache, built when missing)")
    parser.add_argument("--models", type=int, help="only the first N zoo models (on every dataset)")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per pair (default: README's 4)")
    parser.add_argument("--workers", default="1,2", help="Ray CPUs (one task each) per run (default 1,2)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds, alternating the order (default 2)")
    parser.add_argument("--json", metavar="PATH", help="write every number as JSON")
    args = parser.parse_args(argv)
    import torch

    quiet_libraries()  # no per-dataset progress bars
    torch.set_num_threads(1)  # the sequential run as one Ray task with one CPU trains
    # Ray lowers its workers' priority by 15 by default; keep the sequential run's, to compare like with like.
    os.environ.setdefault("RAY_worker_niceness", "0")
    zoo = Path(args.zoo) if args.zoo else hfselect_cache() / "zoo-small"
    if not (zoo / "models").is_dir():
        from hfselect.zoo import build_zoo

        build_zoo(zoo, size="small")
    config = BenchConfig(epochs=args.epochs, learning_rate=3e-3)
    models = sorted(expand_model_specs([str(zoo / "models")]))[: args.models]
    datasets = expand_dataset_specs([str(zoo / "datasets")])
    jobs = plan_jobs(models, datasets)
    for dataset in datasets:
        load_data(dataset, config)  # warm the datasets cache for every run alike
    load_before = machine_info()["load_average"]
    workers = [int(count) for count in args.workers.split(",")]
    with tempfile.TemporaryDirectory(prefix="hfselect-ray-bench-") as scratch:
        runs = timed_runs(models, datasets, config, workers, args.rounds, Path(scratch))
    mean_wall = {
        setting: round(statistics.mean(run["wall_s"] for run in runs if run["setting"] == setting), 1)
        for setting in dict.fromkeys(run["setting"] for run in runs)
    }
    sequential_s = mean_wall["sequential"]
    one_worker = mean_wall.get("ray, 1 worker(s)")
    overhead = (one_worker - sequential_s) / len(jobs) if one_worker else math.nan
    report = {
        "machine": machine_info(torch_threads=1, load_average_before=load_before),
        "pairs": len(jobs),
        "protocol": config.protocol.key,
        "runs": runs,
        "mean_wall_s": mean_wall,
        "speedup": {setting: round(sequential_s / wall, 2) for setting, wall in mean_wall.items()},
        "overhead_per_pair_s_1_worker": round(overhead, 2),
        "note": "run under nice on a shared 2-core machine; load averages before and after are in machine",
    }
    print(
        f"{len(jobs)} pairs ({len(models)} models x {len(datasets)} datasets), protocol {config.protocol.key}"
    )
    print(
        table(
            ["round", "setting", "wall s", "Ray start-up s", "empty task ms", "same results", "failed"],
            [
                (
                    run["round"],
                    run["setting"],
                    run["wall_s"],
                    run.get("ray_startup_s", "-"),
                    run.get("empty_task_round_trip_ms", "-"),
                    {True: "yes", False: "NO"}.get(run.get("same_results_as_sequential"), "-"),
                    run["failed"],
                )
                for run in runs
            ],
            left=2,
        )
    )
    print()
    print(
        table(
            ["setting", "mean wall s", "speed-up"],
            [(setting, wall, f"{report['speedup'][setting]:.2f}x") for setting, wall in mean_wall.items()],
        )
    )
    print(f"Ray's overhead per pair (1 worker against sequential, means): {overhead:.2f}s")
    print(f"load average before {load_before}, after {report['machine']['load_average']}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
