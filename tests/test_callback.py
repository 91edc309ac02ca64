"""ConvergenceTrendCallback in real Trainer runs, in separate processes sharing one study."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from hfselect.store import ModelRepository
from hfselect.store.studies import Study

SCRIPT = Path(__file__).with_name("trainer_with_callback.py")
# Two processes on CPU, as `torchrun --standalone --nproc_per_node 2` starts them (DDP over gloo).
TORCHRUN = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]


def train(
    model: Path,
    dataset: Path,
    repository: Path,
    study: str,
    lr: float,
    epochs: int,
    out: Path,
    *extra: str,
    processes: int = 1,
):
    # The checkout first, then whatever the environment already puts on the path.
    path = [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(part for part in path if part)}
    subprocess.run(
        [
            sys.executable,
            *(TORCHRUN if processes == 2 else []),
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


@pytest.fixture(scope="module")
def strong_run(tiny_assets: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A study with one strong run (4 epochs, evaluated each epoch), shared by the module: copy it."""
    folder = tmp_path_factory.mktemp("strong-run")
    repository = folder / "repo.sqlite"
    dataset = tiny_assets / "datasets" / "sentiment"
    model = tiny_assets / "models" / "distil-b"
    strong = train(model, dataset, repository, "target", 1e-2, 4, folder / "s.json", "margin=0")
    return repository, strong


def copy_repository(source: Path, destination: Path) -> Path:
    """A consistent copy of a repository another process wrote (its WAL included)."""
    with sqlite3.connect(source) as reader, sqlite3.connect(destination) as writer:
        reader.backup(writer)
    return destination


def weak_run(
    tiny_assets: Path, strong_run: tuple[Path, dict], tmp_path: Path, epochs: int, *options: str
) -> tuple[Path, dict]:
    """A run at learning rate 0 (it never learns) joining a copy of the strong run's study, margin 0."""
    repository = copy_repository(strong_run[0], tmp_path / "repo.sqlite")
    model, dataset = tiny_assets / "models" / "bert-a", tiny_assets / "datasets" / "sentiment"
    weak = train(model, dataset, repository, "target", 0.0, epochs, tmp_path / "w.json", "margin=0", *options)
    return repository, weak


def test_weak_run_is_halted_and_strong_run_completes(
    tiny_assets: Path, strong_run: tuple[Path, dict], tmp_path: Path
) -> None:
    repository, weak = weak_run(tiny_assets, strong_run, tmp_path, 4)
    strong = strong_run[1]
    assert strong["stopped_reason"] is None and strong["epochs"] == 4
    # No metric given: the callback followed TrainingArguments.metric_for_best_model.
    assert (strong["metric"], strong["greater_is_better"]) == ("eval_accuracy", True)
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


@pytest.mark.parametrize("processes", [1, 2])
def test_a_first_study_without_benchmark_curves_halts_the_losing_run(
    tiny_assets: Path, tmp_path: Path, processes: int
) -> None:
    """A new user's first study: one tiny BERT trained twice in a new repository, margin "auto".

    No benchmark curves exist, so the study rule decides: the run at learning rate 0 (flat at chance)
    is halted against the run at 1e-2, in one process and under torchrun alike.
    """
    repository = tmp_path / "new.sqlite"
    model, dataset = tiny_assets / "models" / "bert-a", tiny_assets / "datasets" / "sentiment"
    run = [model, dataset, repository, "my-target"]
    strong = train(*run, 1e-2, 6, tmp_path / "strong.json", processes=processes)
    weak = train(*run, 0.0, 6, tmp_path / "weak.json", processes=processes)

    assert strong["processes"] == weak["processes"] == processes
    assert strong["stopped_reason"] is None and strong["epochs"] == 6
    assert strong["rule"] == weak["rule"] == "study"
    assert "no benchmark learning curves" in strong["rule_message"]
    assert "first run, so it cannot be stopped" in strong["rule_message"]
    assert weak["run_name"] == f"{model} (run 2)"  # the same model trained again is a second run
    assert weak["stopped_reason"].startswith(f"behind {model} at epoch")
    assert weak["epochs"] < 6
    decisions = [entry for entry in weak["log_history"] if "trend/decision" in entry]
    assert decisions[-1]["trend/rule"] == "study" and decisions[-1]["trend/decision"] == "stop"
    if processes == 2:  # every process stopped at the same step
        other = json.loads(Path(f"{tmp_path / 'weak.json'}.rank1").read_text())
        assert other["epochs"] == weak["epochs"] and other["stopped_reason"] == weak["stopped_reason"]
    with ModelRepository(repository) as repo:
        trials = Study(repo, "my-target").trials()
    assert trials[str(model)].state == "completed"
    assert trials[f"{model} (run 2)"].state == "stopped"


def _begin(callback: object, repository: ModelRepository, model: str, epoch: float = 0.0) -> None:
    """``on_train_begin`` as the Trainer calls it on the main process."""
    args = SimpleNamespace(metric_for_best_model="accuracy", greater_is_better=True, num_train_epochs=3)
    state = SimpleNamespace(is_world_process_zero=True, epoch=epoch, num_train_epochs=3)
    callback.on_train_begin(args, state, None, model=SimpleNamespace(name_or_path=model))  # type: ignore[attr-defined]


def test_the_rule_is_chosen_and_said_at_train_begin(
    tiny_assets: Path, benchmarked: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from hfselect.callbacks import ConvergenceTrendCallback
    from hfselect.store.studies import Trial

    model = str(tiny_assets / "models" / "bert-a")
    with ModelRepository(benchmarked) as repository:  # benchmark curves of the model: the trend rule
        callback = ConvergenceTrendCallback(study="t", repository=repository)
        with caplog.at_level("INFO", logger="hfselect.callbacks.convergence"):
            _begin(callback, repository, model)
        assert callback.rule == "trend" and "benchmark learning curves" in callback.rule_message
        assert callback.rule_message in caplog.text

    with ModelRepository(tmp_path / "new.sqlite") as repository:
        study = Study(repository, "t")
        for index, scores in enumerate(((0.5, 0.7, 0.9), (0.5, 0.6, 0.65), (0.4, 0.8, 0.85))):
            for epoch, score in enumerate(scores, start=1):
                study.record_point(f"run-{index}", epoch, score, score)
            finished = Trial(f"run-{index}", "completed" if index < 2 else "stopped", 3)
            study.set_trial(finished)
        callback = ConvergenceTrendCallback(study="t", repository=repository)
        with caplog.at_level("WARNING", logger="hfselect.callbacks.convergence"):
            _begin(callback, repository, model)
        assert callback.rule == "study" and "joins once 3 have finished (2 so far)" in callback.rule_message
        assert callback.rule_message in caplog.text
        study.set_trial(Trial("run-2", "completed", 3))  # a third finished run: the study's own trend
        callback = ConvergenceTrendCallback(study="t", repository=repository)
        _begin(callback, repository, model)
        assert "the trend of the study's 3 finished runs" in callback.rule_message
        assert callback.predictor is not None and len(callback.predictor.curves) == 3
        # A numeric margin is the user's own rule: the trend rule, the current score standing in.
        numeric = ConvergenceTrendCallback(study="t", repository=repository, margin=0.0)
        _begin(numeric, repository, model)
        assert numeric.rule == "trend"


def test_a_run_is_named_after_its_model_and_a_resumed_run_keeps_its_name() -> None:
    from hfselect.callbacks.convergence import _run_name
    from hfselect.store.studies import Trial

    assert _run_name("m", {}, resumed=False) == "m"
    done = {"m": Trial("m", "completed")}
    assert _run_name("m", done, resumed=False) == "m (run 2)"
    unfinished = {**done, "m (run 2)": Trial("m (run 2)", "running")}
    assert _run_name("m", unfinished, resumed=True) == "m (run 2)"  # resumed from a checkpoint
    assert _run_name("m", unfinished, resumed=False) == "m (run 3)"  # a new run never takes over one


def test_steps_evaluation_and_min_epochs(
    tiny_assets: Path, strong_run: tuple[Path, dict], tmp_path: Path
) -> None:
    _, weak = weak_run(tiny_assets, strong_run, tmp_path, 2, "strategy=steps")
    decisions = [entry for entry in weak["log_history"] if "trend/decision" in entry]
    assert weak["stopped_reason"] is not None
    # 20 steps an epoch, evaluated every 10 (the strong run: every epoch): never stopped before min_epochs=1.
    assert all(entry["trend/decision"] == "continue" for entry in decisions if entry["epoch"] < 1)
    assert 1 <= weak["epochs"] < 2


def test_auto_margin_is_the_predictors_error_bound() -> None:
    import math

    import pytest

    from hfselect.callbacks import ConvergenceTrendCallback
    from hfselect.core.trend import Curve, HeadroomTrendPredictor

    callback = ConvergenceTrendCallback(study="s", margin="auto")
    callback.predictor = HeadroomTrendPredictor([Curve((0.6, 0.8)), Curve((0.2, 0.6)), Curve((0.5, 0.9))])
    assert callback.margin_at(1) == pytest.approx(callback.predictor.error_bound(1))
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


def test_margin_and_predictor_default_to_selects() -> None:
    from hfselect.callbacks import ConvergenceTrendCallback
    from hfselect.config import DEFAULT_MARGIN, DEFAULT_PREDICTOR

    callback = ConvergenceTrendCallback(study="s")
    assert callback.margin == DEFAULT_MARGIN and callback.predictor_name == DEFAULT_PREDICTOR
    assert ConvergenceTrendCallback(study="s", metric="eval_loss").predictor_name == "current"


@pytest.mark.parametrize(
    ("metric_for_best_model", "greater_is_better", "metric", "greater"),
    [
        ("accuracy", True, "eval_accuracy", True),
        ("eval_f1", None, "eval_f1", True),  # already prefixed; direction from the name
        ("loss", None, "eval_loss", False),
        ("eval_perplexity", False, "eval_perplexity", False),
    ],
)
def test_no_metric_follows_the_trainer_arguments(
    metric_for_best_model: str, greater_is_better: bool | None, metric: str, greater: bool
) -> None:
    from hfselect.callbacks import ConvergenceTrendCallback

    callback = ConvergenceTrendCallback(study="s")
    args = SimpleNamespace(metric_for_best_model=metric_for_best_model, greater_is_better=greater_is_better)
    # A process other than the main one: the arguments are read, the repository is not opened.
    callback.on_train_begin(args, SimpleNamespace(is_world_process_zero=False), None, model=None)
    assert (callback.metric, callback.greater_is_better) == (metric, greater)
    assert callback.predictor_name == ("neighbours" if greater else "current")


def test_real_training_arguments_and_an_explicit_metric() -> None:
    from transformers import TrainingArguments

    from hfselect.callbacks import ConvergenceTrendCallback

    args = TrainingArguments(output_dir="unused", metric_for_best_model="loss", report_to=[])
    callback = ConvergenceTrendCallback(study="s")
    callback.on_train_begin(args, SimpleNamespace(is_world_process_zero=False), None, model=None)
    assert (callback.metric, callback.greater_is_better) == ("eval_loss", False)
    # A metric given to the callback wins over the arguments.
    given = ConvergenceTrendCallback(study="s", metric="eval_accuracy")
    given.on_train_begin(args, SimpleNamespace(is_world_process_zero=False), None, model=None)
    assert (given.metric, given.greater_is_better) == ("eval_accuracy", True)


def test_no_metric_anywhere_says_what_to_set() -> None:
    from hfselect.callbacks import ConvergenceTrendCallback

    callback = ConvergenceTrendCallback(study="s")
    args = SimpleNamespace(metric_for_best_model=None, greater_is_better=None)
    with pytest.raises(ValueError, match="metric_for_best_model") as raised:
        callback.on_train_begin(args, SimpleNamespace(is_world_process_zero=False), None, model=None)
    assert "metric='eval_accuracy'" in str(raised.value)


def test_callback_decides_with_the_halving_rule(tmp_path: Path) -> None:
    from hfselect.callbacks import ConvergenceTrendCallback
    from hfselect.core.halving import rivals_at, stop_decision
    from hfselect.core.trend import TrendPredictor

    with ModelRepository(tmp_path / "repo.sqlite") as repository:
        study = Study(repository, "s")
        study.record_point("rival", 1, 0.8, 0.9)
        for margin, score in ((0.0, 0.6), (0.05, 0.6), (0.0, 0.85)):
            callback = ConvergenceTrendCallback(study="s", repository=repository, metric="eval_accuracy")
            callback.margin, callback.model_id, callback.study = margin, f"run-{margin}-{score}", study
            callback.predictor = TrendPredictor()  # predicts the current score
            expected = stop_decision(
                score, 1.0, score + 0.26, rivals_at(study.curves(), callback.model_id, 1), margin
            )
            callback.predictor.predict = lambda s, e: s + 0.26  # type: ignore[method-assign]
            state = SimpleNamespace(epoch=1.0, global_step=10, log_history=[])
            assert callback._decide(state, {"eval_accuracy": score}) == [expected.stop, expected.reason]
        # 0.86 + 0 < 0.9: stopped by the paper's rule; with a margin of 0.05 it is spared.
        assert [t.state for m, t in sorted(study.trials().items())] == ["stopped", "running", "running"]
