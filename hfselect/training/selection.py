"""Fine selection: successive halving over the recalled candidates, guided by convergence trends.

Synchronous schedule (the paper's): in each round every surviving candidate trains up to the
round's epoch (resuming from its own checkpoint, optimizer and scheduler included, so the
learning-rate schedule is the full budget's), then :func:`hfselect.core.halving.halving_round` drops
the worse half (by the sum of each candidate's rank by current score and by predicted final score)
and every predicted low performer. When one candidate is left it is trained to the full budget and
saved. The paper ends a round after every epoch; hfselect ends them at
:func:`~hfselect.core.halving.halving_rungs` (epochs 1, 2, 4 of a 5-epoch budget; 3, 6, 12, 24, 48
of a 50-epoch one), so that a long budget is not decided on its first epoch.

Asynchronous schedule: candidates train one after another, best recalled first, each with the
:class:`~hfselect.callbacks.ConvergenceTrendCallback`, which halts it against the study's earlier
runs: the way the callback works in user code.

Both schedules, the callback and the replay benchmark decide with one rule and one predictor pool
(:mod:`hfselect.core.halving`: the rule, and where hfselect departs from the paper: the margin).

Everything a round decides is stored in the study (repository tables ``study_*``) and each epoch
leaves a checkpoint, so an interrupted selection resumes where it stopped: a candidate continues
from its latest checkpoint, and a decision is recomputed from the recorded scores (the same ones).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hfselect.config import (
    DEFAULT_HALVING_ORDER,
    DEFAULT_MARGIN,
    DEFAULT_OUTPUT_DIR,
    DEFAULT_PREDICTOR,
    DEFAULT_REDUCTION_FACTOR,
    DEFAULT_SCHEDULE,
    HALVING_ORDERS,
    HalvingOrder,
)
from hfselect.core.halving import (
    candidate_predictors,
    decision_rounds,
    halving_round,
    halving_rungs,
    predict_final,
    successive_halving_epochs,
)
from hfselect.core.trend import PREDICTORS, TrendPredictor, resolve_margin
from hfselect.data import ClassificationData
from hfselect.models import model_key
from hfselect.store import ModelRepository
from hfselect.store.studies import COMPLETED, RUNNING, STOPPED, Study, Trial
from hfselect.training.bench import BenchConfig, build_trainer, check_finite_loss, load_data
from hfselect.training.checkpoints import (
    check_checkpoint_folder,
    checkpoint_folder_name,
    checkpoint_state,
    latest_checkpoint,
    make_checkpoint_folder,
    remove_checkpoint_folder,
)
from hfselect.validation import check_choice, check_int, check_margin, check_study_name

logger = logging.getLogger(__name__)

SCHEDULES = ("sync", "async")


@dataclass
class SelectConfig(BenchConfig):
    """Fine-selection options on top of the fine-tuning protocol."""

    schedule: str = DEFAULT_SCHEDULE
    predictor: str = DEFAULT_PREDICTOR
    # "auto": each candidate's own predictor's error bound at that epoch (trend.error_bound, the
    # 90th percentile of its held-out errors), so a noisy early prediction cannot call a late
    # bloomer a low performer.
    margin: float | str = DEFAULT_MARGIN
    # How a synchronous round orders the candidates before dropping the worse half
    # (hfselect.core.halving.halving_order): "rank_sum", "predicted" (the paper's replay) or "score".
    halving_order: HalvingOrder = DEFAULT_HALVING_ORDER
    # A synchronous round keeps the best 1/reduction_factor of its candidates (2: the better half).
    reduction_factor: int = DEFAULT_REDUCTION_FACTOR
    keep_checkpoints: bool = False
    output_dir: str = DEFAULT_OUTPUT_DIR
    study: str | None = None

    def __post_init__(self) -> None:
        """Reject a protocol :class:`BenchConfig` rejects, and any selection option out of its range.

        Here, not when a round uses it: ``margin="big"`` used to fail after the recall's proxies, and
        ``schedule="fast"`` after the study was stored as running.
        """
        super().__post_init__()
        check_choice("schedule", self.schedule, SCHEDULES)
        check_choice("predictor", self.predictor, PREDICTORS)
        check_margin("margin", self.margin)
        check_choice("halving_order", self.halving_order, HALVING_ORDERS)
        check_int("reduction_factor", self.reduction_factor, minimum=2)
        if self.study is not None:
            check_study_name("study", self.study)


@dataclass
class CandidateReport:
    """What fine selection did with one candidate."""

    model_id: str
    spec: str
    epochs: int = 0
    seconds: float = 0.0
    curve: list[float] = field(default_factory=list)
    predicted_final: list[float] = field(default_factory=list)
    state: str = RUNNING
    reason: str | None = None
    stopped_at_round: int | None = None


@dataclass
class SelectionResult:
    """The selected model, every candidate's curve and decision, and the cost against the baselines."""

    study: str
    target: str
    selected_model: str | None
    selected_score: float | None
    test_score: float | None
    saved_to: str | None
    candidates: list[CandidateReport]
    rounds: list[dict[str, Any]]
    epochs_spent: int
    brute_force_epochs: int
    successive_halving_epochs: int
    wall_time_s: float
    # Brute force over every model of the repository, not just the recalled candidates: the cost
    # the recall saves (None when the caller did not say how many models the repository holds).
    repository_models: int | None = None
    brute_force_repository_epochs: int | None = None
    # A budgeted selection's account (hfselect.training.budget_selection): the budget, the plan,
    # what was spent, how the plan shrank, and the selected (model, learning rate); None otherwise.
    budget: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view (what ``report.json`` holds)."""
        return asdict(self)


def default_study_name(target: str, candidates: Sequence[str], config: BenchConfig) -> str:
    """A study name fixed by the target, the candidates and the protocol, so a rerun resumes it."""
    text = json.dumps([target, sorted(candidates), config.protocol.key], sort_keys=True)
    return f"select-{hashlib.sha1(text.encode()).hexdigest()[:10]}"


class _StopAtEpoch:
    """A Trainer callback ending the run after a given epoch (one round of the synchronous schedule)."""

    def __new__(cls, epoch: int) -> Any:
        from transformers import TrainerCallback

        class Callback(TrainerCallback):
            def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                if state.epoch is not None and state.epoch >= epoch - 1e-6:
                    control.should_training_stop = True  # evaluation and the checkpoint still happen

        return Callback()


def train_candidate(
    spec: str,
    data: ClassificationData,
    config: BenchConfig,
    directory: Path,
    until_epoch: int,
    callbacks: Sequence[Any] = (),
) -> list[tuple[int, float]]:
    """Train a candidate to ``until_epoch`` epochs, checkpointing in ``directory`` and resuming from its latest checkpoint.

    Returns the ``(epoch, validation score)`` of every epoch this run trained.
    """
    from transformers.trainer_utils import get_last_checkpoint

    make_checkpoint_folder(directory)
    trainer, _ = build_trainer(
        spec,
        data,
        config,
        output_dir=str(directory),
        callbacks=[_StopAtEpoch(until_epoch), *callbacks],
        save_checkpoints=True,
    )
    check_finite_loss(trainer.train(resume_from_checkpoint=get_last_checkpoint(str(directory))))
    return [
        (round(entry["epoch"]), float(entry["eval_score"]))
        for entry in trainer.state.log_history
        if "eval_score" in entry
    ]


def save_selected_model(
    directory: Path, data: ClassificationData, config: BenchConfig, output: Path
) -> tuple[float | None, str | None]:
    """Evaluate the winner's latest checkpoint in ``directory`` on the test split and save it.

    The checkpoint is a model folder (weights, config, tokenizer); it is saved as
    ``output/selected-model``. Returns ``(test score, where it was saved)``, both None without a
    checkpoint.
    """
    last = latest_checkpoint(directory)
    if last is None:
        return None, None
    trainer, encoded = build_trainer(last, data, config, output_dir=str(directory))
    test_score = float(trainer.evaluate(encoded["test"], metric_key_prefix="test")["test_score"])
    saved_to = str(output / "selected-model")
    trainer.save_model(saved_to)
    return test_score, saved_to


class FineSelection:
    """Runs fine selection for one target over given candidates (see the module docstring).

    Args:
        repository: holds the benchmark curves (for predictions) and the study.
        target: the target dataset (Hub id, ``ID:CONFIG`` or local path).
        candidates: model specs, best recalled first.
        config: the protocol (``epochs`` is the full budget) and selection options.
        on_event: called with a short line for each round and decision (the CLI prints them).
        repository_models: how many models the candidates were recalled from, for the cost of
            brute force over all of them.
    """

    def __init__(
        self,
        repository: ModelRepository,
        target: str,
        candidates: Sequence[str],
        config: SelectConfig,
        *,
        on_event: Callable[[str], None] | None = None,
        repository_models: int | None = None,
    ) -> None:
        if not candidates:
            raise ValueError("fine selection needs at least one candidate")
        self.repository = repository
        self.target = target
        self.specs = {model_key(spec): spec for spec in candidates}
        self.config = config
        self.on_event = on_event or (lambda line: logger.info("%s", line))
        self.repository_models = repository_models
        self.study_name = config.study or default_study_name(target, list(self.specs), config)
        self.output = Path(config.output_dir)
        for model_id in self.specs:  # before the study is stored: a refused run leaves nothing behind
            check_checkpoint_folder(self.checkpoint_dir(model_id))
        self.study = Study(
            repository,
            self.study_name,
            target=target,
            config={
                "candidates": list(self.specs),
                "protocol": config.protocol.key,
                "schedule": config.schedule,
            },
        )
        self.reports = {model_id: CandidateReport(model_id, spec) for model_id, spec in self.specs.items()}
        self._data: ClassificationData | None = None
        self._predictors: dict[str, TrendPredictor] = {}

    # -- helpers --------------------------------------------------------------------------------

    @property
    def data(self) -> ClassificationData:
        """The target, loaded once."""
        if self._data is None:
            self._data = load_data(self.target, self.config)
        return self._data

    def checkpoint_root(self) -> Path:
        """The folder every study's checkpoints live under; nothing outside it is ever removed."""
        return self.output / "checkpoints"

    def checkpoint_dir(self, model_id: str) -> Path:
        """Where a candidate's checkpoints live (per study: another selection never resumes them)."""
        return self.checkpoint_root() / self.study_name / checkpoint_folder_name(model_id)

    def _remove_checkpoints(self, model_id: str) -> None:
        if not self.config.keep_checkpoints:
            remove_checkpoint_folder(self.checkpoint_dir(model_id), inside=self.checkpoint_root())

    def predictor(self, model_id: str) -> TrendPredictor:
        """The candidate's trend predictor, fitted on its benchmark curves."""
        if model_id not in self._predictors:
            self._predictors.update(
                candidate_predictors(self.repository.curves(), self.specs, self.config.predictor)
            )
        return self._predictors[model_id]

    def margins(self, alive: Sequence[str], epoch: int) -> dict[str, float]:
        """Each candidate's low-performer margin at ``epoch`` (see :func:`hfselect.core.trend.resolve_margin`)."""
        return {
            model_id: resolve_margin(self.config.margin, self.predictor(model_id), epoch)
            for model_id in alive
        }

    def _scores(self, model_id: str) -> dict[int, float]:
        curves = self.study.curves()
        frame = curves[curves["model_id"] == model_id]
        return {
            round(epoch): float(score) for epoch, score in zip(frame["epoch"], frame["score"], strict=True)
        }

    def last_checkpoint(self, model_id: str) -> str | None:
        """The candidate's latest checkpoint folder, or None before its first epoch."""
        return latest_checkpoint(self.checkpoint_dir(model_id))

    def _train(self, model_id: str, until_epoch: int, callbacks: Sequence[Any] = ()) -> None:
        """Train a candidate up to ``until_epoch`` epochs, resuming from its latest checkpoint."""
        started = time.perf_counter()
        epoch_scores = train_candidate(
            self.specs[model_id],
            self.data,
            self.config,
            self.checkpoint_dir(model_id),
            until_epoch,
            callbacks,
        )
        self._record_training(model_id, epoch_scores, time.perf_counter() - started)

    def _record_training(self, model_id: str, epoch_scores: list[tuple[int, float]], seconds: float) -> None:
        """Put a training run's epoch scores, their predictions and the candidate's progress in the study."""
        self._record_points(model_id, dict(epoch_scores))
        previous = self.study.trials().get(model_id)
        seconds = ((previous.wall_time_s if previous else None) or 0.0) + seconds
        self.reports[model_id].seconds = seconds
        # Keep a decision the callback made during this run (async schedule); record the progress.
        state = previous.state if previous is not None and previous.state == STOPPED else RUNNING
        self.study.set_trial(
            Trial(
                model_id,
                state,
                epochs_trained=max(epoch for epoch, _ in epoch_scores),
                wall_time_s=seconds,
                reason=previous.reason if state == STOPPED else None,
                details=previous.details if state == STOPPED else None,
            )
        )

    def _epochs_done(self, model_id: str) -> int:
        """Epochs in the candidate's latest checkpoint; their scores are put in the study if missing.

        A run killed after saving a checkpoint but before its scores reached the study would
        otherwise be resumed with no score for that epoch.
        """
        last = self.last_checkpoint(model_id)
        if last is None:
            return 0
        state = checkpoint_state(last)
        recorded = self._scores(model_id)
        missing = {
            round(entry.get("epoch") or 0): float(entry["eval_score"])
            for entry in state.get("log_history", [])
            if "eval_score" in entry and round(entry.get("epoch") or 0) not in recorded
        }
        self._record_points(model_id, missing)
        return round(state.get("epoch") or 0)

    def _record_points(self, model_id: str, points: Mapping[int, float]) -> None:
        """Put a candidate's new (epoch -> score) points in the study, each with its predicted final score.

        The prediction sees the candidate's whole curve up to that epoch when every earlier epoch
        is known (:meth:`~hfselect.core.trend.TrendPredictor.predict_curve`), else the score alone.
        """
        known = {**self._scores(model_id), **points}
        predictor = self.predictor(model_id)
        for epoch, score in sorted(points.items()):
            self.study.record_point(model_id, epoch, score, predict_final(predictor, score, epoch, known))

    def _drop(self, model_id: str, round_number: int, reason: str) -> None:
        scores = self._scores(model_id)
        epoch = max(scores) if scores else 0
        previous = self.study.trials().get(model_id)
        self.study.set_trial(
            Trial(
                model_id,
                STOPPED,
                epochs_trained=epoch,
                final_score=scores.get(epoch),
                wall_time_s=previous.wall_time_s if previous else None,
                reason=reason,
            )
        )
        self._remove_checkpoints(model_id)
        self.on_event(f"round {round_number}: dropped {model_id}: {reason}")

    # -- schedules ------------------------------------------------------------------------------

    def run(self) -> SelectionResult:
        """Run (or resume) the selection and return its result.

        The result's wall time is the study's: the runs that did its work, an interrupted one
        included. Rerunning a finished study redoes no training and reports the same wall time.
        """
        finished_before = self.study.info["status"] == COMPLETED and self.study.wall_time_s is not None
        started = time.perf_counter()
        try:
            winner = self._run_async() if self.config.schedule == "async" else self._run_sync()
            result = self._finish(winner)
        finally:
            if not finished_before:
                self.study.add_wall_time(time.perf_counter() - started)
        result.wall_time_s = self.study.wall_time_s or 0.0
        return result

    def _alive(self) -> list[str]:
        trials = self.study.trials()
        return [
            model_id
            for model_id in self.specs
            if trials.get(model_id, Trial(model_id, RUNNING)).state != STOPPED
        ]

    def _run_sync(self) -> str:
        budget = self.config.epochs
        for round_number in halving_rungs(budget):  # a round ends at each rung epoch
            alive = self._alive()
            if len(alive) <= 1:
                break
            self._train_round(round_number, alive)
            self._decide_round(round_number, alive)
        alive = self._alive()
        ranked = sorted(alive, key=lambda m: -self._latest_prediction(m))
        winner = ranked[0]
        for loser in ranked[1:]:
            self._drop(loser, budget, "lower predicted final score when the budget ran out")
        if self._epochs_done(winner) < budget:
            self.on_event(f"training the last candidate {winner} to the full budget ({budget} epochs)")
            self._train(winner, budget)
        return winner

    def _train_round(self, round_number: int, alive: list[str]) -> None:
        """Train every surviving candidate not yet there to epoch ``round_number``, one after another."""
        for model_id in alive:
            if self._epochs_done(model_id) < round_number:
                self.on_event(f"round {round_number}: training {model_id} to epoch {round_number}")
                self._train(model_id, round_number)

    def _latest_prediction(self, model_id: str) -> float:
        curves = self.study.curves()
        frame = curves[curves["model_id"] == model_id]
        return float(frame.sort_values("epoch")["predicted_final"].iloc[-1]) if len(frame) else -math.inf

    def _decide_round(self, round_number: int, alive: list[str]) -> None:
        """Drop what :func:`halving_round` decides from the scores recorded at this round."""
        curves = self.study.curves()
        at_round = curves[(curves["epoch"].round() == round_number) & curves["model_id"].isin(alive)]
        score = dict(zip(at_round["model_id"], at_round["score"], strict=True))
        predicted = dict(zip(at_round["model_id"], at_round["predicted_final"], strict=True))
        trials = self.study.trials()
        for model_id, reason in halving_round(
            alive,
            score,
            predicted,
            round_number,
            self.margins(alive, round_number),
            order_by=self.config.halving_order,
            reduction_factor=self.config.reduction_factor,
        ).items():
            if trials.get(model_id, Trial(model_id, RUNNING)).state != STOPPED:
                self._drop(model_id, round_number, reason)

    def _rounds_from_study(self) -> list[dict[str, Any]]:
        """Each epoch's evaluations and decisions, rebuilt from the study (so a resumed run reports them all)."""
        curves = self.study.curves()
        stops = {
            model_id: (round(trial.epochs_trained or 0), trial.reason)
            for model_id, trial in self.study.trials().items()
            if trial.state == STOPPED
        }
        return decision_rounds(curves, curves["epoch"].map(round), stops)

    def _run_async(self) -> str:
        from hfselect.callbacks import ConvergenceTrendCallback

        for model_id in self.specs:
            trial = self.study.trials().get(model_id)
            if trial is not None and trial.state in (STOPPED, COMPLETED):
                continue
            callback = ConvergenceTrendCallback(
                study=self.study_name,
                repository=self.repository,
                model_id=model_id,
                metric="eval_score",
                margin=self.config.margin,
                predictor=self.config.predictor,
            )
            self.on_event(f"training {model_id} (halted early if its trend predicts a low final score)")
            self._train(model_id, self.config.epochs, callbacks=[callback])
            if callback.stopped_reason:
                self._remove_checkpoints(model_id)
                self.on_event(f"stopped {model_id}: {callback.stopped_reason}")
            else:
                trained = self.study.trials().get(model_id)
                self.study.set_trial(
                    Trial(
                        model_id,
                        COMPLETED,
                        epochs_trained=self.config.epochs,
                        wall_time_s=trained.wall_time_s if trained else None,
                    )
                )
        finished = [m for m, t in self.study.trials().items() if t.state == COMPLETED and m in self.specs]
        pool = finished or list(self.specs)
        return max(pool, key=lambda m: self._scores(m).get(self.config.epochs, -math.inf))

    # -- result ---------------------------------------------------------------------------------

    def _finish(self, winner: str) -> SelectionResult:
        scores = self._scores(winner)
        test_score, saved_to = save_selected_model(
            self.checkpoint_dir(winner), self.data, self.config, self.output
        )
        previous = self.study.trials().get(winner)
        self.study.set_trial(
            Trial(
                winner,
                COMPLETED,
                epochs_trained=max(scores, default=0),
                final_score=scores.get(max(scores, default=0)),
                wall_time_s=previous.wall_time_s if previous else None,  # a rerun reports it again
            )
        )
        self.study.set_status("completed")
        trials = self.study.trials()
        curves = self.study.curves()
        for model_id, report in self.reports.items():
            frame = curves[curves["model_id"] == model_id].sort_values("epoch")
            report.curve = [float(v) for v in frame["score"]]
            report.predicted_final = [float(v) for v in frame["predicted_final"]]
            report.epochs = len(report.curve)
            trial = trials.get(model_id)
            if trial is not None:
                report.state, report.reason = trial.state, trial.reason
                report.seconds = max(report.seconds, trial.wall_time_s or 0.0)
        final_epoch = max(scores, default=0)
        return SelectionResult(
            study=self.study_name,
            target=self.target,
            selected_model=winner,
            selected_score=scores.get(final_epoch),
            test_score=test_score,
            saved_to=saved_to,
            candidates=list(self.reports.values()),
            rounds=self._rounds_from_study(),
            epochs_spent=sum(report.epochs for report in self.reports.values()),
            brute_force_epochs=len(self.specs) * self.config.epochs,
            # Plain successive halving with this selection's rungs and reduction factor.
            successive_halving_epochs=successive_halving_epochs(
                len(self.specs),
                self.config.epochs,
                rungs=halving_rungs(self.config.epochs) if self.config.schedule == "sync" else None,
                reduction_factor=self.config.reduction_factor,
            ),
            wall_time_s=0.0,  # run() sets the study's total
            repository_models=self.repository_models,
            brute_force_repository_epochs=None
            if self.repository_models is None
            else self.repository_models * self.config.epochs,
        )
