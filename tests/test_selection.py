"""Fine selection: successive halving with trends, the select command, resuming after kill -9."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hfselect.store import ModelRepository
from hfselect.training.selection import FineSelection, SelectConfig, successive_halving_epochs

TRAINING = ["--epochs", "3", "--learning-rate", "1e-2", "--batch-size", "16", "--max-length", "32"]


@pytest.mark.parametrize(
    ("candidates", "budget", "expected"),
    [(1, 5, 5), (2, 5, 2 + 4), (4, 5, 4 + 2 + 3), (8, 3, 8 + 4 + 2)],  # 8 candidates: budget ends first
)
def test_successive_halving_epochs(candidates: int, budget: int, expected: int) -> None:
    assert successive_halving_epochs(candidates, budget) == expected


def test_sync_selection_drops_half_each_round_and_saves_the_winner(
    tiny_assets: Path, benchmarked: Path, tmp_path: Path
) -> None:
    candidates = [str(tiny_assets / "models" / name) for name in ("bert-a", "distil-b", "bert-headless")]
    config = SelectConfig(
        epochs=3, learning_rate=1e-2, batch_size=16, max_length=32, output_dir=str(tmp_path / "run")
    )
    events: list[str] = []
    with ModelRepository(benchmarked) as repository:
        result = FineSelection(
            repository, str(tiny_assets / "datasets" / "topic"), candidates, config, on_event=events.append
        ).run()
    assert result.selected_model in {"bert-a", "distil-b", "bert-headless"}
    assert result.epochs_spent <= result.successive_halving_epochs < result.brute_force_epochs == 9
    by_id = {c.model_id: c for c in result.candidates}
    assert by_id[result.selected_model].epochs == 3 and by_id[result.selected_model].state == "completed"
    dropped = [c for c in result.candidates if c.state == "stopped"]
    assert len(dropped) == 2 and all(c.reason for c in dropped)
    assert result.rounds[0]["round"] == 1 and len(result.rounds[0]["decisions"]) == 3
    # Dropped candidates' checkpoints are deleted; the winner is saved as a loadable model.
    assert not any((tmp_path / "run" / "checkpoints" / c.model_id).exists() for c in dropped)
    from transformers import AutoModelForSequenceClassification

    assert AutoModelForSequenceClassification.from_pretrained(result.saved_to).config.num_labels == 3


def test_async_schedule_halts_with_the_callback(tiny_assets: Path, benchmarked: Path, tmp_path: Path) -> None:
    candidates = [str(tiny_assets / "models" / name) for name in ("distil-b", "bert-a")]
    config = SelectConfig(
        epochs=3,
        learning_rate=1e-2,
        batch_size=16,
        max_length=32,
        output_dir=str(tmp_path / "run"),
        schedule="async",
    )
    with ModelRepository(benchmarked) as repository:
        result = FineSelection(
            repository, str(tiny_assets / "datasets" / "sentiment"), candidates, config
        ).run()
    assert result.epochs_spent <= result.brute_force_epochs
    assert result.selected_model is not None and result.test_score is not None


def select_command(tiny_assets: Path, repository: Path, output: Path) -> list[str]:
    return [
        sys.executable, "-m", "hfselect", "select", str(tiny_assets / "datasets" / "topic"),
        "--repository", str(repository), "--candidates", "3", "--output", str(output), "--quiet", *TRAINING,
        "--study", "resume-after-kill",
    ]  # fmt: skip


def trained_epochs(output: str) -> list[tuple[str, int]]:
    """(model, epoch) for every epoch of training a run's output reports."""
    pairs = []
    for line in output.splitlines():
        if match := re.match(r"round \d+: training (\S+) to epoch (\d+)", line):
            pairs.append((match[1], int(match[2])))
    return pairs


def test_select_resumes_after_kill_9(tiny_assets: Path, benchmarked: Path, tmp_path: Path) -> None:
    repository = tmp_path / "repo.sqlite"
    repository.write_bytes(benchmarked.read_bytes())
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        select_command(tiny_assets, repository, tmp_path / "out"), stdout=subprocess.PIPE, text=True, env=env
    )
    seen = []
    assert process.stdout is not None
    for line in process.stdout:
        seen.append(line)
        if len(trained_epochs("".join(seen))) == 3:  # killed while training the third candidate-epoch
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    first = trained_epochs("".join(seen))

    rerun = subprocess.run(
        select_command(tiny_assets, repository, tmp_path / "out"),
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert rerun.returncode == 0, rerun.stderr
    second = trained_epochs(rerun.stdout)
    redone = [pair for pair in second if pair in first]
    assert len(redone) <= 1  # at most the interrupted epoch
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["selected_model"] in {"bert-a", "distil-b", "bert-headless"}
    assert {c["model_id"] for c in report["selection"]["candidates"]} == {
        "bert-a",
        "distil-b",
        "bert-headless",
    }


def test_halving_round_drops_the_worse_half_and_predicted_low_performers() -> None:
    from hfselect.training.selection import halving_round

    alive = ["a", "b", "c", "d"]
    score = {"a": 0.9, "b": 0.6, "c": 0.7, "d": 0.5}
    predicted = {"a": 0.92, "b": 0.95, "c": 0.75, "d": 0.6}
    drops = halving_round(alive, score, predicted, epoch=1)
    # c and d are the worse half by prediction; b is kept: nobody who scored higher is predicted higher.
    assert set(drops) == {"c", "d"} and drops["c"].startswith("worse half")
    predicted["b"] = 0.91  # now a (higher score, higher prediction) outranks b: a predicted low performer
    drops = halving_round(alive, score, predicted, epoch=1)
    assert set(drops) == {"b", "c", "d"} and drops["b"].startswith("predicted low performer")
    assert halving_round(["a"], score, predicted, epoch=2) == {}


def test_halving_round_margins_spare_a_late_bloomer() -> None:
    from hfselect.training.selection import halving_round

    # Epoch 1 of a 4-class task: the late bloomer l is still at chance, e scored a little higher and
    # is predicted a little higher. Both are in the better half.
    alive = ["e", "l", "x", "y"]
    score = {"e": 0.33, "l": 0.25, "x": 0.25, "y": 0.24}
    predicted = {"e": 0.71, "l": 0.64, "x": 0.40, "y": 0.30}
    assert set(halving_round(alive, score, predicted, epoch=1)) == {"l", "x", "y"}  # the paper's rule
    # With a margin of the predictor's typical error (0.1 here), 0.64 + 0.1 is not below 0.71: kept.
    drops = halving_round(alive, score, predicted, epoch=1, margin={"e": 0.1, "l": 0.1, "x": 0.1, "y": 0.1})
    assert set(drops) == {"x", "y"}
    # A margin that is too small does not save it; an unknown (NaN or missing) one never condemns.
    drops = halving_round(alive, score, predicted, epoch=1, margin={"l": 0.05})
    assert drops["l"].startswith("predicted low performer") and "+ margin 0.0500" in drops["l"]
    assert "l" not in halving_round(alive, score, predicted, epoch=1, margin={"l": float("nan")})
    assert "l" not in halving_round(alive, score, predicted, epoch=1, margin={})


def test_select_options_default_to_hfselects_rule() -> None:
    import pytest

    from hfselect.cli import build_parser, selection_config

    args = build_parser().parse_args(["select", "some/dataset"])
    assert args.scope == "evidence" and args.candidates == 4 and args.margin == "auto"
    assert selection_config(args).margin == "auto"
    assert build_parser().parse_args(["select", "d", "--margin", "0.02"]).margin == 0.02
    for bad in ("wide", "-1"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["select", "d", "--margin", bad])


def test_select_with_published_results_only_says_which_prediction_applies(
    tiny_assets: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hfselect.cli import main

    repository = tmp_path / "published.sqlite"
    with ModelRepository(repository) as store:
        for index, name in enumerate(("bert-a", "distil-b", "bert-headless")):
            store.upsert_model(name, location=str(tiny_assets / "models" / name))
            # Final scores only, as a starter repository holds: no learning curves anywhere.
            store.record_results([(name, "published-a", 0.6 + index / 10), (name, "published-b", 0.5)])
    code = main(
        ["select", str(tiny_assets / "datasets" / "topic"), "--repository", str(repository), "--candidates", "2",
         "--output", str(tmp_path / "out"), "--quiet", *TRAINING]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "note: no learning curves in the repository for 2 candidate(s)" in out
    assert "predicted final score is their current score" in out and "plain successive halving" in out
    assert "predicted low performer at epoch" not in out and "worse half at epoch 1" in out


@pytest.mark.parametrize(
    ("budget", "rungs"), [(1, [1]), (3, [1, 2]), (5, [1, 2, 4]), (50, [3, 6, 12, 24, 48])]
)
def test_halving_rungs_start_at_a_sixteenth_of_the_budget(budget: int, rungs: list[int]) -> None:
    from hfselect.training.selection import halving_rungs

    assert halving_rungs(budget) == rungs


def test_replay_halving_on_recorded_curves() -> None:
    from hfselect.core.trend import Curve, HeadroomTrendPredictor
    from hfselect.training.selection import replay_halving

    curves = {
        "early": [0.6, 0.62, 0.63, 0.64],  # leads after one epoch, ends low
        "late": [0.35, 0.7, 0.8, 0.9],
        "mid": [0.3, 0.4, 0.5, 0.6],
        "flat": [0.1, 0.1, 0.1, 0.1],
    }
    # Plain successive halving after epochs 1 and 2: the early leader and the late bloomer survive
    # epoch 1's cut, the late bloomer wins at epoch 2 and trains to the budget.
    plain = replay_halving(curves, 4, rungs=[1, 2])
    assert plain.selected == "late"
    assert plain.epochs == {"early": 2, "late": 4, "mid": 1, "flat": 1}
    assert set(plain.drops) == {"early", "flat", "mid"}
    # With trend predictors and the paper's margin 0, the late bloomer is a predicted low performer
    # after epoch 1 (predicted below the early leader, which scored higher); with "auto" and a
    # predictor whose error is unknown (one curve), it is not.
    predictors = {m: HeadroomTrendPredictor([Curve((0.3, 0.9, 0.95, 0.97))]) for m in curves}
    paper = replay_halving(curves, 4, predictors=predictors, margin=0.0, rungs=[1, 2])
    assert paper.selected == "early" and "low performer" in paper.drops["late"]
    auto = replay_halving(curves, 4, predictors=predictors, margin="auto", rungs=[1, 2])
    assert auto.selected == "late" and auto.epochs["late"] == 4
    assert replay_halving({"only": [0.5, 0.6]}, 2).epochs == {"only": 2}


def test_a_rerun_reports_the_wall_time_of_the_run_that_did_the_work(
    tiny_assets: Path, benchmarked: Path, tmp_path: Path
) -> None:
    candidates = [str(tiny_assets / "models" / name) for name in ("bert-a", "distil-b")]
    config = SelectConfig(
        epochs=2, learning_rate=1e-2, batch_size=16, max_length=32, output_dir=str(tmp_path / "run")
    )
    target = str(tiny_assets / "datasets" / "topic")
    with ModelRepository(benchmarked) as repository:
        first = FineSelection(repository, target, candidates, config, repository_models=3).run()
        events: list[str] = []
        again = FineSelection(repository, target, candidates, config, on_event=events.append).run()
    assert not any("training" in event for event in events)  # nothing trained again
    assert first.wall_time_s > 0 and again.wall_time_s == first.wall_time_s
    seconds = {c.model_id: c.seconds for c in again.candidates}
    assert seconds == {c.model_id: c.seconds for c in first.candidates} and seconds[again.selected_model] > 0
    assert first.repository_models == 3 and first.brute_force_repository_epochs == 6
