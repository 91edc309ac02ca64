"""The demo's choices: its held-out target and its repositories."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from hfselect.demo import largest_spread_dataset, selection_repository_path


def test_the_target_is_the_dataset_where_models_differ_most() -> None:
    performance = pd.DataFrame(
        {"easy": [0.97, 0.99, 0.98], "telling": [0.30, 0.95, 0.60], "hard": [0.25, 0.27, 0.26]},
        index=["m1", "m2", "m3"],
    )
    assert largest_spread_dataset(performance) == "telling"
    # A dataset with one score has no spread; ties go to the first name.
    performance["lonely"] = [0.0, None, None]
    performance["also-telling"] = [0.30, 0.95, 0.50]
    assert largest_spread_dataset(performance) == "also-telling"
    with pytest.raises(ValueError, match="two models"):
        largest_spread_dataset(performance[["lonely"]])


def test_the_selection_repository_lies_beside_the_benchmarks() -> None:
    assert selection_repository_path(Path("/c/demo/small.sqlite"), "style3") == Path(
        "/c/demo/small-without-style3.sqlite"
    )
