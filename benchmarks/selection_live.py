"""``hfselect select`` against brute-force fine-tuning on held-out zoo targets, in one run.

For each target: the benchmark repository (every zoo model on every zoo dataset, as for
``selection_replay.py``) is copied without the target's rows, so the target is unseen; then

* ``select``: coarse recall and fine selection, for real (training, checkpoints, the study);
* ``brute force``: every zoo model fine-tuned on the target to the full budget, the best final
  validation score wins;

both timed on the same machine in the same run. Reported: wall-time ratio, epochs, and regret
(best test score among all models - test score of the selected model), and the regret against the
best of select's own candidates.

    python benchmarks/selection_live.py --repository zoo-full.sqlite --zoo zoo-full \\
        --targets topic4 style3 --json live.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import hfselect
from hfselect.logs import quiet_libraries
from hfselect.store import ModelRepository
from hfselect.training.bench import BenchConfig, finetune_pair


def without_target(source: str, target: str, directory: Path, zoo: Path) -> Path:
    """A copy of the repository with every row of the target dataset removed.

    Its models are located in ``zoo``, where they are now: the repository may have been
    benchmarked from a zoo folder elsewhere (on another machine).
    """
    with ModelRepository(source, create=False) as repository:
        folders = {model["model_id"]: zoo / "models" / model["model_id"] for model in repository.models()}
        return repository.copy_without_dataset(
            directory / "repository.sqlite",
            target,
            locations={model: folder.resolve() for model, folder in folders.items() if folder.is_dir()},
        )


def main(argv: list[str] | None = None) -> int:
    """Run select and brute force on each target and print the comparison."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repository", required=True)
    parser.add_argument("--zoo", required=True)
    parser.add_argument("--targets", nargs="+", required=True)
    parser.add_argument("--candidates", type=int, default=4, help="recall size (select's default)")
    parser.add_argument(
        "--sample-size", type=int, default=256, help="target examples the proxy sees (the replay's)"
    )
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--max-length", type=int, default=32)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    quiet_libraries()
    zoo = Path(args.zoo)
    models = sorted(path for path in (zoo / "models").iterdir() if path.is_dir())
    rows = []
    for target in args.targets:
        target_path = str(zoo / "datasets" / target)
        with tempfile.TemporaryDirectory() as scratch:
            repository_path = without_target(args.repository, target, Path(scratch), zoo)
            started = time.perf_counter()
            with ModelRepository(repository_path) as repository:
                report = hfselect.select(
                    target_path,
                    repository,
                    candidates=args.candidates,
                    sample_size=args.sample_size,
                    output_dir=scratch,
                    progress=False,
                    epochs=args.epochs,
                    learning_rate=args.learning_rate,
                    max_length=args.max_length,
                )
            select_seconds = time.perf_counter() - started
            recalled = report.recall.models if report.recall else []

        brute = BenchConfig(epochs=args.epochs, learning_rate=args.learning_rate, max_length=args.max_length)
        started = time.perf_counter()
        results = {path.name: finetune_pair(str(path), target_path, brute) for path in models}
        brute_seconds = time.perf_counter() - started
        best_by_validation = max(results, key=lambda m: results[m].curve[-1])
        best_test = max(result.score for result in results.values())
        selected_test = results[report.selected_model].score
        rows.append(
            {
                "target": target,
                "selected": report.selected_model,
                "brute_force_pick": best_by_validation,
                "select_seconds": select_seconds,
                "brute_force_seconds": brute_seconds,
                "speedup": brute_seconds / select_seconds,
                "select_epochs": report.selection["epochs_spent"],
                "brute_force_epochs": len(models) * args.epochs,
                "select_regret": best_test - selected_test,
                "candidates": list(recalled),
                "select_regret_vs_candidates": max(results[m].score for m in recalled) - selected_test,
                "brute_force_regret": best_test - results[best_by_validation].score,
            }
        )
        row = rows[-1]
        print(
            f"{target}: select {row['selected']} in {select_seconds:.0f}s / {row['select_epochs']} epochs, "
            f"brute force {best_by_validation} in {brute_seconds:.0f}s / {row['brute_force_epochs']} epochs: "
            f"{row['speedup']:.1f}x faster, regret {row['select_regret']:.4f} (brute force {row['brute_force_regret']:.4f})"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
