"""``ConvergenceTrendCallback``: stop a Trainer run that its convergence trend predicts will end low.

Add it to existing Trainer code with one line::

    trainer = Trainer(..., callbacks=[ConvergenceTrendCallback(study="my-target")])

At each evaluation it records the run's score in the named study in the model repository (so runs
in other processes, and later runs, see it) and decides whether to stop, by one of two rules:

* **the trend rule**, when the repository has learning curves of the model on its benchmark
  datasets (or ``margin`` is a number): it predicts the run's final score from those curves
  (:mod:`hfselect.core.trend`) and stops a predicted low performer
  (:func:`hfselect.core.halving.stop_decision`, the rule fine selection uses too): its predicted
  final score plus ``margin`` is below the best predicted final score among the study's runs that
  were better at the same epoch, or it is below ``min_final_score``;
* **the study rule**, when there are no such curves (a new or starter repository, a model never
  benchmarked): it needs only the study's runs at the same epoch (:mod:`hfselect.core.study_rule`).
  A run is stopped when it is behind the best run there by more than any run of the study gained
  after that epoch, and more than its own recent rise would add. Once
  :data:`~hfselect.config.STUDY_TREND_MIN_RUNS` runs of the study have finished, their curves
  (learning curves of the target itself) give a trend too, and the trend rule may stop a run as well.

Which rule applies, and why, is logged once at train begin. The first run of a study has no rival
and is never stopped. Under ``accelerate launch`` only the main process reads and writes the
repository and decides; the decision is broadcast so every process stops together.

As transformers' ``EarlyStoppingCallback``, with no ``metric`` it follows
``TrainingArguments.metric_for_best_model`` (``eval_`` prefixed when it is not) and
``TrainingArguments.greater_is_better``.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from hfselect.config import DEFAULT_MARGIN, DEFAULT_PREDICTOR, STUDY_TREND_MIN_RUNS
from hfselect.core.halving import (
    StopDecision,
    candidate_predictors,
    predict_final,
    rivals_at,
    stop_decision,
)
from hfselect.core.study_rule import RunCurve, finished_curves, run_curves, study_decision
from hfselect.core.trend import TrendPredictor, make_predictor, resolve_margin
from hfselect.store import ModelRepository
from hfselect.store.studies import COMPLETED, RUNNING, STOPPED, Study, Trial
from hfselect.validation import check_study_name

logger = logging.getLogger(__name__)


class ConvergenceTrendCallback(TrainerCallback):
    """Halt predicted low performers early, against the other runs of a study.

    Args:
        study: the study's name: every run of one selection (one target) uses the same name.
        repository: a :class:`ModelRepository` or its path; default ``$HFSELECT_REPOSITORY`` or
            ``~/.cache/hfselect/repository.sqlite``. Its learning curves drive the prediction.
        model_id: the run's name in the study and in the repository; defaults to the trained
            model's ``name_or_path``, with `` (run N)`` added when the study already holds a run of
            that model (a run resumed from a checkpoint keeps the name it had).
        metric: the evaluation metric to follow, as Trainer logs it (``eval_accuracy``); default:
            ``args.metric_for_best_model`` (with the ``eval_`` prefix added when missing).
        greater_is_better: whether higher ``metric`` is better; default: ``args.greater_is_better``
            when ``metric`` comes from the arguments, else true unless ``metric`` ends in ``loss``.
            For a lower-is-better metric the benchmark trends (scores in [0, 1]) do not apply, so the
            prediction is the current value.
        min_epochs: never stop before this many epochs.
        margin: how far below the best prediction a run must be predicted to be stopped; ``"auto"``
            (the default, as ``hfselect select``'s): the model's predictor's error bound at that
            epoch (:meth:`~hfselect.core.trend.TrendPredictor.error_bound`, the 90th percentile of
            its held-out errors); without benchmark curves of the model, the study rule (see above)
            decides instead; ``0``: the paper's rule, with the current score as the prediction
            when there are no curves.
        min_final_score: also stop a run predicted to end below this score.
        predictor: ``"neighbours"`` (default), ``"headroom"``, ``"kmeans"`` (the paper's) or ``"current"``.
        push_to_hub: a Hub repo id: at the end of training the study's report card (curves,
            decisions, plot) is pushed there. A failed push is logged, not raised.
        hub_private: create that repo private.
    """

    def __init__(
        self,
        study: str,
        repository: ModelRepository | str | None = None,
        model_id: str | None = None,
        metric: str | None = None,
        greater_is_better: bool | None = None,
        min_epochs: float = 1,
        margin: float | str = DEFAULT_MARGIN,
        min_final_score: float | None = None,
        predictor: str = DEFAULT_PREDICTOR,
        push_to_hub: str | None = None,
        hub_private: bool = False,
    ) -> None:
        self.study_name = check_study_name("study", study)
        self._repository_arg = repository
        self.model_id = model_id
        self._model_id_given = model_id is not None
        self._model_name: str | None = model_id  # whose benchmark curves count
        self.metric = metric
        self.greater_is_better = greater_is_better
        if metric is not None and greater_is_better is None:
            self.greater_is_better = not metric.endswith("loss")  # Trainer's own convention
        self.min_epochs = min_epochs
        if isinstance(margin, str) and margin != "auto":
            raise ValueError(f"margin must be a number or 'auto', not {margin!r}")
        self.margin = margin
        self.min_final_score = min_final_score
        self._predictor_arg = predictor
        self.push_to_hub = push_to_hub
        self.hub_private = hub_private
        self.pushed_url: str | None = None
        self.repository: ModelRepository | None = None
        self.study: Study | None = None
        self.predictor: TrendPredictor | None = None
        # "trend" (benchmark curves, or a numeric margin) or "study" (the study rule); set at train begin.
        self.rule: str | None = None
        self.rule_message: str | None = None
        self._last_epoch = math.inf
        self.stopped_reason: str | None = None
        self.decisions: list[dict[str, Any]] = []
        self.overhead_s: list[float] = []
        self._started = time.perf_counter()
        self._last_score: float | None = None
        self._epoch_scores: dict[int, float] = {}

    @property
    def predictor_name(self) -> str:
        """The trend predictor in use: ``"current"`` for a lower-is-better metric (no trend applies)."""
        return self._predictor_arg if self.greater_is_better is not False else "current"

    def _follow_arguments(self, args: TrainingArguments) -> None:
        """With no ``metric`` given, take it and its direction from the Trainer's arguments."""
        if self.metric is not None:
            return
        metric = getattr(args, "metric_for_best_model", None)
        if metric is None:
            raise ValueError(
                "ConvergenceTrendCallback needs to know which metric to follow: pass "
                "metric='eval_accuracy' (any metric the evaluation logs) or set "
                "TrainingArguments(metric_for_best_model='accuracy', greater_is_better=True)"
            )
        self.metric = metric if metric.startswith("eval_") else f"eval_{metric}"
        greater = getattr(args, "greater_is_better", None)
        self.greater_is_better = (not self.metric.endswith("loss")) if greater is None else bool(greater)

    # -- Trainer events -------------------------------------------------------------------------

    def on_train_begin(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        model: Any = None,
        **kwargs: Any,
    ) -> None:
        """Open the study and fit the model's trend predictor (main process only).

        Raises:
            ValueError: no ``metric`` was given and ``args.metric_for_best_model`` is not set.
        """
        self._follow_arguments(args)
        if self._model_name is None:
            self._model_name = getattr(model, "name_or_path", None) or getattr(
                getattr(model, "config", None), "_name_or_path", "model"
            )
        self.model_id = self.model_id or self._model_name
        self._started = time.perf_counter()
        self._last_epoch = float(
            getattr(state, "num_train_epochs", 0) or getattr(args, "num_train_epochs", 0)
        )
        if not state.is_world_process_zero:
            return
        if isinstance(self._repository_arg, ModelRepository):
            self.repository = self._repository_arg
        else:
            self.repository = ModelRepository(self._repository_arg)
        self.study = Study(self.repository, self.study_name)
        trials = self.study.trials()
        if not self._model_id_given:
            self.model_id = _run_name(self._model_name, trials, resumed=bool(state.epoch))
        self.predictor = candidate_predictors(
            self.repository.curves(), [self._model_name], self.predictor_name
        )[self._model_name]
        self._choose_rule(trials)
        self.study.set_trial(Trial(self.model_id, RUNNING, epochs_trained=state.epoch or 0.0))

    def _choose_rule(self, trials: dict[str, Trial]) -> None:
        """Trend rule or study rule, and why: said once, at train begin."""
        finished = sorted(name for name, trial in trials.items() if trial.state == COMPLETED)
        others = [name for name in trials if name != self.model_id]
        if self.predictor is not None and (self.predictor.curves or self.margin != "auto"):
            self.rule = "trend"
            source = (
                f"{len(self.predictor.curves)} benchmark learning curves" if self.predictor.curves else ""
            )
            self.rule_message = f"ConvergenceTrendCallback: the trend rule decides for {self.model_id} " + (
                f"({source}, margin {self.margin!r})" if source else f"(margin {self.margin!r}, no curves)"
            )
        else:
            self.rule = "study"
            curves = finished_curves(run_curves(self._study_points()), finished)
            if len(curves) >= STUDY_TREND_MIN_RUNS:
                # The study's finished runs are learning curves of the target itself.
                self.predictor = make_predictor(self.predictor_name, None, {"study": curves})
                trend = f"and the trend of the study's {len(curves)} finished runs"
            else:
                trend = (
                    f"the trend of the study's own finished runs joins once {STUDY_TREND_MIN_RUNS} "
                    f"have finished ({len(curves)} so far)"
                )
            self.rule_message = (
                f"ConvergenceTrendCallback: the repository has no benchmark learning curves of "
                f"{self._model_name}, so {self.model_id} is halted on the study rule: stopped when it is "
                f"behind the study's best run at the same epoch by more than any run gained after that "
                f"epoch and more than its own rise would add; "
                + trend
                + ("" if others else "; it is the study's first run, so it cannot be stopped")
            )
        # Without curves the user should know: the study rule is weaker than a benchmarked trend.
        (logger.warning if self.rule == "study" else logger.info)(self.rule_message)

    def _study_points(self) -> list[tuple[str, float, float, float | None]]:
        """The study's recorded evaluations as ``(run, epoch, score, predicted_final)``."""
        assert self.study is not None
        return list(self.study.curves().itertuples(index=False, name=None))

    def on_evaluate(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        metrics: dict[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        """Record the evaluation, predict the final score, and decide whether to stop."""
        started = time.perf_counter()
        decision: list[Any] = [False, None]
        if state.is_world_process_zero:
            decision = self._decide(state, metrics or {})
        decision = _broadcast(decision)
        if decision[0]:
            control.should_training_stop = True
            self.stopped_reason = decision[1]
        self.overhead_s.append(time.perf_counter() - started)

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """Mark the run completed (when it was not stopped) with its last score; push the report if asked."""
        if not state.is_world_process_zero or self.study is None:
            return
        if self.stopped_reason is None:
            self._complete(state)
        if self.push_to_hub:
            self._push_report()

    def _push_report(self) -> None:
        from hfselect.cards import push_study_report
        from hfselect.errors import HfSelectError

        try:
            self.pushed_url = push_study_report(
                self.repository,
                self.study_name,
                self.push_to_hub,
                metric=self.metric,
                private=self.hub_private,
            )
            logger.info("pushed the study report to %s", self.pushed_url)
        except HfSelectError as error:
            # Training is done and its results are saved; a failed upload must not turn that into a crash.
            logger.warning("could not push the study report: %s", error)

    def _complete(self, state: TrainerState) -> None:
        assert self.study is not None
        self.study.set_trial(
            Trial(
                self.model_id,
                COMPLETED,
                epochs_trained=state.epoch,
                final_score=self._last_score,
                predicted_final=self._last_score,
                wall_time_s=time.perf_counter() - self._started,
            )
        )

    # -- the decision ---------------------------------------------------------------------------

    def _predict(self, score: float, epoch: float) -> float:
        """The predicted final score (:func:`hfselect.core.halving.predict_final`): from the run's whole
        curve at the end of an epoch when every earlier epoch was evaluated in this process, else
        from the score alone."""
        assert self.predictor is not None
        predicted = predict_final(self.predictor, score, epoch, self._epoch_scores)
        whole = round(epoch)
        if whole >= 1 and abs(epoch - whole) < 1e-6:
            self._epoch_scores[whole] = score
        return predicted

    def _decide(self, state: TrainerState, metrics: dict[str, float]) -> list[Any]:
        if self.metric not in metrics:
            available = ", ".join(sorted(key for key in metrics if key.startswith("eval_")))
            logger.warning(
                "ConvergenceTrendCallback: no %r in the evaluation metrics (%s)", self.metric, available
            )
            return [False, None]
        assert self.study is not None and self.predictor is not None
        epoch = float(state.epoch or 0.0)
        raw = float(metrics[self.metric])
        self._last_score = raw
        score = raw if self.greater_is_better else -raw
        predicted = self._predict(score, epoch) if self.greater_is_better else score
        self.study.record_point(self.model_id, epoch, score, predicted)

        reason = None
        rival = None
        if epoch + 1e-9 >= self.min_epochs:
            decision = self._stop_decision(score, epoch, predicted)
            reason, rival = decision.reason, decision.rival
        record = {
            "epoch": epoch,
            "step": state.global_step,
            "trend/score": raw,
            "trend/predicted_final": predicted,
            "trend/decision": "stop" if reason else "continue",
            "trend/rule": self.rule,
        }
        if rival is not None:
            record["trend/rival"], record["trend/rival_predicted_final"] = (
                rival.model_id,
                rival.predicted_final,
            )
            record["trend/rival_score"] = rival.score
        if reason:
            record["trend/reason"] = reason
        self.decisions.append(record)
        state.log_history.append(dict(record))  # lands in trainer_state.json with the Trainer's own logs
        logger.info(
            "%s at epoch %g: %s", self.model_id, epoch, reason or f"continue (predicted {predicted:.4f})"
        )
        if reason:
            self.study.set_trial(
                Trial(
                    self.model_id,
                    STOPPED,
                    epochs_trained=epoch,
                    final_score=raw,
                    predicted_final=predicted,
                    wall_time_s=time.perf_counter() - self._started,
                    reason=reason,
                    details=record,
                )
            )
        else:
            self.study.set_trial(
                Trial(self.model_id, RUNNING, epochs_trained=epoch, predicted_final=predicted)
            )
        return [reason is not None, reason]

    def _stop_decision(self, score: float, epoch: float, predicted: float) -> StopDecision:
        """The rule chosen at train begin, on the study as it is now."""
        assert self.study is not None
        if self.rule == "study":
            runs = run_curves(self._study_points())
            own = runs.pop(self.model_id, RunCurve((), ()))
            earlier = [i for i, e in enumerate(own.epochs) if e < epoch - 1e-9]
            own = RunCurve(
                tuple(own.epochs[i] for i in earlier),
                tuple(own.scores[i] for i in earlier),
                tuple(own.predicted[i] for i in earlier),
            )
            return study_decision(
                score,
                epoch,
                predicted,
                own,
                runs,
                self._last_epoch,
                margin=self.margin_at(epoch),
                min_final_score=self.min_final_score,
            )
        return stop_decision(
            score,
            epoch,
            predicted,
            rivals_at(self.study.curves(), self.model_id, epoch),
            self.margin_at(epoch),
            min_final_score=self.min_final_score,
        )

    def margin_at(self, epoch: float) -> float:
        """The margin in force at ``epoch`` (``"auto"`` resolved; NaN: unknown)."""
        # A lower-is-better metric has no trend (see greater_is_better): no error to go by.
        return resolve_margin(
            self.margin, self.predictor if self.greater_is_better is not False else None, epoch
        )


def _run_name(model_name: str, trials: dict[str, Trial], *, resumed: bool) -> str:
    """The run's name in the study: the model's, with `` (run N)`` for the model's second run on.

    A run resumed from a checkpoint takes back the model's latest unfinished run; a new run never
    takes over a name that already holds a run, so one model trained twice (another learning
    rate, say) gives two rivals.
    """
    names = [model_name, *(f"{model_name} (run {n})" for n in range(2, len(trials) + 2))]
    taken = [name for name in names if name in trials]
    if resumed and taken and trials[taken[-1]].state == RUNNING:
        return taken[-1]
    return next(name for name in names if name not in trials)


def _broadcast(decision: list[Any]) -> list[Any]:
    """Send the main process's decision to every process, so all stop at the same step."""
    from accelerate import PartialState

    state = PartialState()
    if state.num_processes <= 1:
        return decision
    from accelerate.utils import broadcast_object_list

    return broadcast_object_list(decision, from_process=0)
