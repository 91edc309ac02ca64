"""Budget-first fine selection, live: ``hfselect select --budget 4h``.

The user gives a budget (seconds of wall time, or candidate-epochs); hfselect spends it on recall's
candidates, each a model or a (model, learning rate) pair, with the plan and the loop of
:mod:`hfselect.core.budget`. This module supplies what the plan needs from the repository and the
target, and trains behind the loop's :class:`~hfselect.core.budget.CandidateTrainer`:

* each candidate's seconds per epoch on the target: the median of its model's benchmark timings
  (``duration_s / epochs / train examples``) times the target's training examples; a model without
  timings takes the median of every timed model; a repository with none takes the first epoch of
  the top candidate, measured before planning;
* how much recall's ranking is worth: :func:`~hfselect.core.budget.evidence_best_ranks` on the
  repository's performance matrix;
* the pairs' order: a model's recall rank plus its learning rates' rank on the benchmark datasets
  (the one that did best there first), ties to the better recalled model.

Every step is recorded in a study of the repository (as fine selection's), each candidate trains
in its own checkpoint folder, and the winner is trained to the protocol's full length and saved.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from hfselect.core.budget import (
    BudgetCandidate,
    BudgetOutcome,
    BudgetPlan,
    BudgetTooSmallError,
    TrainingStep,
    evidence_best_ranks,
    format_seconds,
    plan_budget,
    run_budget,
)
from hfselect.core.halving import (
    candidate_predictors,
    decision_rounds,
    predict_final,
    successive_halving_epochs,
)
from hfselect.data import ClassificationData
from hfselect.errors import HfSelectError
from hfselect.store import ModelRepository
from hfselect.store.studies import COMPLETED, RUNNING, STOPPED, Study, Trial
from hfselect.training.bench import load_data
from hfselect.training.checkpoints import (
    checkpoint_folder_name,
    checkpoint_state,
    latest_checkpoint,
    remove_checkpoint_folder,
)
from hfselect.training.selection import (
    CandidateReport,
    SelectConfig,
    SelectionResult,
    save_selected_model,
    train_candidate,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Candidate:
    """One candidate of a budgeted selection: a model, trained at one learning rate."""

    model_id: str
    spec: str  # what to load
    learning_rate: float
    name: str  # unique in the selection: the model id, with ``@lr=...`` when several rates are tried

    @staticmethod
    def pairs(
        ranked_models: Sequence[tuple[str, str]],
        learning_rates: Sequence[float],
        lr_ranks: dict[str, dict[float, int]],
    ) -> list[Candidate]:
        """Every (model, learning rate) pair, best first (see the module docstring).

        ``ranked_models`` are ``(model id, spec)`` best recalled first; ``lr_ranks`` gives, per
        model, each learning rate's place on the benchmark datasets (0 best; missing: as given).
        """
        several = len(learning_rates) > 1
        pairs = []
        for model_rank, (model_id, spec) in enumerate(ranked_models):
            for given, rate in enumerate(learning_rates):
                place = lr_ranks.get(model_id, {}).get(rate, given)
                name = f"{model_id}@lr={rate:g}" if several else model_id
                pairs.append((model_rank + place, model_rank, given, Candidate(model_id, spec, rate, name)))
        return [candidate for *_, candidate in sorted(pairs, key=lambda row: row[:3])]


def learning_rate_ranks(
    repository: ModelRepository, learning_rates: Sequence[float]
) -> dict[str, dict[float, int]]:
    """Per model, the given learning rates ordered by its mean final score under each on the benchmark datasets."""
    results = repository.results()
    if results.empty or len(learning_rates) < 2:
        return {}
    results = results[results["learning_rate"].isin(list(learning_rates))]
    ranks: dict[str, dict[float, int]] = {}
    for model_id, frame in results.groupby("model_id"):
        # The rate a model did best with, averaged over the datasets it has results on.
        by_rate = frame.groupby("learning_rate")["score"].mean().sort_values(ascending=False)
        ranks[str(model_id)] = {float(rate): place for place, rate in enumerate(by_rate.index)}
    return ranks


def epoch_seconds_per_example(repository: ModelRepository) -> dict[str, float]:
    """Each benchmarked model's median seconds per epoch and per training example.

    A result's training examples are its dataset's training split, or the protocol's
    ``train_samples`` when that is smaller.
    """
    results = repository.results()
    if results.empty:
        return {}
    sizes = {row["name"]: row["train_size"] for row in repository.datasets()}
    examples = pd.to_numeric(results["dataset"].map(sizes), errors="coerce")
    capped = pd.to_numeric(results["train_samples"], errors="coerce")
    examples = examples.where(capped.isna(), capped.clip(upper=examples))
    per_example = pd.to_numeric(results["duration_s"], errors="coerce") / results["epochs"] / examples
    usable = per_example.notna() & (per_example > 0) & (per_example != float("inf"))
    return {
        str(model): float(values.median())
        for model, values in per_example[usable].groupby(results["model_id"][usable])
    }


class BudgetSelection:
    """A budgeted selection of one target over recall's candidates (see the module docstring).

    Args:
        repository: the benchmark results (timings, curves) and the study.
        target: the target dataset.
        candidates: the candidates, best first (:meth:`Candidate.pairs`).
        config: the protocol (``epochs``: the winner's full length) and selection options.
        budget_seconds: what the selection may spend, counted from ``started``.
        started: ``time.perf_counter()`` when the command started (recall's proxies count too).
        budget_epochs: a budget in candidate-epochs instead (every epoch counts 1, timings unused).
        on_event: called with each line worth telling.
    """

    def __init__(
        self,
        repository: ModelRepository,
        target: str,
        candidates: Sequence[Candidate],
        config: SelectConfig,
        *,
        budget_seconds: float | None = None,
        started: float | None = None,
        budget_epochs: int | None = None,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        if (budget_seconds is None) == (budget_epochs is None):
            raise ValueError("give exactly one of budget_seconds and budget_epochs")
        if not candidates:
            raise ValueError("a budgeted selection needs at least one candidate")
        self.repository = repository
        self.target = target
        self.candidates = {candidate.name: candidate for candidate in candidates}
        self.config = config
        self.budget_seconds = budget_seconds
        self.budget_epochs = budget_epochs
        self.started = time.perf_counter() if started is None else started
        self.on_event = on_event or (lambda line: logger.info("%s", line))
        text = json.dumps([target, list(self.candidates), config.protocol.key, budget_seconds, budget_epochs])
        self.study_name = config.study or f"budget-{hashlib.sha1(text.encode()).hexdigest()[:10]}"
        self._study_config = {
            "candidates": list(self.candidates),
            "protocol": config.protocol.key,
            "budget": text,
        }
        self.output = Path(config.output_dir)
        self.repository_models = len(repository.models())
        self.seconds: dict[str, float] = {}
        self._data: ClassificationData | None = None
        self._predictors = candidate_predictors(
            repository.curves(), {c.model_id for c in candidates}, config.predictor
        )

    @cached_property
    def study(self) -> Study:
        """The study, stored on first use: a budget too small to plan leaves no study behind."""
        return Study(self.repository, self.study_name, target=self.target, config=self._study_config)

    @property
    def unit(self) -> str:
        """What the budget counts: "seconds" or "epochs" (``budget_epochs``)."""
        return "epochs" if self.budget_epochs is not None else "seconds"

    @property
    def data(self) -> ClassificationData:
        """The target, loaded once."""
        if self._data is None:
            self._data = load_data(self.target, self.config)
        return self._data

    def checkpoint_dir(self, name: str) -> Path:
        """Where a candidate's checkpoints live (per study)."""
        return self.output / "checkpoints" / self.study_name / checkpoint_folder_name(name)

    def candidate_config(self, name: str) -> SelectConfig:
        """The protocol with the candidate's learning rate."""
        return dataclasses.replace(self.config, learning_rate=self.candidates[name].learning_rate)

    # -- the plan -------------------------------------------------------------------------------

    def plan(self) -> BudgetPlan:
        """The plan for what is left of the budget (timings measured here where the repository has none)."""
        names = list(self.candidates)
        if self.budget_epochs is not None:
            estimates = dict.fromkeys(names, 1.0)
            budget = float(self.budget_epochs)
        else:
            estimates = self._estimates()
            assert self.budget_seconds is not None
            budget = self.budget_seconds - (time.perf_counter() - self.started)
            if budget <= 0:
                raise BudgetTooSmallError(
                    f"the budget ({format_seconds(self.budget_seconds)}) is too small: recall alone took "
                    f"{format_seconds(time.perf_counter() - self.started)}; give a larger --budget"
                )
        best_ranks = evidence_best_ranks(self.repository.performance_matrix())
        return plan_budget(
            [BudgetCandidate(name, estimates[name]) for name in names],
            self.config.epochs,
            budget,
            best_ranks=best_ranks,
            reduction_factor=self.config.reduction_factor,
        )

    def _estimates(self) -> dict[str, float]:
        per_example = epoch_seconds_per_example(self.repository)
        examples = len(self.data.splits["train"])
        if not per_example:
            # No timings in the repository: one epoch of the top candidate measures the target.
            top = next(iter(self.candidates))
            self.on_event(f"no benchmark timings in the repository: measuring one epoch of {top}")
            measured = self.train(top, 1).seconds
            per_example = {self.candidates[top].model_id: measured / examples}
        everyone = statistics.median(per_example.values())
        return {
            name: per_example.get(candidate.model_id, everyone) * examples
            for name, candidate in self.candidates.items()
        }

    # -- training -------------------------------------------------------------------------------

    def train(self, name: str, until_epoch: int) -> TrainingStep:
        """Train a candidate to ``until_epoch`` (the loop's unit of work); record it in the study."""
        candidate = self.candidates[name]
        directory = self.checkpoint_dir(name)
        resumed = self._checkpoint_epoch(directory)
        started = time.perf_counter()
        logged = dict(
            train_candidate(candidate.spec, self.data, self.candidate_config(name), directory, until_epoch)
        )
        seconds = time.perf_counter() - started
        trained = max(0, max(logged, default=0) - resumed)  # a resumed run's log repeats earlier epochs
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds
        predictor = self._predictors[candidate.model_id]
        for epoch, score in sorted(logged.items()):
            if epoch > resumed:
                self.study.record_point(name, epoch, score, predict_final(predictor, score, epoch, logged))
        self.study.set_trial(
            Trial(name, RUNNING, epochs_trained=max(logged, default=0), wall_time_s=self.seconds[name])
        )
        self.on_event(f"trained {name} to epoch {until_epoch} ({format_seconds(seconds)})")
        if self.budget_epochs is not None:
            seconds = float(trained)  # a budget in epochs counts epochs
        return TrainingStep(logged, seconds, trained)

    @staticmethod
    def _checkpoint_epoch(directory: Path) -> int:
        """The epochs in the latest checkpoint in ``directory`` (0 without one): where training resumes."""
        last = latest_checkpoint(directory)
        return 0 if last is None else round(checkpoint_state(last).get("epoch") or 0)

    # -- the run --------------------------------------------------------------------------------

    def run(self) -> SelectionResult:
        """Plan, tell the plan, run it (this object trains: it is the loop's CandidateTrainer)."""
        plan = self.plan()
        for line in plan.describe(self.unit):
            self.on_event(f"plan: {line}")
        outcome = run_budget(
            plan,
            self,
            predictors={name: self._predictors[c.model_id] for name, c in self.candidates.items()},
            margin=self.config.margin,
            order_by=self.config.halving_order,
        )
        for name, reason in outcome.drops.items():
            self.study.set_trial(
                Trial(name, STOPPED, epochs_trained=outcome.epochs.get(name, 0), reason=reason)
            )
            if not self.config.keep_checkpoints:
                remove_checkpoint_folder(self.checkpoint_dir(name))
            self.on_event(f"stopped {name}: {reason}")
        for line in outcome.shrinks:
            self.on_event(f"plan shrank: {line}")
        result = self._result(outcome)
        result.budget = self._account(plan, outcome)
        self.study.set_status("completed")
        return result

    def _account(self, plan: BudgetPlan, outcome: BudgetOutcome) -> dict[str, Any]:
        elapsed = time.perf_counter() - self.started
        return {
            "unit": self.unit,
            "budget": self.budget_epochs if self.budget_epochs is not None else self.budget_seconds,
            "planned_with": plan.budget_seconds,
            "spent_by_selection": outcome.seconds,
            "wall_time_s": elapsed,
            "within_budget": outcome.within_budget
            and (self.budget_seconds is None or elapsed <= self.budget_seconds),
            "plan": plan.describe(self.unit),
            "shrinks": list(outcome.shrinks),
            "selected": {
                "model_id": self.candidates[outcome.selected].model_id,
                "learning_rate": self.candidates[outcome.selected].learning_rate,
            },
        }

    def _result(self, outcome: BudgetOutcome) -> SelectionResult:
        winner = outcome.selected
        scores = outcome.scores[winner]
        final_epoch = max(scores)
        self.study.set_trial(
            Trial(
                winner,
                COMPLETED,
                epochs_trained=final_epoch,
                final_score=scores[final_epoch],
                wall_time_s=self.seconds.get(winner),
            )
        )
        test_score, saved_to = save_selected_model(
            self.checkpoint_dir(winner), self.data, self.candidate_config(winner), self.output
        )
        curves = self.study.curves()
        stops = {name: (outcome.epochs.get(name, 0), reason) for name, reason in outcome.drops.items()}
        reports = []
        for name, candidate in self.candidates.items():
            frame = curves[curves["model_id"] == name].sort_values("epoch")
            if frame.empty:
                continue  # never trained: the plan did not reach it
            report = CandidateReport(name, candidate.spec)
            report.curve = [float(v) for v in frame["score"]]
            report.predicted_final = [float(v) for v in frame["predicted_final"]]
            report.epochs = len(report.curve)
            report.seconds = self.seconds.get(name, 0.0)
            report.state = COMPLETED if name == winner else STOPPED
            report.reason = outcome.drops.get(name)
            reports.append(report)
        epochs = self.config.epochs
        return SelectionResult(
            study=self.study_name,
            target=self.target,
            selected_model=winner,
            selected_score=scores[final_epoch],
            test_score=test_score,
            saved_to=saved_to,
            candidates=reports,
            rounds=decision_rounds(curves, curves["epoch"].map(round), stops),
            epochs_spent=sum(outcome.epochs.values()),
            brute_force_epochs=len(outcome.plan.candidates) * epochs,
            successive_halving_epochs=successive_halving_epochs(
                len(outcome.plan.candidates),
                epochs,
                rungs=outcome.plan.rungs,
                reduction_factor=outcome.plan.reduction_factor,
            ),
            wall_time_s=time.perf_counter() - self.started,
            repository_models=self.repository_models,
            brute_force_repository_epochs=self.repository_models * epochs,
        )


def select_within_budget(
    repository: ModelRepository,
    target: str,
    recalled: Sequence[str],
    config: SelectConfig,
    *,
    learning_rates: Sequence[float] | None = None,
    budget_seconds: float | None = None,
    budget_epochs: int | None = None,
    started: float | None = None,
    on_event: Callable[[str], None] | None = None,
) -> SelectionResult:
    """Budget-first selection over recall's models (best first), each at each learning rate.

    What :func:`hfselect.select` runs with a budget: the pairs (:meth:`Candidate.pairs`), then
    :meth:`BudgetSelection.run`.

    Raises:
        HfSelectError: the budget is too small for any candidate's full run (one line naming the
            cheapest).
    """
    rates = list(learning_rates or [config.learning_rate])
    ranked = [(model, repository.model_location(model)) for model in recalled]
    pairs = Candidate.pairs(ranked, rates, learning_rate_ranks(repository, rates))
    selection = BudgetSelection(
        repository, target, pairs, config, budget_seconds=budget_seconds, started=started,
        budget_epochs=budget_epochs, on_event=on_event,
    )  # fmt: skip
    try:
        return selection.run()
    except BudgetTooSmallError as error:
        raise HfSelectError(str(error)) from None
