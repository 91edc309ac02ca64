"""benchmarks/anytime.py: regret against budget on curves in Quick-Tune's layout, and its accounting."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from tests.test_benchmarks_smoke import _load
from tests.test_real_curves import _write_quicktune_layout

anytime_data = _load("anytime_data")
anytime_methods = _load("anytime_methods")


def _problem() -> object:
    """Three candidates of 4 epochs: a climbs slowly to the best final, b starts best, c is worst."""
    curves = {"a": [0.1, 0.2, 0.5, 0.9], "b": [0.4, 0.5, 0.6, 0.7], "c": [0.3, 0.3, 0.3, 0.3]}
    seconds = {"a": [1.0, 2.0, 3.0, 4.0], "b": [10.0, 10.0, 10.0, 10.0], "c": [5.0, 5.0, 5.0, 5.0]}
    return anytime_data.Problem(
        target="T",
        candidate_set="joint",
        configs=list(curves),
        curves=curves,
        seconds=seconds,
        model_of={"a": "m1", "b": "m2", "c": "m1"},
        budget_epochs=4,
        data=None,
        repository=[],
    )


def test_problem_regret_and_budgets() -> None:
    problem = _problem()
    assert problem.normalized_regret("a") == 0.0
    assert problem.normalized_regret("c") == 1.0
    assert problem.normalized_regret("b") == pytest.approx(2 / 6)
    assert problem.normalized_regret(None) == 1.0  # no pick: the worst
    assert problem.median_run_seconds == 20.0  # runs of 10, 40 and 20 seconds
    assert problem.budgets() == [20.0, 40.0, 80.0, 160.0, 320.0]
    assert problem.interleaved() == ["a", "b", "c"]  # m1's first run, m2's, then m1's second


def test_total_cost_counts_every_epoch_once_and_finishes_the_pick() -> None:
    problem = _problem()
    # b trained 2 epochs, a continued to 3 (one training, its last epoch): a finishes with its 4th.
    assert problem.total_cost([("b", 2), ("a", 3)], "a") == 20 + 6 + 4
    # The pick never trained: its whole run.
    assert problem.total_cost([("b", 1)], "c") == 10 + 20
    # A configuration started again pays again; the pick finishes from its longest training.
    assert problem.total_cost([("a", 1), ("a", 2)], "a") == 1 + 3 + 7
    assert problem.total_cost([("b", 4)], "b") == 40  # trained to the end: nothing to finish
    assert problem.total_cost([("a", 2)], "a", pick_epochs=0) == 3 + 10  # told it starts again


def test_trajectory_incumbent_and_reading_at_a_budget() -> None:
    problem = _problem()
    trajectory = anytime_data.Trajectory(problem)
    for training, config, epoch in [(0, "b", 1), (1, "a", 1), (1, "a", 2), (0, "b", 2), (1, "a", 3)]:
        trajectory.add(training, config, epoch)
    moments = trajectory.moments()
    # After b's 1st epoch: b (30 s to finish); a's 1st is worse at epoch 1; a's 2nd epoch makes it
    # the only run at epoch 2, then b's 2nd (0.5 > 0.2) takes epoch 2 back; a's 3rd wins epoch 3.
    assert [m.pick for m in moments] == ["b", "b", "a", "b", "a"]
    assert [m.spent for m in moments] == [10, 11, 13, 23, 26]
    assert [m.total for m in moments] == [40, 41, 20, 43, 30]
    assert trajectory.spent == 26 and trajectory.trainings == 2
    picks = trajectory.read([10, 20, 29, 100])
    assert picks[0] is None  # nothing finishes within 10 s
    assert picks[1] == ("a", 20)  # the only moment within 20 s: the third
    assert picks[2] == ("a", 20)  # the last within 29 s: the third (the later ones cost 43 and 30)
    assert picks[3] == ("a", 30)  # the last moment of all
    broken = anytime_data.Trajectory(problem, [(0, "a", 1), (0, "a", 3)])
    with pytest.raises(ValueError, match="goes from epoch 1 to 3"):
        broken.moments()


def test_budgeted_method_over_budget_is_no_pick() -> None:
    problem = _problem()
    method = anytime_methods.Method("greedy", "budgeted", lambda problem, budget, seed: ("b", 40.0))
    picks, _ = anytime_methods.evaluate(method, problem, [20.0, 40.0], seed=0)
    assert picks == [None, ("b", 40.0)]


def test_successive_halving_takes_as_many_candidates_as_fit() -> None:
    problem = _problem()
    costs = anytime_methods.halving_costs(problem)
    # n = 1: a alone to the end (10 s). n = 2: a and b one epoch each, b better, b to the end.
    assert costs[0] == ("a", 10.0)
    assert costs[1] == ("b", 1.0 + 40.0)
    assert anytime_methods.successive_halving(problem, 5.0, seed=0) is None
    assert anytime_methods.successive_halving(problem, 20.0, seed=0) == ("a", 10.0)
    for budget in problem.budgets():
        pick = anytime_methods.successive_halving(problem, budget, seed=0)
        assert pick is not None and pick[1] <= budget


def _methods() -> list[str]:
    methods = ["successive_halving", "optuna_sh"]
    if importlib.util.find_spec("syne_tune") is not None:
        methods += ["random_search", "syne_asha", "syne_bounding_box"]
    return methods


def test_anytime_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("optuna")
    _write_quicktune_layout(tmp_path / "data")
    anytime = _load("anytime")
    out, png = tmp_path / "anytime.json", tmp_path / "anytime.png"
    methods = _methods()
    argv = ["--data", str(tmp_path / "data"), "--targets", "D0,D1", "--seeds", "2"]
    argv += ["--methods", ",".join(methods), "--json", str(out), "--plot", str(png)]
    assert anytime.main(argv) == 0
    printed = capsys.readouterr().out
    assert "successive_halving" in printed and "skipped quicktune" in printed
    report = json.loads(out.read_text())
    assert report["budgets"] == [1, 2, 4, 8, 16]
    assert "quicktune" in report["skipped"] and report["command"].startswith("python benchmarks/anytime.py")
    assert {"cpu_count", "load_average"} <= set(report["machine"])
    assert png.stat().st_size > 0
    for candidate_set in ("models", "joint"):
        section = report["sets"][candidate_set]
        assert section["targets"] == ["D0", "D1"] and list(section["methods"]) == methods
        for row in section["methods"].values():
            assert list(row) == ["1", "2", "4", "8", "16"]
            for cell in row.values():
                low, high = cell["interval"]
                assert 0.0 <= low <= cell["mean_normalized_regret"] <= high <= 1.0
                assert 0.0 < cell["mean_cost_fraction"] <= 1.0  # never more than the budget
            for reference, vs in cell["vs"].items():
                assert reference == "successive_halving" and vs["verdict"] in {"lower", "higher", "tie"}
        # Successive halving never fails to pick at 16 runs' worth; it ties with itself.
        halving = section["methods"]["successive_halving"]
        assert all(cell["vs"]["successive_halving"]["verdict"] == "tie" for cell in halving.values())
        assert halving["16"]["no_pick"] == 0
        for target in ("D0", "D1"):
            budgets = report["problems"][target][candidate_set]["budgets_seconds"]
            assert budgets[-1] == pytest.approx(16 * budgets[0])
            for method, row in report["targets"][target][candidate_set].items():
                for budget, cell in zip(budgets, row.values(), strict=True):
                    assert cell["cost_seconds"] <= budget * (1 + 1e-9), (method, cell)
                    assert 0.0 <= cell["normalized_regret"] <= 1.0
                    assert len(cell["per_seed"]) == 2
    # The models set has one candidate per model (net0..net5; net6 never ran to the end), joint more.
    assert report["problems"]["D0"]["models"]["candidates"] == 6
    assert report["problems"]["D0"]["joint"]["candidates"] > 6
    if "syne_bounding_box" in methods:
        box = report["details"]["D0"]["joint"]["syne_bounding_box"][0]
        assert 1 <= box["box_candidates"] <= report["problems"]["D0"]["joint"]["candidates"]
        assert box["box_rule"] in {"box", "box models", "every candidate"}


def test_anytime_jobs_give_the_same_numbers(tmp_path: Path) -> None:
    pytest.importorskip("optuna")
    _write_quicktune_layout(tmp_path / "data")
    anytime = _load("anytime")
    methods = "successive_halving,optuna_hyperband"
    if importlib.util.find_spec("syne_tune") is not None:
        methods += ",syne_bohb"
    reports = []
    for jobs in (1, 2):
        out = tmp_path / f"jobs{jobs}.json"
        argv = ["--data", str(tmp_path / "data"), "--targets", "D0,D1", "--seeds", "2", "--sets", "joint"]
        argv += ["--methods", methods, "--jobs", str(jobs), "--json", str(out)]
        assert anytime.main(argv) == 0
        reports.append(json.loads(out.read_text()))
    assert reports[0]["sets"] == reports[1]["sets"] and reports[0]["targets"] == reports[1]["targets"]


def test_anytime_rejects_unknown_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write_quicktune_layout(tmp_path / "data")
    anytime = _load("anytime")
    base = ["--data", str(tmp_path / "data"), "--json", str(tmp_path / "x.json")]
    assert anytime.main([*base, "--methods", "nope"]) == 2
    assert anytime.main([*base, "--sets", "all"]) == 2
    assert "unknown" in capsys.readouterr().err


def test_an_hfselect_module_becomes_a_budgeted_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``anytime_hfselect.py``'s ``hfselect_pick(problem, budget_seconds, seed)`` is called once per budget."""
    (tmp_path / "anytime_hfselect.py").write_text(
        "def hfselect_pick(problem, budget_seconds, seed):\n"
        "    best = max(problem.configs, key=problem.finals.get)  # an oracle: trains the best run only\n"
        "    return best, problem.run_seconds[best]\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(anytime_methods, "HERE", tmp_path)
    previous = sys.modules.pop("anytime_hfselect", None)  # the real one, if a test imported it
    try:
        methods = anytime_methods.registry()
        assert next(iter(methods)) == "hfselect" and methods["hfselect"].kind == "budgeted"
        assert "hfselect" not in anytime_methods.skipped_methods()
        problem = _problem()
        picks, _ = anytime_methods.evaluate(methods["hfselect"], problem, [5.0, 20.0], seed=0)
        assert picks == [None, ("a", 10.0)]  # a's run costs 10 s: over 5, within 20
    finally:
        sys.modules.pop("anytime_hfselect", None)
        if previous is not None:
            sys.modules["anytime_hfselect"] = previous


def test_bounding_box_candidates_fall_back_from_ranges_to_models_to_everything() -> None:
    pytest.importorskip("syne_tune")
    from syne_tune.config_space import choice, uniform

    anytime_syne = _load("anytime_syne")
    problem = _problem()
    problem.data = type("Data", (), {"model_of": problem.model_of})()
    problem.hyperparameters = {"lr": {"a": 0.1, "b": 0.01, "c": 0.001}}
    box = {"model": choice(["m1"]), "lr": uniform(0.0005, 0.005)}
    assert anytime_syne.box_candidates(problem, box, ["lr"]) == (["c"], "box")
    box = {"model": choice(["m1"]), "lr": uniform(0.02, 0.05)}  # no run of m1 in range: m1's runs
    assert anytime_syne.box_candidates(problem, box, ["lr"]) == (["a", "c"], "box models")
    box = {"model": choice(["m9"]), "lr": uniform(0.02, 0.05)}  # no model of the target: every run
    assert anytime_syne.box_candidates(problem, box, ["lr"]) == (["a", "b", "c"], "every candidate")


def test_the_hfselect_row_runs_the_librarys_budget_loop(tmp_path: Path) -> None:
    """anytime_hfselect.py: the library's plan_budget and run_budget on a tiny layout, within each budget."""
    _write_quicktune_layout(tmp_path / "data")
    anytime = _load("anytime")
    out = tmp_path / "anytime.json"
    argv = ["--data", str(tmp_path / "data"), "--targets", "D0,D1", "--seeds", "1"]
    assert anytime.main([*argv, "--methods", "successive_halving,hfselect", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    for candidate_set in ("models", "joint"):
        row = report["sets"][candidate_set]["methods"]["hfselect"]
        assert list(row) == ["1", "2", "4", "8", "16"]
        # A large budget affords the halving over every candidate: hfselect picks within it.
        assert (
            row["16"]["no_pick"] == 0
            and row["16"]["mean_normalized_regret"] <= row["1"]["mean_normalized_regret"]
        )
        for target in ("D0", "D1"):
            budgets = report["problems"][target][candidate_set]["budgets_seconds"]
            cells = report["targets"][target][candidate_set]["hfselect"].values()
            for budget, cell in zip(budgets, cells, strict=True):
                assert cell["cost_seconds"] <= budget * (1 + 1e-9)
