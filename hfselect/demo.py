"""The demo's choices: which zoo dataset it holds out as the target, and where its repositories live.

The demo benchmarks every zoo model on every zoo dataset once (one repository, shared by all
targets), then holds one dataset out: a copy of the repository without that dataset's results is
what recall and selection see. By default the held-out target is the dataset on which the zoo's
models differ most (the largest spread of benchmark scores), so that the selection visibly matters.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd


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
