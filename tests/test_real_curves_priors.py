"""The learned prior that stands in for a proxy on Quick-Tune's curves (``benchmarks/real_curves_priors.py``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.test_benchmarks_smoke import _load
from tests.test_real_curves import _write_protocol_layout

EPOCHS = 4
REPEATS = 5  # runs per (model, dataset): the regression's leaves need 20 runs


def _run(dataset: str, final: float) -> object:
    protocol = _load("real_curves_protocol")
    return protocol.BenchmarkRun(dataset, (1.0,), (final / 2, final))


def test_dataset_percentiles_rank_runs_within_their_own_dataset() -> None:
    protocol = _load("real_curves_protocol")
    runs = [
        _run("easy", 0.95),
        _run("hard", 0.30),
        _run("easy", 0.90),
        _run("hard", 0.20),
        _run("hard", 0.20),
    ]
    percentiles = protocol.dataset_percentiles(runs)
    # A run's standing counts, not its level: the best hard run (0.30) is above the worse easy one (0.90).
    assert percentiles[0] == pytest.approx(0.75)
    assert percentiles[2] == pytest.approx(0.25)
    assert percentiles[1] == pytest.approx(5 / 6)
    # A tie shares its mean rank: ranks 1 and 2 -> 1.5 -> (1.5 - 0.5) / 3.
    assert percentiles[3] == percentiles[4] == pytest.approx(1 / 3)


def _write_uneven_layout(folder: Path) -> None:
    """Model a beats b beats c by one point on every dataset, but b was only run on the easy ones.

    D0-D4 are hard (accuracy near 40%), D5-D9 easy (near 90%); no dataset descriptors, so nothing
    tells the regression a dataset's level. The target D0 is hard and has a run of every model.
    """
    perf: dict[str, dict[str, list[float]]] = {}
    cost: dict[str, dict[str, list[float]]] = {}
    rows, config = [], 0
    models = ["a", "b", "c"]
    for index in range(10):
        dataset, level = f"D{index}", 40.0 if index < 5 else 90.0
        perf[dataset], cost[dataset] = {}, {}
        for rank, model in enumerate(models):
            if model == "b" and level < 50 and index > 0:
                continue
            for repeat in range(REPEATS):
                config += 1
                final = level + 2 - rank - 0.1 * repeat
                perf[dataset][str(config)] = [final * (epoch + 1) / EPOCHS for epoch in range(EPOCHS)]
                cost[dataset][str(config)] = [1.0] * EPOCHS
                rows.append([str(config), *(int(m == model) for m in models)])
    (folder / "curves").mkdir(parents=True)
    (folder / "curves" / "perf.json").write_text(json.dumps(perf))
    (folder / "curves" / "cost.json").write_text(json.dumps(cost))
    header = ["", *(f"cat:model:{model}" for model in models)]
    (folder / "table.csv").write_text("\n".join(",".join(map(str, row)) for row in [header, *rows]) + "\n")


def test_the_percentile_prior_is_not_fooled_by_where_a_model_was_run(tmp_path: Path) -> None:
    _write_uneven_layout(tmp_path / "data")
    real_curves = _load("real_curves")
    priors = _load("real_curves_priors")
    target = real_curves.make_target(real_curves.load_curves(tmp_path / "data"), "D0")
    assert set(target.curves) == {"a", "b", "c"}
    # Regressing final scores, b looks best: its runs are all on easy datasets.
    by_final = priors.final_score_prior(target)
    assert by_final["b"] > by_final["a"] > by_final["c"]
    # Regressing each run's standing in its own dataset, a is best, as it is on every dataset.
    by_percentile = priors.learned_prior(target)
    assert by_percentile["a"] > by_percentile["b"] > by_percentile["c"]
    assert all(0.0 <= value <= 1.0 for value in by_percentile.values())
    assert real_curves.recall(target, 1, "every", by_percentile) == ["a"]
    assert target.normalized_regret("a") == 0.0


def test_both_objectives_see_the_runs_protocol(tmp_path: Path) -> None:
    # Only small's run on the target has the good learning rate (see _write_protocol_layout).
    _write_protocol_layout(tmp_path / "data")
    real_curves = _load("real_curves")
    priors = _load("real_curves_priors")
    target = real_curves.make_target(real_curves.load_curves(tmp_path / "data"), "D0")
    for prior in (priors.learned_prior(target), priors.final_score_prior(target)):
        assert max(prior, key=lambda model: prior[model]) == "small"
    # One fit per objective, shared by every method of the target.
    assert target.prior_regression("final") is target.prior_regression("final")
    assert target.prior_regression("final") is not target.prior_regression("percentile")
    finals = np.array(list(priors.final_score_prior(target).values()))
    assert finals.max() > 0.8  # final scores are accuracies, not percentiles
