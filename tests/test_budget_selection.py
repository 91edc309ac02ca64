"""Budget-first selection, live: ``hfselect.select(..., budget=...)`` and ``select --budget``."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import hfselect
from hfselect.errors import HfSelectError, InvalidValueError
from hfselect.store import ModelRepository
from hfselect.training.bench import BenchConfig, run_bench
from hfselect.training.budget_selection import Candidate, epoch_seconds_per_example, learning_rate_ranks
from hfselect.validation import check_duration, check_learning_rates
from tests.bad_input import run_cli
from tests.conftest import TINY_BENCH

PROTOCOL = {"epochs": 2, "learning_rate": 1e-2, "batch_size": 16, "max_length": 32}


@pytest.fixture(scope="module")
def two_rates(tiny_assets: Path, tiny_benchmarks: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The benchmarked tiny repository plus every model at a second learning rate (3e-3): a shared copy."""
    path = tmp_path_factory.mktemp("two-rates") / "repo.sqlite"
    path.write_bytes(tiny_benchmarks.read_bytes())
    with ModelRepository(path) as repository:
        run_bench(
            repository,
            [str(tiny_assets / "models")],
            [str(tiny_assets / "datasets" / "sentiment")],
            BenchConfig(**{**TINY_BENCH, "learning_rate": 3e-3}),
            progress=False,
        )
    return path


def test_durations_and_learning_rates_are_checked() -> None:
    assert [check_duration("budget", v) for v in ("4h", "90m", "2.5h", "45s", "3600", 60)] == [
        14400,
        5400,
        9000,
        45,
        3600,
        60,
    ]
    for bad in ("soon", "-1h", "0", 0, float("inf")):
        with pytest.raises(InvalidValueError, match="budget must be"):
            check_duration("budget", bad)
    assert check_learning_rates("learning_rates", "1e-5,3e-5") == [1e-5, 3e-5]
    for bad in ("", "1e-5,1e-5", "1e-5,-1", 0.1):
        with pytest.raises(InvalidValueError, match="learning_rates"):
            check_learning_rates("learning_rates", bad)


def test_pairs_are_ranked_by_recall_and_the_benchmarks_learning_rate_order(two_rates: Path) -> None:
    with ModelRepository(two_rates) as repository:
        ranks = learning_rate_ranks(repository, [1e-2, 3e-3])
        timings = epoch_seconds_per_example(repository)
    assert set(ranks) == {"bert-a", "distil-b", "bert-headless"}
    assert all(sorted(places.values()) == [0, 1] for places in ranks.values())
    assert set(timings) == set(ranks) and all(value > 0 for value in timings.values())
    models = [("m1", "p1"), ("m2", "p2")]
    pairs = Candidate.pairs(models, [1e-2, 3e-3], {"m1": {3e-3: 0, 1e-2: 1}})
    # m1's better rate first; then m1's other rate and m2's first (rank sum 1: m1, the better recalled, first).
    assert [p.name for p in pairs] == ["m1@lr=0.003", "m1@lr=0.01", "m2@lr=0.01", "m2@lr=0.003"]
    assert [p.name for p in Candidate.pairs(models, [1e-2], {})] == ["m1", "m2"]


def test_a_budget_in_epochs_plans_and_reports(tiny_assets: Path, two_rates: Path, tmp_path: Path) -> None:
    target = str(tiny_assets / "datasets" / "topic")
    events: list[str] = []
    report = hfselect.select(
        target, two_rates, budget_epochs=8, learning_rates=[1e-2, 3e-3], sample_size=64,
        output_dir=tmp_path / "out", progress=False, on_event=events.append, **PROTOCOL,
    )  # fmt: skip
    account = report.selection["budget"]
    assert account["unit"] == "epochs" and account["budget"] == 8 and account["within_budget"]
    assert account["spent_by_selection"] <= 8
    assert account["selected"]["learning_rate"] in (1e-2, 3e-3)
    assert report.selected_model.endswith(f"@lr={account['selected']['learning_rate']:g}")
    assert any(line.startswith("plan: budget 8 epochs: ") for line in events)
    assert any("why this width" in line for line in account["plan"])
    trained = [c for c in report.selection["candidates"] if c["epochs"]]
    assert sum(c["epochs"] for c in trained) == account["spent_by_selection"] <= 8
    assert Path(report.saved_to).is_dir()
    card = (tmp_path / "out" / "README.md").read_text()
    assert "Budget" in card and account["plan"][0] in card


def test_a_budget_in_time_holds_the_wall_time(tiny_assets: Path, two_rates: Path, tmp_path: Path) -> None:
    target = str(tiny_assets / "datasets" / "topic")
    started = time.perf_counter()
    report = hfselect.select(
        target, two_rates, budget="10m", sample_size=64, output_dir=tmp_path / "out", progress=False,
        **PROTOCOL,
    )  # fmt: skip
    account = report.selection["budget"]
    assert account["unit"] == "seconds" and account["budget"] == 600 and account["within_budget"]
    assert account["wall_time_s"] <= time.perf_counter() - started <= 600
    # Ten minutes afford every recalled candidate on the tiny models: a halving over all three.
    assert "every one of the 3 candidates" in account["plan"][1]


def test_budget_errors_are_one_line_before_any_work(
    tiny_assets: Path, two_rates: Path, tmp_path: Path
) -> None:
    target = str(tiny_assets / "datasets" / "topic")
    with ModelRepository(two_rates) as repository:
        studies = repository.study_ids()
    with pytest.raises(HfSelectError, match="too small"):
        hfselect.select(target, two_rates, budget="0.01s", sample_size=64, output_dir=tmp_path, **PROTOCOL)
    with ModelRepository(two_rates) as repository:
        assert repository.study_ids() == studies  # no study left behind, marked running
    with pytest.raises(InvalidValueError, match="learning_rates needs a budget"):
        hfselect.select(target, two_rates, learning_rates=[1e-3], output_dir=tmp_path, **PROTOCOL)
    with pytest.raises(InvalidValueError, match="budget must be"):
        hfselect.select(target, two_rates, budget="soon", output_dir=tmp_path, **PROTOCOL)


def test_cli_budget_options_are_usage_errors(
    tiny_assets: Path, two_rates: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = str(tiny_assets / "datasets" / "topic")
    for extra in (
        ["--budget", "soon"],
        ["--budget", "1h", "--budget-epochs", "3"],
        ["--learning-rates", "x"],
    ):
        status, lines = run_cli(["select", target, "--repository", str(two_rates), *extra], capsys)
        assert status == 2 and lines[-1].startswith("hfselect select: error:"), lines


def test_cli_select_with_a_budget_prints_the_plan_and_the_account(
    tiny_assets: Path, two_rates: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hfselect import cli

    target = str(tiny_assets / "datasets" / "topic")
    protocol = ["--epochs", "2", "--learning-rate", "1e-2", "--batch-size", "16", "--max-length", "32"]
    status = cli.main(
        ["select", target, "--repository", str(two_rates), "--budget-epochs", "6", "--sample-size", "64",
         "--output", str(tmp_path / "out"), "--quiet", *protocol]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert status == 0
    assert "plan: budget 6 epochs: " in out  # a budget in epochs is told in epochs
    assert "budget: 6 epochs; the selection spent" in out and "within the budget" in out
