"""Fine selection: successive halving with trends, the select command, resuming after kill -9."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hfselect.store import ModelRepository
from hfselect.training.selection import FineSelection, SelectConfig

TRAINING = ["--epochs", "3", "--learning-rate", "1e-2", "--batch-size", "16", "--max-length", "32"]


def tiny_config(tmp_path: Path, epochs: int, **options: Any) -> SelectConfig:
    """The tiny models' protocol (as ``TRAINING`` on the command line), writing under ``tmp_path/run``."""
    return SelectConfig(
        epochs=epochs,
        learning_rate=1e-2,
        batch_size=16,
        max_length=32,
        output_dir=str(tmp_path / "run"),
        **options,
    )


def test_sync_selection_drops_half_each_round_and_saves_the_winner(
    tiny_assets: Path, benchmarked: Path, tmp_path: Path
) -> None:
    candidates = [str(tiny_assets / "models" / name) for name in ("bert-a", "distil-b", "bert-headless")]
    config = tiny_config(tmp_path, epochs=3)
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
    config = tiny_config(tmp_path, epochs=3, schedule="async")
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


def test_select_options_default_to_hfselects_rule() -> None:
    import pytest

    from hfselect.cli import build_parser
    from hfselect.cli.options import selection_options

    args = build_parser().parse_args(["select", "some/dataset"])
    # No --candidates: hfselect.select takes DEFAULT_CANDIDATES (4), or DEFAULT_TOP_K (15) with a budget.
    assert args.scope == "evidence" and args.candidates is None and args.margin == "auto"
    assert selection_options(args)["margin"] == "auto"
    assert build_parser().parse_args(["select", "d", "--margin", "0.02"]).margin == 0.02
    for bad in ("wide", "-1"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["select", "d", "--margin", bad])
    assert args.halving_order == "rank_sum" and selection_options(args)["halving_order"] == "rank_sum"
    assert (
        build_parser().parse_args(["select", "d", "--halving-order", "predicted"]).halving_order
        == "predicted"
    )
    with pytest.raises(SystemExit):
        build_parser().parse_args(["select", "d", "--halving-order", "best"])
    assert args.reduction_factor == 2 and selection_options(args)["reduction_factor"] == 2
    assert build_parser().parse_args(["select", "d", "--reduction-factor", "3"]).reduction_factor == 3
    for bad in ("1", "2.5"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["select", "d", "--reduction-factor", bad])


def test_sync_rounds_order_and_reduce_as_configured(
    tiny_assets: Path, benchmarked: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hfselect.training.selection as selection

    orders: list[tuple[str, int]] = []
    decide = selection.halving_round

    def recording_round(*args: Any, **kwargs: Any) -> dict[str, str]:
        orders.append((kwargs["order_by"], kwargs["reduction_factor"]))
        return decide(*args, **kwargs)

    monkeypatch.setattr(selection, "halving_round", recording_round)
    candidates = [str(tiny_assets / "models" / name) for name in ("bert-a", "distil-b")]
    config = tiny_config(tmp_path, epochs=2, halving_order="predicted", reduction_factor=3)
    with ModelRepository(benchmarked) as repository:
        FineSelection(repository, str(tiny_assets / "datasets" / "topic"), candidates, config).run()
    assert orders and set(orders) == {("predicted", 3)}
    assert SelectConfig().halving_order == "rank_sum" and SelectConfig().reduction_factor == 2
    with pytest.raises(ValueError, match="reduction_factor must be an integer >= 2, not 1"):
        SelectConfig(reduction_factor=1)


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


def test_a_rerun_reports_the_wall_time_of_the_run_that_did_the_work(
    tiny_assets: Path, benchmarked: Path, tmp_path: Path
) -> None:
    candidates = [str(tiny_assets / "models" / name) for name in ("bert-a", "distil-b")]
    config = tiny_config(tmp_path, epochs=2)
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
