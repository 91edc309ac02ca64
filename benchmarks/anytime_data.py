"""One target's candidate set, the accounting every method of ``anytime.py`` is charged by, and trajectories.

A :class:`Problem` is one dataset of Quick-Tune's layout as the target, with one candidate set:
``models`` (each model's first full-length run, :meth:`CurveData.runs`) or ``joint`` (every
full-length run of the target: about 7 configurations per model). The other datasets are the
repository, what transfer methods may learn from.

The accounting (:meth:`Problem.total_cost`): the seconds of every epoch trained (``cost.json``),
a continued run never repeating an epoch, plus the seconds that finish the pick to the full
budget (its remaining epochs). A training that starts a configuration again (a new trial of a
configuration already tried) pays its epochs again.

An anytime method's run is a :class:`Trajectory`: every epoch it trained, in order. Its pick at a
moment is its incumbent then (:meth:`Trajectory.moments`), and its result at a budget is its pick
at the last moment whose total cost (seconds so far plus finishing the pick) is within the budget
(:meth:`Trajectory.read`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from real_curves_data import CurveData

CANDIDATE_SETS = ("models", "joint")
#: Budgets, in multiples of the target's median full-length run (over the candidate set).
BUDGET_MULTIPLIERS = (1, 2, 4, 8, 16)

#: A method's result at one budget: its pick and total cost, or None when no pick fits the budget.
Pick = tuple[str, float] | None


def full_length_configs(data: CurveData, target: str) -> list[str]:
    """Every config id of ``target`` with the full budget of epochs (and a model), in file order."""
    return [
        config
        for config, curve in data.scores[target].items()
        if config in data.model_of and len(curve) >= data.budget
    ]


@dataclass
class Problem:
    """One target and one candidate set: what every method chooses among, and how it is charged."""

    target: str
    candidate_set: str  # "models" or "joint"
    configs: list[str]  # the candidate config ids (full-length runs of the target)
    curves: dict[str, list[float]]  # config -> its score after each epoch (budget epochs)
    seconds: dict[str, list[float]]  # config -> its seconds of each epoch
    model_of: dict[str, str]  # config -> model name
    budget_epochs: int
    data: CurveData = field(repr=False)  # everything (the other datasets are the repository)
    repository: list[str] = field(default_factory=list)  # the other datasets' names
    # table.csv's numeric columns by name: column -> config id -> value (every dataset's configs)
    hyperparameters: dict[str, dict[str, float]] = field(default_factory=dict, repr=False)

    @cached_property
    def finals(self) -> dict[str, float]:
        """Each candidate's ground truth: its score after the last epoch."""
        return {config: self.curves[config][-1] for config in self.configs}

    @property
    def best_final(self) -> float:
        return max(self.finals.values())

    @property
    def worst_final(self) -> float:
        return min(self.finals.values())

    def normalized_regret(self, config: str | None) -> float:
        """(best final - ``config``'s final) / (best final - worst final); 1 for no pick (None).

        0 when every candidate ends equal. Within the candidate set: a config outside it is an error.
        """
        if config is None:
            return 1.0
        spread = self.best_final - self.worst_final
        return float((self.best_final - self.finals[config]) / spread) if spread > 0 else 0.0

    @cached_property
    def run_seconds(self) -> dict[str, float]:
        """Each candidate's full run: the seconds of all its epochs."""
        return {config: float(sum(self.seconds[config])) for config in self.configs}

    @property
    def median_run_seconds(self) -> float:
        """The median full run over the candidate set: the unit of the budgets."""
        return float(np.median(list(self.run_seconds.values())))

    def budgets(self, multipliers: Sequence[float] = BUDGET_MULTIPLIERS) -> list[float]:
        """The budgets in seconds: each multiplier times :attr:`median_run_seconds`."""
        return [multiplier * self.median_run_seconds for multiplier in multipliers]

    def finishing_seconds(self, config: str, trained_epochs: int) -> float:
        """The seconds that train ``config`` from ``trained_epochs`` to the full budget."""
        return float(sum(self.seconds[config][trained_epochs:]))

    def total_cost(
        self, trainings: Iterable[tuple[str, int]], pick: str, pick_epochs: int | None = None
    ) -> float:
        """The accounting: every training's epochs, plus finishing ``pick`` to the full budget.

        ``trainings``: (config, epochs trained) per training, a continued or resumed run counted
        once with its last epoch (its epochs are never repeated); a configuration started again is
        a second training and pays again. ``pick_epochs``: how far the pick was trained (default:
        its longest training, 0 if it was never trained).
        """
        trainings = list(trainings)
        spent = sum(sum(self.seconds[config][:epochs]) for config, epochs in trainings)
        if pick_epochs is None:
            pick_epochs = max((epochs for config, epochs in trainings if config == pick), default=0)
        return float(spent + self.finishing_seconds(pick, pick_epochs))

    def interleaved(self) -> list[str]:
        """The candidates model by model in turn: each model's first run, then each one's second, ...

        A deterministic order whose first ``n`` candidates cover as many models as ``n`` allows
        (file order within a model, models in order of their first run). For ``models`` it is
        the candidate order itself.
        """
        by_model: dict[str, list[str]] = {}
        for config in self.configs:
            by_model.setdefault(self.model_of[config], []).append(config)
        order, depth = [], 0
        while len(order) < len(self.configs):
            order += [runs[depth] for runs in by_model.values() if depth < len(runs)]
            depth += 1
        return order


def load_hyperparameters(folder: Path) -> dict[str, dict[str, float]]:
    """``table.csv``'s numeric columns by name: column -> config id -> value (NaN where it is empty)."""
    table = pd.read_csv(folder / "table.csv", index_col=0, dtype={0: str})
    numeric = table.select_dtypes("number")
    return {
        str(column): {str(config): float(value) for config, value in numeric[column].items()}
        for column in numeric.columns
    }


def make_problem(
    data: CurveData,
    target: str,
    candidate_set: str,
    hyperparameters: dict[str, dict[str, float]] | None = None,
) -> Problem:
    """The target ``target`` with the candidate set ``candidate_set`` (see :data:`CANDIDATE_SETS`).

    ``hyperparameters`` (:func:`load_hyperparameters`) is what the transfer scheduler searches by.
    """
    if candidate_set == "models":
        configs = list(data.runs(target).values())
    elif candidate_set == "joint":
        configs = full_length_configs(data, target)
    else:
        raise ValueError(f"unknown candidate set {candidate_set!r}: one of {', '.join(CANDIDATE_SETS)}")
    budget = data.budget
    return Problem(
        target=target,
        candidate_set=candidate_set,
        configs=configs,
        curves={config: list(data.scores[target][config][:budget]) for config in configs},
        seconds={config: list(data.seconds[target][config][:budget]) for config in configs},
        model_of={config: data.model_of[config] for config in configs},
        budget_epochs=budget,
        data=data,
        repository=[dataset for dataset in data.datasets if dataset != target],
        hyperparameters=hyperparameters or {},
    )


@dataclass(frozen=True)
class Moment:
    """The state of an anytime method after one more epoch: seconds spent, its pick and its total cost."""

    spent: float
    pick: str
    pick_epochs: int
    total: float


@dataclass
class Trajectory:
    """Every epoch an anytime method trained, in order: (training id, config, epoch) each.

    A training is one run of a configuration (a Syne Tune or Optuna trial): its epochs come in
    order 1, 2, ... without repeats, however it was paused, promoted or resumed.
    """

    problem: Problem
    events: list[tuple[int, str, int]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)  # what the method reports beside (JSON)

    def add(self, training: int, config: str, epoch: int) -> None:
        self.events.append((training, config, epoch))

    @property
    def spent(self) -> float:
        """The seconds of every epoch recorded so far."""
        seconds = self.problem.seconds
        return float(sum(seconds[config][epoch - 1] for _, config, epoch in self.events))

    @property
    def trainings(self) -> int:
        return len({training for training, _, _ in self.events})

    def moments(self) -> list[Moment]:
        """The method's pick and total cost after each epoch it trained.

        The incumbent (the pick) is the configuration with the best score at the largest epoch
        that any training has reached so far (ties: the first to get there), so a configuration
        scored after 1 epoch never beats one scored after 27. Rung-based schedulers report their
        incumbent this way; for random search it is the best finished run once one has finished.
        Its total cost is the seconds spent so far plus its remaining epochs.
        """
        problem = self.problem
        reached: dict[int, int] = {}  # training -> its last epoch
        best_at: dict[int, tuple[float, str]] = {}  # epoch -> (best score there, its config)
        spent, top, moments = 0.0, 0, []
        for training, config, epoch in self.events:
            if epoch != reached.get(training, 0) + 1:
                raise ValueError(f"training {training} goes from epoch {reached.get(training, 0)} to {epoch}")
            reached[training] = epoch
            spent += problem.seconds[config][epoch - 1]
            score = problem.curves[config][epoch - 1]
            if epoch not in best_at or score > best_at[epoch][0]:
                best_at[epoch] = (score, config)
            top = max(top, epoch)
            pick = best_at[top][1]
            moments.append(Moment(spent, pick, top, spent + problem.finishing_seconds(pick, top)))
        return moments

    def read(self, budgets: Sequence[float]) -> list[Pick]:
        """The pick and total cost at each budget: the last moment whose total is within it."""
        return read_moments(self.moments(), budgets)


def read_moments(moments: Sequence[Moment], budgets: Sequence[float]) -> list[Pick]:
    """At each budget, the last moment whose total cost is within it (None: no moment is)."""
    totals = np.array([moment.total for moment in moments])
    picks: list[Pick] = []
    for budget in budgets:
        within = np.flatnonzero(totals <= budget)
        if within.size == 0:
            picks.append(None)
        else:
            moment = moments[int(within[-1])]
            picks.append((moment.pick, moment.total))
    return picks
