"""Budget-first selection: how to spend a compute budget on the candidates recall ranked.

The user gives a budget in seconds; hfselect decides how to spend it. The input is what hfselect
knows before training: the candidates best first (each a model, or a model with a training
configuration such as its learning rate), each one's estimated seconds per epoch on the target
(from the repository's benchmark timings), the protocol's full length in epochs, and how much the
recall ranking is worth on this repository (:func:`coverage_width`).

**The plan** (:func:`plan_budget`). Synchronous successive halving over the top ``n`` candidates:
at each rung the best ``1 / reduction_factor`` are kept (:func:`hfselect.core.halving.halving_round`,
with the trend predictions and margins fine selection uses), and the last one is trained to the
full length. Its estimated cost (every epoch trained, plus the full remaining run of the most
expensive candidate as a reserve, since any of them may win) must fit the budget. The width is

* the widest ``n`` whose rungs start no earlier than the library's first rung
  (:func:`hfselect.core.halving.halving_rungs`: 1/16 of the full length), so its decisions are as
  informed as fine selection's; and at least
* the width recall's ranking asks for on this repository (the smallest top-``k`` that held each
  benchmark dataset's best model in :data:`COVERAGE` of them), when the budget affords it with
  earlier rungs.

So a small budget degrades to training recall's top pick (the best-ranked candidate whose full run
fits) and a large one to a wide halving. A budget too small for any candidate's full run is an
error that names the cheapest.

**The run** (:func:`run_budget`): the plan, through a :class:`CandidateTrainer` (live: train a
candidate to an epoch; replay: read its recorded curve), so the benchmarks measure the loop users
run. After each step the candidate's epoch cost is what was measured. Before each rung the loop
checks the remaining budget against what the rung and the reserve now need, and drops the
lowest-ranked survivors until it fits: the plan shrinks, it never overruns, and every shrink is
recorded with its reason.

Pure: numbers in, plain data out; training happens behind the :class:`CandidateTrainer`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import pandas as pd

from hfselect.config import DEFAULT_HALVING_ORDER, DEFAULT_MARGIN, DEFAULT_REDUCTION_FACTOR, HalvingOrder
from hfselect.core.halving import halving_order, halving_rungs, synchronous_round
from hfselect.core.trend import TrendPredictor
from hfselect.validation import check_int

# The share of benchmark datasets whose best model recall's top k must hold for k to be its width.
COVERAGE = 0.9


class BudgetTooSmallError(ValueError):
    """No candidate's full run fits the budget."""


@dataclass(frozen=True)
class BudgetCandidate:
    """A candidate as the plan sees it: its name and its estimated seconds per epoch on the target."""

    name: str
    epoch_seconds: float


@dataclass(frozen=True)
class BudgetPlan:
    """What :func:`plan_budget` decided (see the module docstring)."""

    candidates: tuple[str, ...]  # the ones started, best ranked first
    rungs: tuple[int, ...]  # epochs after which a round decides (empty: one candidate)
    full_epochs: int
    reduction_factor: int
    budget_seconds: float
    estimated_seconds: float  # the plan's estimated cost, the reserve included
    reserve_seconds: float  # kept to finish the winner: the costliest started candidate's remaining run
    epoch_seconds: dict[str, float]  # every ranked candidate's estimate
    width_reason: str
    # The ranked candidates not started, best first: what is trained instead when the pick's full
    # run turns out not to fit (its first epoch cost more than estimated).
    fallbacks: tuple[str, ...] = ()

    def describe(self, unit: str = "seconds") -> list[str]:
        """The plan in lines a user reads before training starts; ``unit``: "seconds" or "epochs"."""

        def amount(value: float) -> str:
            return format_seconds(value) if unit == "seconds" else f"{value:g} epochs"

        lines = [
            f"budget {amount(self.budget_seconds)}: {len(self.candidates)} candidate(s), "
            + (
                f"rungs at epochs {', '.join(map(str, self.rungs))} (keep the best 1/{self.reduction_factor})"
                if self.rungs
                else "no halving (train the top pick)"
            )
            + f", the winner trained to {self.full_epochs} epochs",
            f"why this width: {self.width_reason}",
            f"estimated cost {amount(self.estimated_seconds)}, of which "
            f"{amount(self.reserve_seconds)} reserved to finish the winner",
        ]
        if unit == "seconds":
            lines += [
                f"  {name}: about {format_seconds(self.epoch_seconds[name])} an epoch"
                for name in self.candidates
            ]
        return lines


def format_seconds(seconds: float) -> str:
    """``0.4 s``, ``95 s``, ``12.5 min`` or ``2.10 h``."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def coverage_width(best_ranks: Sequence[int], coverage: float = COVERAGE) -> int | None:
    """The smallest ``k`` whose top-``k`` held the best model on ``coverage`` of the benchmark datasets.

    ``best_ranks`` has one entry per benchmark dataset: the 1-based place of its best model in
    recall's ranking of it (made without its own results). None when there are none.
    """
    if not best_ranks:
        return None
    ranks = sorted(best_ranks)
    return ranks[max(0, math.ceil(coverage * len(ranks)) - 1)]


def evidence_best_ranks(performance: pd.DataFrame) -> list[int]:
    """Per benchmark dataset, the place of its best model when ranked by the other datasets alone.

    ``performance`` is models x benchmark datasets (final scores, NaN where a model has none). Each
    dataset in turn is set aside and its models are ranked by their mean percentile on the other
    datasets (a model with no other result goes last): the place of its best model is how far
    down that ranking a selection must reach. The benchmark evidence is the part of recall that
    needs no proxy on the target, so this says what recall's ranking is worth at the least.
    """
    percentiles = performance.rank(pct=True)
    ranks = []
    for dataset in performance.columns:
        scores = performance[dataset].dropna()
        if len(scores) < 2:
            continue
        others = percentiles.drop(columns=dataset).loc[scores.index].mean(axis=1).fillna(-1.0)
        order = sorted(scores.index, key=lambda model: (-others[model], str(model)))
        ranks.append(order.index(scores.idxmax()) + 1)
    return ranks


def schedule(width: int, first_rung: int, full_epochs: int, reduction_factor: int) -> tuple[int, ...]:
    """The rungs of a halving over ``width`` candidates: ``first_rung``, times ``reduction_factor`` each
    round, until one candidate is left or the full length is reached."""
    rungs, alive, rung = [], width, first_rung
    while alive > 1 and rung <= full_epochs:
        rungs.append(rung)
        alive = math.ceil(alive / reduction_factor)
        rung *= reduction_factor
    return tuple(rungs)


def estimate_cost(
    costs: Sequence[float], rungs: Sequence[int], full_epochs: int, reduction_factor: int
) -> tuple[float, float]:
    """``(total, reserve)``: the estimated seconds of a halving over candidates of ``costs`` per epoch.

    Survivors of a round cost the started candidates' mean; the reserve is the costliest
    candidate's run from the last rung to the end (a survivor of unknown cost may win).
    """
    mean = sum(costs) / len(costs)
    spent, alive, previous = 0.0, len(costs), 0
    for rung in rungs:
        spent += alive * mean * (rung - previous)
        alive, previous = math.ceil(alive / reduction_factor), rung
    reserve = max(costs) * (full_epochs - previous)
    return spent + reserve, reserve


def plan_budget(
    ranked: Sequence[BudgetCandidate],
    full_epochs: int,
    budget_seconds: float,
    *,
    best_ranks: Sequence[int] = (),
    reduction_factor: int = DEFAULT_REDUCTION_FACTOR,
) -> BudgetPlan:
    """The plan for spending ``budget_seconds`` on ``ranked`` (best first); see the module docstring.

    Args:
        ranked: the candidates, recall's best first.
        full_epochs: the protocol's length: the winner is trained to it.
        budget_seconds: everything the selection may spend from here on.
        best_ranks: per benchmark dataset, the place of its best model in recall's ranking of it
            (:func:`coverage_width`); empty when unknown.
        reduction_factor: a round keeps the best ``1 / reduction_factor``.

    Raises:
        BudgetTooSmallError: not even the cheapest candidate's full run fits.
    """
    check_int("reduction_factor", reduction_factor, minimum=2)
    check_int("full_epochs", full_epochs, minimum=1)
    if not ranked:
        raise ValueError("a budget plan needs at least one candidate")
    costs = [max(candidate.epoch_seconds, 0.0) for candidate in ranked]
    estimates = {candidate.name: cost for candidate, cost in zip(ranked, costs, strict=True)}
    default_first = halving_rungs(full_epochs)[0]

    def fits(width: int, first: int) -> tuple[bool, tuple[int, ...], float, float]:
        rungs = schedule(width, first, full_epochs, reduction_factor)
        total, reserve = estimate_cost(costs[:width], rungs, full_epochs, reduction_factor)
        return total <= budget_seconds, rungs, total, reserve

    def latest_first(width: int) -> int | None:
        """The latest first rung (no later than the library's) at which ``width`` candidates fit."""
        return next((first for first in range(default_first, 0, -1) if fits(width, first)[0]), None)

    reliable = next((w for w in range(len(ranked), 1, -1) if fits(w, default_first)[0]), 0)
    width, first = reliable, default_first
    wanted = coverage_width(best_ranks)
    if wanted is not None and reliable < min(wanted, len(ranked)):
        # Recall's ranking is worth a wider start than the budget affords at the library's first
        # rung: earlier first rungs make room for it.
        for candidate_width in range(min(wanted, len(ranked)), reliable, -1):
            earliest = latest_first(candidate_width)
            if earliest is not None:
                width, first = candidate_width, earliest
                break
    if width >= 2:
        _, rungs, total, reserve = fits(width, first)
        reason = _width_reason(width, len(ranked), wanted, reliable, first, default_first)
        return BudgetPlan(
            tuple(candidate.name for candidate in ranked[:width]),
            rungs,
            full_epochs,
            reduction_factor,
            budget_seconds,
            total,
            reserve,
            estimates,
            reason,
            tuple(candidate.name for candidate in ranked[width:]),
        )
    # One candidate: recall's best-ranked whose full run fits.
    for skipped, (candidate, cost) in enumerate(zip(ranked, costs, strict=True)):
        if cost * full_epochs <= budget_seconds:
            reason = "the budget affords no halving: recall's top pick is trained" + (
                f" (the {skipped} ranked above it cost more than the budget)" if skipped else ""
            )
            total = cost * full_epochs
            return BudgetPlan(
                (candidate.name,),
                (),
                full_epochs,
                reduction_factor,
                budget_seconds,
                total,
                total,
                estimates,
                reason,
                tuple(other.name for other in ranked if other is not candidate),
            )
    cheapest = min(zip(costs, ranked, strict=True), key=lambda pair: pair[0])
    raise BudgetTooSmallError(
        f"the budget ({format_seconds(budget_seconds)}) is too small: the cheapest candidate, "
        f"{cheapest[1].name}, needs about {format_seconds(cheapest[0] * full_epochs)} for its "
        f"{full_epochs} epochs; give a larger --budget or fewer epochs"
    )


def _width_reason(
    width: int, available: int, wanted: int | None, reliable: int, first: int, default_first: int
) -> str:
    if width == available:
        return f"the budget affords every one of the {available} candidates"
    coverage = (
        f"recall's top {wanted} held the best model on {COVERAGE:.0%} of the benchmark datasets"
        if wanted is not None
        else "how much recall's ranking is worth is unknown (no benchmark datasets to measure it on)"
    )
    if width == reliable:
        return f"the widest the budget affords with a first rung at epoch {default_first}; {coverage}"
    return f"{coverage}: the budget affords {width} with a first rung at epoch {first}"


# -- the run ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingStep:
    """What training a candidate up to an epoch gave.

    ``scores``: its score after each epoch up to there (earlier ones too, when known);
    ``trained``: how many epochs this step trained; ``seconds``: what they cost.
    """

    scores: dict[int, float]
    seconds: float
    trained: int


class CandidateTrainer(Protocol):
    """Trains candidates for :func:`run_budget`: live (real training) or replayed (recorded curves)."""

    def train(self, name: str, until_epoch: int) -> TrainingStep:
        """Train ``name`` from where it stopped up to ``until_epoch`` epochs."""
        ...


@dataclass
class BudgetOutcome:
    """What :func:`run_budget` did: the pick, the epochs and seconds spent, and why the plan changed."""

    plan: BudgetPlan
    selected: str
    epochs: dict[str, int]
    scores: dict[str, dict[int, float]]
    seconds: float
    drops: dict[str, str]  # candidate -> why it stopped
    shrinks: list[str] = field(default_factory=list)  # how the plan changed when estimates proved wrong

    @property
    def within_budget(self) -> bool:
        """Whether everything spent, the winner's full run included, fits the budget."""
        return self.seconds <= self.plan.budget_seconds + 1e-9


class ReplayTrainer:
    """A :class:`CandidateTrainer` over recorded curves: scores and seconds of every epoch."""

    def __init__(self, curves: Mapping[str, Sequence[float]], seconds: Mapping[str, Sequence[float]]) -> None:
        self.curves, self.epoch_seconds = curves, seconds
        self.done: dict[str, int] = {}

    def train(self, name: str, until_epoch: int) -> TrainingStep:
        """Read ``name``'s epochs from where it stopped to ``until_epoch``."""
        start = self.done.get(name, 0)
        self.done[name] = max(start, until_epoch)
        epochs = range(start + 1, until_epoch + 1)
        return TrainingStep(
            {epoch: float(self.curves[name][epoch - 1]) for epoch in epochs},
            float(sum(self.epoch_seconds[name][epoch - 1] for epoch in epochs)),
            len(epochs),
        )


def run_budget(
    plan: BudgetPlan,
    trainer: CandidateTrainer,
    *,
    predictors: Mapping[str, TrendPredictor] | None = None,
    margin: float | str = DEFAULT_MARGIN,
    order_by: HalvingOrder = DEFAULT_HALVING_ORDER,
) -> BudgetOutcome:
    """Carry out ``plan`` through ``trainer``, shrinking it when the budget runs short.

    ``predictors`` (candidate -> its trend predictor) give the predicted final scores and margins
    the rounds decide on, as in fine selection; without them a round orders by current score
    (plain successive halving).
    """
    budget, full = plan.budget_seconds, plan.full_epochs
    cost = dict(plan.epoch_seconds)
    everyone = (*plan.candidates, *plan.fallbacks)
    epochs = dict.fromkeys(everyone, 0)
    scores: dict[str, dict[int, float]] = {name: {} for name in everyone}
    predicted: dict[str, float] = {}
    drops: dict[str, str] = {}
    shrinks: list[str] = []
    spent = 0.0
    alive = list(plan.candidates)

    def step(name: str, until: int) -> None:
        nonlocal spent
        done = trainer.train(name, until)
        spent += done.seconds
        if done.trained:
            cost[name] = done.seconds / done.trained  # measured: the estimate is corrected
        scores[name].update(done.scores)
        epochs[name] = max(epochs[name], until)

    def need(names: Sequence[str], rung: int) -> float:
        """Seconds to bring ``names`` to ``rung`` and keep the reserve to finish any of them."""
        to_rung = sum(cost[name] * max(0, rung - epochs[name]) for name in names)
        return to_rung + max(cost[name] * (full - max(rung, epochs[name])) for name in names)

    def shrink(name: str, reason: str) -> None:
        drops[name] = reason
        shrinks.append(f"{name}: {reason}")

    for rung in plan.rungs:
        if len(alive) <= 1:
            break
        for position in range(len(alive)):
            # Measured costs correct the estimates after every step: drop the lowest-ranked
            # candidates this rung has not trained yet until the rung and the reserve fit.
            while len(alive) > position + 1 and spent + need(alive, rung) > budget:
                dropped = alive.pop()
                shrink(
                    dropped,
                    f"budget: not trained to rung {rung}: with the reserve to finish the winner that "
                    f"needs {format_seconds(need([*alive, dropped], rung))} of the "
                    f"{format_seconds(max(0.0, budget - spent))} left",
                )
            if position < len(alive):
                step(alive[position], rung)
        if len(alive) <= 1:
            break
        score = {name: scores[name][rung] for name in alive}
        predicted, decided = synchronous_round(
            alive,
            score,
            scores,
            rung,
            predictors,
            margin=margin,
            order_by=order_by,
            reduction_factor=plan.reduction_factor,
        )
        drops.update(decided)
        # The survivors best first, so that a shrink drops the last.
        by = order_by if predictors is not None else "score"
        alive = [name for name in halving_order(alive, score, predicted, by) if name not in decided]
    # The winner: the best latest prediction among the survivors; then, when its full run does not
    # fit (a cost measured above its estimate), the next that fits.
    ranked = sorted(alive, key=lambda name: -predicted.get(name, -math.inf)) if len(alive) > 1 else alive
    ranked += [name for name in plan.fallbacks if name not in ranked]
    winner = None
    for name in ranked:
        if epochs[name] == 0:
            if spent + cost[name] * full > budget:
                continue  # not even its estimate fits
            step(name, 1)  # its first epoch measures what an epoch of it costs
        if spent + cost[name] * (full - epochs[name]) <= budget:
            winner = name
            break
        shrink(
            name,
            f"budget: its full run would need {format_seconds(cost[name] * (full - epochs[name]))} of the "
            f"{format_seconds(max(0.0, budget - spent))} left",
        )
    if winner is None:
        winner = ranked[0]
        shrinks.append(f"{winner}: no candidate's full run fits what is left: finished anyway, over budget")
    drops.pop(winner, None)  # a candidate given up for the budget may still be the one finished
    for name in alive:
        if name != winner and name not in drops:
            drops[name] = "lower predicted final score when the rungs ended"
    if epochs[winner] < full:
        step(winner, full)
    trained = {name: count for name, count in epochs.items() if count}
    return BudgetOutcome(plan, winner, trained, {n: scores[n] for n in trained}, spent, drops, shrinks)
