"""The nested regret-cost frontier of ``benchmarks/real_curves_frontier.py``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.test_benchmarks_smoke import _load
from tests.test_real_curves import _write_quicktune_layout


def _stats(regret_and_cost: dict[str, tuple[float, float]]) -> dict[str, dict[str, float]]:
    return {name: {"mean_normalized_regret": r, "cost_share": c} for name, (r, c) in regret_and_cost.items()}


def test_calibrated_is_the_cheapest_configuration_at_successive_halvings_regret() -> None:
    frontier = _load("real_curves_frontier")
    stats = _stats(
        {
            "every, 2 candidates, library": (0.20, 0.50),
            "every, 4 candidates, library": (0.05, 0.70),
            "every, 8 candidates, library": (0.02, 0.80),
            "every, 12 candidates, library": (0.01, 1.10),
            "evidence, 4 candidates, library": (0.01, 0.60),  # another scope is never chosen for this one
        }
    )
    assert frontier.calibrated(stats, 0.03, "every") == "every, 8 candidates, library"
    assert frontier.calibrated(stats, 0.05, "every") == "every, 4 candidates, library"  # ties match
    # Nothing matches: the least wrong.
    assert frontier.calibrated(stats, 0.001, "every") == "every, 12 candidates, library"
    assert frontier.calibrated(stats, 0.03, "evidence") == "evidence, 4 candidates, library"


def test_pareto_keeps_what_nothing_beats_on_both() -> None:
    frontier = _load("real_curves_frontier")
    stats = _stats(
        {
            "every, 2 candidates, library": (0.20, 0.50),
            "every, 3 candidates, library": (0.30, 0.60),  # dearer and worse than 2
            "every, 4 candidates, library": (0.05, 0.70),
            "every, 8 candidates, library": (0.05, 0.80),  # dearer, no better
        }
    )
    assert frontier.pareto(stats, "every") == ["every, 2 candidates, library", "every, 4 candidates, library"]


def test_a_larger_request_than_the_pool_gets_the_whole_pool() -> None:
    frontier = _load("real_curves_frontier")
    outcomes = {"pool": 5, "every, 5 candidates, library": [0.1, 9.0]}
    assert frontier.lookup(outcomes, "every", 8, "library") == [0.1, 9.0]


def test_nested_calibration_never_sees_the_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_quicktune_layout(tmp_path / "data")
    frontier = _load("real_curves_frontier")
    data = frontier.load_curves(tmp_path / "data")
    seen: list[tuple[str, list[str]]] = []
    replay_grid = frontier.replay_grid

    def recording(target: Any, prior: str = "percentile") -> dict[str, Any]:
        # Records who plays the target and what it learns from, then replays as the script does.
        seen.append((target.name, target.benchmarks))
        return replay_grid(target, prior)

    monkeypatch.setattr(frontier, "replay_grid", recording)
    result = frontier.replay_target(data, "D0")
    # The three other datasets are calibrated on, each without D0 and without itself; D0 comes last.
    assert [name for name, _ in seen] == ["D1", "D2", "D3", "D0"]
    assert all("D0" not in benchmarks and name not in benchmarks for name, benchmarks in seen[:3])
    assert seen[3][1] == ["D1", "D2", "D3"]
    assert set(result["chosen"]) == set(frontier.SCOPES)
    for scope, name in result["chosen"].items():
        assert name.startswith(f"{scope}, ") and name in result["benchmark_means"]


def test_frontier_script_writes_scored_rows(tmp_path: Path) -> None:
    _write_quicktune_layout(tmp_path / "data")
    frontier = _load("real_curves_frontier")
    out = tmp_path / "frontier.json"
    assert frontier.main(["--data", str(tmp_path / "data"), "--targets", "D0,D1", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert list(report["targets"]) == ["D0", "D1"]
    methods = {
        "successive_halving",
        *(f"hfselect, calibrated on the benchmark datasets ({s})" for s in frontier.SCOPES),
    }
    assert set(report["summary"]) == methods == set(report["uncertainty"])
    assert report["summary"]["successive_halving"]["cost_share"] == pytest.approx(1.0)
    for row in report["targets"]["D0"]["rows"].values():
        assert 0 <= row["normalized_regret"] <= 1 and row["cost_seconds"] > 0
    # Six models per dataset: 2 to 6 candidates, three sets of rungs each keeping a half or a third,
    # two scopes.
    assert len(report["frontier"]) == 2 * 5 * 3 * 2
    for row in report["frontier"].values():
        assert 0 <= row["mean_normalized_regret"] <= 1 and row["cost_share"] > 0
    lowest = report["goal_line"]["lowest_regret"]
    within = [
        row["mean_normalized_regret"] for row in report["frontier"].values() if row["cost_share"] <= 0.75
    ]
    assert lowest == (min(within) if within else None)


def test_a_schedule_keeping_a_third_replays_with_reduction_factor_three(tmp_path: Path) -> None:
    _write_quicktune_layout(tmp_path / "data")
    frontier = _load("real_curves_frontier")
    thirds = frontier.SCHEDULES["library, a third kept"]
    assert thirds.reduction_factor == 3 and frontier.SCHEDULES["library"].reduction_factor == 2
    assert thirds.rungs(50) == frontier.SCHEDULES["library"].rungs(50) == [3, 6, 12, 24, 48]
    target = frontier.make_target(frontier.load_curves(tmp_path / "data"), "D0")
    outcomes = frontier.replay_grid(target)
    order = frontier.recall(target, 6, "every", frontier.learned_prior(target))
    for schedule, plan in frontier.SCHEDULES.items():
        replayed = frontier.select(
            target,
            order,
            frontier.DEFAULT_PREDICTOR,
            frontier.DEFAULT_MARGIN,
            plan.rungs(target.budget),
            reduction_factor=plan.reduction_factor,
        )
        expected = [replayed["normalized_regret"], replayed["cost_seconds"]]
        assert outcomes[frontier.config_name("every", 6, schedule)] == pytest.approx(expected)


def test_frontier_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write_quicktune_layout(tmp_path / "data")
    frontier = _load("real_curves_frontier")
    assert frontier.main(["--data", str(tmp_path / "data"), "--targets", "NOPE"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: unknown target(s) NOPE") and "\n" not in error


def test_parallel_targets_give_the_same_report(tmp_path: Path) -> None:
    # As a script, the way --jobs runs: spawned workers import it from its path.
    _write_quicktune_layout(tmp_path / "data")
    frontier = _load("real_curves_frontier")
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "real_curves_frontier.py"
    out = tmp_path / "jobs2.json"
    args = ["--data", str(tmp_path / "data"), "--targets", "D0,D1", "--jobs", "2", "--json", str(out)]
    subprocess.run([sys.executable, str(script), *args], check=True, capture_output=True, timeout=300)
    parallel = json.loads(out.read_text())
    serial = json.loads(json.dumps(frontier.run(frontier.load_curves(tmp_path / "data"), ["D0", "D1"])))
    assert parallel["targets"] == serial["targets"] and parallel["frontier"] == serial["frontier"]


def test_a_target_with_nothing_to_calibrate_on_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _write_quicktune_layout(tmp_path / "data")
    frontier = _load("real_curves_frontier")
    monkeypatch.setattr(frontier, "nested_grid", lambda data, target, prior: {})  # no other dataset qualifies
    assert frontier.main(["--data", str(tmp_path / "data"), "--targets", "D0"]) == 2
    error = capsys.readouterr().err.strip()
    assert error == "error: D0: no other dataset has two or more full-length candidates to calibrate on"


def test_the_prior_of_final_scores_is_an_option_and_skipped_targets_are_listed(tmp_path: Path) -> None:
    _write_quicktune_layout(tmp_path / "data")
    # D3 keeps one full-length run: no choice to make there, so it is no target (nor a benchmark).
    perf_path = tmp_path / "data" / "curves" / "perf.json"
    perf = json.loads(perf_path.read_text())
    for config in list(perf["D3"])[2:]:
        perf["D3"][config] = perf["D3"][config][:5]
    perf_path.write_text(json.dumps(perf))
    frontier = _load("real_curves_frontier")
    data = frontier.load_curves(tmp_path / "data")
    out = tmp_path / "final.json"
    args = ["--data", str(tmp_path / "data"), "--targets", "D0,D1,D3", "--prior", "final", "--json", str(out)]
    assert frontier.main(args) == 0
    report = json.loads(out.read_text())
    assert report["prior"] == "final"
    assert report["data"]["skipped_targets"] == ["D3"] and list(report["targets"]) == ["D0", "D1"]
    # The same replays as run() with the prior of final scores.
    final = json.loads(json.dumps(frontier.run(data, ["D0", "D1"], prior="final")))
    assert report["targets"] == final["targets"] and report["frontier"] == final["frontier"]
    assert final["prior"] == "final"  # run() records the prior itself, not only the script
    # Each prior ranks with its own regression: the two objectives give different priors.
    target = frontier.make_target(data, "D0")
    by_percentile, by_final = frontier.learned_prior(target), frontier.learned_prior(target, "final")
    assert set(by_percentile) == set(by_final) and by_percentile != by_final
