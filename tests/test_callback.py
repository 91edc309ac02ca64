"""ConvergenceTrendCallback in real Trainer runs, in separate processes sharing one study."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from hfselect.store import ModelRepository
from hfselect.store.studies import Study

SCRIPT = Path(__file__).with_name("trainer_with_callback.py")


def train(
    model: Path, dataset: Path, repository: Path, study: str, lr: float, epochs: int, out: Path, *extra: str
):
    # The checkout first, then whatever the environment already puts on the path.
    path = [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(part for part in path if part)}
    subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            str(model),
            str(dataset),
            str(repository),
            study,
            str(lr),
            str(epochs),
            str(out),
            *list(extra),
        ],
        check=True,
        env=env,
        capture_output=True,
        timeout=300,
    )
    return json.loads(out.read_text())


def test_weak_run_is_halted_and_strong_run_completes(tiny_assets: Path, tmp_path: Path) -> None:
    repository = tmp_path / "repo.sqlite"
    dataset = tiny_assets / "datasets" / "sentiment"
    strong = train(
        tiny_assets / "models" / "distil-b", dataset, repository, "target", 1e-2, 4, tmp_path / "s.json"
    )
    weak = train(
        tiny_assets / "models" / "bert-a", dataset, repository, "target", 0.0, 4, tmp_path / "w.json"
    )

    assert strong["stopped_reason"] is None and strong["epochs"] == 4
    assert weak["stopped_reason"] is not None and weak["epochs"] <= 3
    assert "which scored higher" in weak["stopped_reason"]
    decisions = [entry for entry in weak["log_history"] if "trend/decision" in entry]
    assert (
        decisions[-1]["trend/decision"] == "stop" and decisions[-1]["trend/reason"] == weak["stopped_reason"]
    )
    assert decisions[-1]["trend/predicted_final"] < decisions[-1]["trend/rival_predicted_final"]
    # The callback's own cost per evaluation: a few SQLite reads and writes.
    assert max(strong["overhead_s"] + weak["overhead_s"]) < 1.0

    with ModelRepository(repository) as repo:
        trials = Study(repo, "target").trials()
    strong_id, weak_id = str(tiny_assets / "models" / "distil-b"), str(tiny_assets / "models" / "bert-a")
    assert trials[strong_id].state == "completed" and trials[strong_id].epochs_trained == 4
    assert trials[weak_id].state == "stopped" and trials[weak_id].reason == weak["stopped_reason"]
    assert trials[weak_id].details["trend/decision"] == "stop"


def test_steps_evaluation_and_min_epochs(tiny_assets: Path, tmp_path: Path) -> None:
    repository = tmp_path / "repo.sqlite"
    dataset = tiny_assets / "datasets" / "sentiment"
    train(
        tiny_assets / "models" / "distil-b", dataset, repository, "t", 1e-2, 2, tmp_path / "s.json", "steps"
    )
    weak = train(
        tiny_assets / "models" / "bert-a", dataset, repository, "t", 0.0, 2, tmp_path / "w.json", "steps"
    )
    decisions = [entry for entry in weak["log_history"] if "trend/decision" in entry]
    assert weak["stopped_reason"] is not None
    # 20 steps an epoch, evaluated every 10: never stopped before min_epochs=1.
    assert all(entry["trend/decision"] == "continue" for entry in decisions if entry["epoch"] < 1)
    assert 1 <= weak["epochs"] < 2


def test_auto_margin_is_the_predictors_held_out_error() -> None:
    import math

    import pytest

    from hfselect.callbacks import ConvergenceTrendCallback
    from hfselect.core.trend import Curve, HeadroomTrendPredictor

    callback = ConvergenceTrendCallback(study="s", margin="auto")
    callback.predictor = HeadroomTrendPredictor([Curve((0.6, 0.8)), Curve((0.2, 0.6)), Curve((0.5, 0.9))])
    assert callback.margin_at(1) == pytest.approx(callback.predictor.holdout_error(1))
    assert math.isnan(callback.margin_at(2))  # unknown: the rivals' rule does not stop the run
    assert ConvergenceTrendCallback(study="s", margin=0.05).margin_at(1) == 0.05
    with pytest.raises(ValueError, match="margin"):
        ConvergenceTrendCallback(study="s", margin="wide")


def test_callback_predicts_from_the_runs_whole_curve_at_epoch_ends() -> None:
    import pytest

    from hfselect.callbacks import ConvergenceTrendCallback
    from hfselect.core.trend import Curve, NeighboursTrendPredictor

    rising = [Curve((0.1, 0.3, 0.9)), Curve((0.12, 0.31, 0.92))]
    flat = [Curve((0.3, 0.3, 0.3)), Curve((0.31, 0.3, 0.32))]
    callback = ConvergenceTrendCallback(study="s")
    callback.predictor = NeighboursTrendPredictor(rising + flat, k=2)
    assert callback._predict(0.3, 1.5) == callback.predictor.predict(0.3, 1.5)  # mid-epoch: the score
    assert callback._predict(0.3, 2.0) == callback.predictor.predict(0.3, 2.0)  # epoch 1 was not seen
    fresh = ConvergenceTrendCallback(study="s")
    fresh.predictor = callback.predictor
    fresh._predict(0.1, 1.0)
    assert fresh._predict(0.3, 2.0) == pytest.approx(0.91)  # rises like the first two curves
