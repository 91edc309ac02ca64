"""The demo: the whole method, offline, on the built-in zoo (:func:`run_demo`, ``hfselect demo``).

The demo benchmarks every zoo model on every zoo dataset once (one repository, shared by all
targets), then holds one dataset out: a copy of the repository without that dataset's results is
what recall and selection see. By default the held-out target is the dataset on which the zoo's
models differ most (the largest spread of benchmark scores), so that the selection visibly matters.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from hfselect.api import select
from hfselect.cards.selection_report import SelectionReport
from hfselect.config import (
    DEMO_EPOCHS,
    DEMO_K_LARGEST,
    DEMO_LEARNING_RATE,
    DEMO_MAX_LENGTH,
    DEMO_OUTPUT_DIR,
    DEMO_SAMPLE_SIZE,
)
from hfselect.errors import HfSelectError
from hfselect.store import ModelRepository, hfselect_cache
from hfselect.training.bench import BenchConfig, run_bench
from hfselect.zoo import ZooManifest, build_zoo


def largest_spread_dataset(performance: pd.DataFrame) -> str:
    """The dataset (column) whose benchmark scores differ most between models: max minus min.

    Ties go to the first dataset by name. Raises ``ValueError`` when no dataset has two scores.
    """
    counts = performance.notna().sum()
    spread = (performance.max() - performance.min())[counts >= 2]
    if spread.empty:
        raise ValueError("no dataset has benchmark scores of two models: cannot choose a demo target")
    spread = spread.sort_index()
    return str(spread.idxmax())


def selection_repository_path(benchmarks: Path, target: str) -> Path:
    """Where the demo's selection for ``target`` runs: beside the benchmarks, without the target's results."""
    return benchmarks.with_name(f"{benchmarks.stem}-without-{target}{benchmarks.suffix or '.sqlite'}")


# The demo's options of hfselect.select: the zoo's tiny models need a far larger learning rate than
# BERT, and its 5 benchmark datasets beside the target need k_largest < 5 to compare any two models.
DEMO_OPTIONS: dict[str, Any] = {
    "output_dir": DEMO_OUTPUT_DIR,
    "sample_size": DEMO_SAMPLE_SIZE,
    "k_largest": DEMO_K_LARGEST,
    "epochs": DEMO_EPOCHS,
    "learning_rate": DEMO_LEARNING_RATE,
    "max_length": DEMO_MAX_LENGTH,
}


@dataclass
class DemoResult:
    """What :func:`run_demo` did: the held-out target, where its repositories are, and the selection's report."""

    target: str
    benchmarks_path: Path
    selection_path: Path
    report: SelectionReport


def run_demo(
    *,
    size: str = "small",
    zoo: str | os.PathLike[str] | None = None,
    target: str | None = None,
    repository: str | os.PathLike[str] | None = None,
    progress: bool = True,
    on_event: Callable[[str], None] | None = None,
    **options: Any,
) -> DemoResult:
    """The whole method, offline, on the built-in zoo: what ``hfselect demo`` runs.

    Builds (or reuses) the zoo (``zoo``, default ``~/.cache/hfselect/zoo-SIZE``), benchmarks every
    zoo model on every zoo dataset into ``repository`` (default ``~/.cache/hfselect/demo/SIZE.sqlite``;
    never ``$HFSELECT_REPOSITORY``, the user's own), holds out ``target`` (default: the dataset whose
    benchmark scores differ most), then runs :func:`hfselect.select` on it against a copy of the
    repository without its results. ``options`` are :func:`hfselect.select`'s, over the demo's
    defaults (:data:`DEMO_OPTIONS`); the benchmarks use the same protocol.

    Raises:
        HfSelectError: ``target`` is not a zoo dataset.
    """
    options = {**DEMO_OPTIONS, **options}
    tell = on_event or (lambda line: None)
    zoo_dir = Path(zoo) if zoo else hfselect_cache() / f"zoo-{size}"
    try:
        manifest = ZooManifest.load(zoo_dir)
        tell(
            f"== zoo: reusing {zoo_dir} ({len(manifest.models)} models, {len(manifest.datasets)} datasets) =="
        )
    except (OSError, ValueError, KeyError, TypeError):
        tell(f"== zoo: building the {size} zoo in {zoo_dir} (once) ==")
        manifest = build_zoo(zoo_dir, size, progress=progress)
    names = [dataset.name for dataset in manifest.datasets]
    if target and target not in names:
        raise HfSelectError(f"--target {target!r} is not a zoo dataset; choose from {', '.join(names)}")
    benchmarks_path = Path(repository or hfselect_cache() / "demo" / f"{size}.sqlite")
    protocol = ("epochs", "learning_rate", "batch_size", "max_length", "seed")
    config = BenchConfig(**{name: options[name] for name in protocol if name in options})
    with ModelRepository(benchmarks_path) as benchmarks:
        tell(
            f"== offline phase: {len(manifest.models)} models x {len(names)} zoo datasets into {benchmarks_path} =="
        )
        summary = run_bench(
            benchmarks,
            [str(Path(manifest.directory) / "models")],
            [str(manifest.dataset_path(name)) for name in names],
            config,
            progress=progress,
        )
        tell(
            f"{len(summary.done)} pairs fine-tuned, {summary.skipped} already done, {len(summary.failed)} failed"
            + (
                f", {summary.claimed_elsewhere} being trained by another process"
                if summary.claimed_elsewhere
                else ""
            )
        )
        performance = benchmarks.performance_matrix(protocol=config.protocol.key)
        chosen = target or largest_spread_dataset(performance[[n for n in names if n in performance]])
        scores = performance[chosen].dropna() if chosen in performance else None
        tell(
            f"== held out as the target: {chosen}"
            + (
                f" (benchmark scores from {scores.min():.3f} to {scores.max():.3f}: the largest spread)"
                if scores is not None and not target
                else ""
            )
            + " =="
        )
        selection_path = selection_repository_path(benchmarks_path, chosen)
        with ModelRepository(selection_path) as without_target:
            copied = without_target.copy_benchmarks(benchmarks, exclude_datasets=[chosen])
            tell(f"{selection_path}: {copied} benchmark results, none on {chosen}")
            report = select(
                str(manifest.dataset_path(chosen)),
                without_target,
                exclude_datasets=[chosen],
                progress=progress,
                on_event=on_event,
                **options,
            )
    return DemoResult(chosen, benchmarks_path, selection_path, report)
