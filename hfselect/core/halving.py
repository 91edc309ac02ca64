"""Successive halving guided by convergence trends: the one rule that stops a run, and the schedules.

**The rule** (:func:`stop_decision`; Cui et al.'s "predicted low performer", with a margin). After an
evaluation at ``epoch`` a run with score ``s`` and predicted final score ``p`` (its trend predictor,
:mod:`hfselect.core.trend`) is stopped when, among its *rivals* (the other runs evaluated at about the
same epoch) that scored strictly higher than ``s``, the one with the best predicted final score ``q``
satisfies ``p + margin < q``. ``margin`` is a number (``0`` is the paper's rule) or ``"auto"``: the
run's own predictor's error bound at that epoch (:meth:`~hfselect.core.trend.TrendPredictor.error_bound`:
an error it exceeds on one held-out benchmark curve in ten), so that a noisy early prediction cannot
call a late bloomer a low performer. A NaN margin (``"auto"`` where that bound is unknown) never
stops a run on this rule; a rival without a prediction never vouches against one. Optionally, a run
predicted below ``min_final_score`` is stopped too.

Every schedule calls that one function with the same predictor pool (:func:`candidate_predictors`)
and the same prediction (:func:`predict_final`):

* the synchronous schedule (:func:`halving_round`, used by
  :class:`~hfselect.training.selection.FineSelection` and by :func:`replay_halving`, the replay
  benchmark's): at each rung (:func:`halving_rungs`) the worse half is dropped, ordered by the sum
  of each candidate's rank by current score and by predicted final score (:func:`halving_order`),
  and every other surviving candidate that the rule stops; the rivals are the surviving candidates
  (the runs evaluated at that rung, as :func:`rivals_at` would find them);
* the asynchronous schedule and :class:`~hfselect.callbacks.ConvergenceTrendCallback`: after each
  evaluation, the rivals are the study's other runs at their evaluation nearest to that epoch
  (:func:`rivals_at`).

Where hfselect departs from the paper: the margin (``"auto"`` by default, ``DEFAULT_MARGIN``). After
one epoch the predictions are off by about 0.1 on the zoo, so the paper's margin of 0 drops late
bloomers that are still at chance level; ``benchmarks/selection_replay.py`` measures the difference.
And the worse half's order (``DEFAULT_HALVING_ORDER``): on real learning curves a prediction after a
few epochs orders runs no better than their current score does, and the two err differently, so
the sum of both ranks orders better than either (``benchmarks/real_curves.py``).

Pure: plain numbers and pandas frames in, plain data out.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from hfselect.config import (
    DEFAULT_HALVING_ORDER,
    DEFAULT_MARGIN,
    DEFAULT_PREDICTOR,
    DEFAULT_REDUCTION_FACTOR,
    HALVING_ORDERS,
    HalvingOrder,
)
from hfselect.core.trend import TrendPredictor, curves_by_model, make_predictor, resolve_margin
from hfselect.validation import check_int

# The first halving decision comes after this share of the budget, then at every doubling of it.
FIRST_RUNG_SHARE = 1 / 16


def successive_halving_epochs(
    candidates: int,
    budget: int,
    *,
    rungs: Sequence[int] | None = None,
    reduction_factor: int = DEFAULT_REDUCTION_FACTOR,
) -> int:
    """Epochs plain synchronous successive halving spends over ``candidates`` with a ``budget``-epoch protocol.

    A round at each of ``rungs`` (every epoch by default, the paper's baseline) keeps the best
    ``1 / reduction_factor`` (rounded up) by current score; once one is left, or the rungs end,
    one candidate trains on to ``budget``. Pass a selection's own rungs and factor to get the
    baseline that selection is compared with.
    """
    check_int("reduction_factor", reduction_factor, minimum=2)
    schedule = range(1, budget + 1) if rungs is None else sorted(r for r in set(rungs) if 1 <= r <= budget)
    spent, alive, previous = 0, candidates, 0
    for rung in schedule:
        if alive <= 1:
            break
        spent += alive * (rung - previous)
        alive, previous = math.ceil(alive / reduction_factor), rung
    return spent + (budget - previous)  # the survivor trains on to the full budget


def halving_rungs(budget: int) -> list[int]:
    """The epochs after which synchronous halving decides: ``f, 2f, 4f, ...`` up to ``budget``.

    ``f`` is 1/16 of the budget (at least 1): after one epoch of a 50-epoch budget a run's score
    says little about its end (on Quick-Tune's real curves the trend predictors are off by 0.23
    there, by 0.15 after 3), while a 5-epoch budget still decides after epochs 1, 2 and 4.
    """
    rungs, rung = [], max(1, round(budget * FIRST_RUNG_SHARE))
    while rung <= budget:
        rungs.append(rung)
        rung *= 2
    return rungs


# -- predictions ---------------------------------------------------------------------------------


def candidate_predictors(
    repository_curves: pd.DataFrame, model_ids: Iterable[str], name: str = DEFAULT_PREDICTOR
) -> dict[str, TrendPredictor]:
    """Each candidate's trend predictor of kind ``name``, fitted on the repository's benchmark curves.

    ``repository_curves`` is the long table of :meth:`hfselect.store.ModelRepository.curves`.
    A candidate's own curves are used; with fewer than three, every model's are pooled in (a
    predictor that :attr:`~hfselect.core.trend.TrendPredictor.pools_every_model` always pools them).
    The one predictor pool of hfselect: fine selection's, the callback's and the replay's.
    """
    curves = curves_by_model(repository_curves)
    return {model_id: make_predictor(name, model_id, curves) for model_id in model_ids}


def predict_final(
    predictor: TrendPredictor, score: float, epoch: float, earlier: Mapping[int, float]
) -> float:
    """A run's predicted final score after scoring ``score`` at ``epoch``.

    At the end of an epoch whose earlier epochs' scores are all in ``earlier`` (epoch -> score), the
    prediction sees the run's whole curve so far (:meth:`~hfselect.core.trend.TrendPredictor.predict_curve`);
    otherwise (an evaluation mid-epoch, or a curve with a gap) it sees the score alone.
    """
    whole = round(epoch)
    if whole >= 1 and abs(epoch - whole) < 1e-6:
        known = {**earlier, whole: score}
        if all(previous in known for previous in range(1, whole + 1)):
            return predictor.predict_curve([known[previous] for previous in range(1, whole + 1)])
    return predictor.predict(score, epoch)


# -- the rule ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RivalPoint:
    """Another run's recorded evaluation: its score and predicted final score at about the same epoch."""

    model_id: str
    score: float
    predicted_final: float | None


@dataclass(frozen=True)
class StopDecision:
    """What :func:`stop_decision` decided, and why."""

    stop: bool
    reason: str | None = None
    # The best predicted final score among the rivals that scored higher (None: no such rival).
    rival: RivalPoint | None = None
    margin: float = math.nan  # the margin in force (NaN: unknown)


def stop_decision(
    score: float,
    epoch: float,
    predicted_final: float,
    rivals: Iterable[RivalPoint],
    margin: float | str = DEFAULT_MARGIN,
    *,
    predictor: TrendPredictor | None = None,
    min_final_score: float | None = None,
) -> StopDecision:
    """Stop this run? The one low-performer rule of hfselect (see the module docstring).

    Args:
        score: the run's score at ``epoch`` (higher is better).
        epoch: when it was evaluated.
        predicted_final: its predicted final score (:func:`predict_final`).
        rivals: the other runs' evaluations at about ``epoch``; ties on the best prediction go to
            the first one.
        margin: a number, or ``"auto"``: ``predictor``'s error bound at ``epoch`` (NaN without a
            predictor: the rivals' rule then never stops the run).
        predictor: the run's trend predictor, for ``margin="auto"``.
        min_final_score: also stop a run predicted to end below this score.
    """
    slack = resolve_margin(margin, predictor, epoch)
    if min_final_score is not None and predicted_final < min_final_score:
        reason = f"predicted final {predicted_final:.4f} is below min_final_score {min_final_score:.4f}"
        return StopDecision(True, reason, None, slack)
    better = [
        (rival, rival.predicted_final)
        for rival in rivals
        if rival.score > score and rival.predicted_final is not None and not math.isnan(rival.predicted_final)
    ]
    best, best_predicted = max(better, key=lambda pair: pair[1], default=(None, math.nan))
    if best is None or math.isnan(slack) or not predicted_final + slack < best_predicted:
        return StopDecision(False, None, best, slack)
    reason = (
        f"predicted low performer at epoch {epoch:g}: predicted final {predicted_final:.4f}"
        + (f" + margin {slack:.4f}" if slack else "")
        + f" < {best_predicted:.4f} of {best.model_id}, which scored higher"
    )
    return StopDecision(True, reason, best, slack)


def rivals_at(
    curves: pd.DataFrame, model_id: str, epoch: float, *, tolerance: float = 0.5
) -> list[RivalPoint]:
    """The other runs' evaluations nearest to ``epoch`` in a study's ``curves`` (the rivals of ``model_id``).

    ``curves`` has columns model_id, epoch, score, predicted_final (:meth:`hfselect.store.studies.Study.curves`).
    Each other run counts with its evaluation nearest to ``epoch``, within ``tolerance`` epochs, so
    runs evaluated every few steps still meet.
    """
    near = curves[(curves["model_id"] != model_id) & ((curves["epoch"] - epoch).abs() <= tolerance)]
    rivals = []
    for other, frame in near.groupby("model_id"):
        nearest = frame.loc[(frame["epoch"] - epoch).abs().idxmin()]
        predicted = nearest["predicted_final"]
        rivals.append(
            RivalPoint(str(other), float(nearest["score"]), None if pd.isna(predicted) else float(predicted))
        )
    return rivals


# -- the synchronous schedule --------------------------------------------------------------------


def halving_order(
    candidates: Sequence[str],
    score: Mapping[str, float],
    predicted: Mapping[str, float],
    order_by: HalvingOrder = DEFAULT_HALVING_ORDER,
) -> list[str]:
    """``candidates`` best first, as a synchronous round sees them before dropping the worse half.

    ``order_by``:

    * ``"rank_sum"`` (the default): the sum of each candidate's rank by current score and its rank
      by predicted final score (tied values share their mean rank). Both estimate how the finals
      will order and err differently: the score does not know which runs still rise, a prediction
      from a few epochs misjudges runs unlike its benchmark curves.
    * ``"predicted"``: by predicted final score (hfselect's rule before; the paper's replay).
    * ``"score"``: by current score, as plain successive halving.

    Ties go to the higher current score, then the higher prediction, then the earlier candidate
    (best recalled first).
    """
    if order_by not in HALVING_ORDERS:
        raise ValueError(f"unknown halving order {order_by!r}: use one of {', '.join(HALVING_ORDERS)}")
    position = {model_id: index for index, model_id in enumerate(candidates)}
    # Smaller goes first; a missing (NaN) score or prediction goes last, so it cannot lift anyone.
    by_score = {m: -score[m] if not math.isnan(score[m]) else math.inf for m in candidates}
    by_prediction = {m: -predicted[m] if not math.isnan(predicted[m]) else math.inf for m in candidates}
    primary: dict[str, float]
    if order_by == "rank_sum":
        score_rank = pd.Series(by_score, dtype=float).rank()
        prediction_rank = pd.Series(by_prediction, dtype=float).rank()
        primary = {m: float(score_rank[m] + prediction_rank[m]) for m in candidates}
    else:
        primary = by_prediction if order_by == "predicted" else by_score
    return sorted(candidates, key=lambda m: (primary[m], by_score[m], by_prediction[m], position[m]))


def halving_round(
    alive: Sequence[str],
    score: Mapping[str, float],
    predicted: Mapping[str, float],
    epoch: int,
    margin: float | Mapping[str, float] = 0.0,
    *,
    low_performers: bool = True,
    warming_up: Collection[str] = (),
    order_by: HalvingOrder = DEFAULT_HALVING_ORDER,
    reduction_factor: int = DEFAULT_REDUCTION_FACTOR,
) -> dict[str, str]:
    """One synchronous round's drops: ``model -> reason`` for the candidates to stop after ``epoch``.

    Only the best ``1 / reduction_factor`` in :func:`halving_order` (``order_by``) are kept, rounded
    up (with the default 2 the worse half is dropped; Optuna and Ray Tune call it
    ``reduction_factor`` too), and every candidate :func:`stop_decision` stops against the others
    of ``alive`` is dropped as well. The best prediction is never a low
    performer, so at least one candidate is always kept.

    ``margin`` is one number for every candidate, or one per candidate (e.g. its predictor's
    error bound at this epoch); a NaN or missing margin means nobody knows, and that candidate
    is never called a low performer. ``low_performers=False`` is plain successive halving (with no
    trend, every run below the best would count as a low performer).

    ``warming_up`` names candidates still in their learning-rate warmup: their score says how far
    the warmup has got, not how well they learn, so they are neither judged (kept, whatever they
    score) nor rivals of the others; the better half is taken among the rest.
    """
    check_int("reduction_factor", reduction_factor, minimum=2)  # 1 would drop nobody
    order = [model_id for model_id in alive if model_id not in warming_up]
    ranked = halving_order(order, score, predicted, order_by)
    keep = set(ranked[: math.ceil(len(ranked) / reduction_factor)])
    drops: dict[str, str] = {}
    for place, model_id in enumerate(ranked, start=1):
        if model_id not in keep:
            drops[model_id] = (
                f"{_worse_share(reduction_factor)} at epoch {epoch}: {place} of {len(ranked)} by "
                f"{order_by.replace('_', ' ')}"
                f" (predicted final {predicted[model_id]:.4f}, score {score[model_id]:.4f})"
            )
        elif low_performers:
            slack = margin.get(model_id, math.nan) if isinstance(margin, Mapping) else float(margin)
            rivals = [RivalPoint(m, score[m], predicted[m]) for m in order if m != model_id]
            decision = stop_decision(score[model_id], epoch, predicted[model_id], rivals, slack)
            if decision.stop:
                drops[model_id] = str(decision.reason)
    return drops


def synchronous_round(
    alive: Sequence[str],
    score: Mapping[str, float],
    curves: Mapping[str, Mapping[int, float]],
    epoch: int,
    predictors: Mapping[str, TrendPredictor] | None,
    *,
    margin: float | str = DEFAULT_MARGIN,
    warming_up: Collection[str] = (),
    order_by: HalvingOrder = DEFAULT_HALVING_ORDER,
    reduction_factor: int = DEFAULT_REDUCTION_FACTOR,
) -> tuple[dict[str, float], dict[str, str]]:
    """One round of the synchronous schedule at ``epoch``: ``(predicted finals, drops)``.

    ``curves`` holds each candidate's scores by epoch so far (for the prediction from its whole
    curve). With ``predictors`` the round decides on predicted final scores and margins
    (:func:`halving_round` with low performers); without, on the current score alone (plain
    successive halving). The round of :func:`replay_halving` and of budget-first selection.
    """
    if predictors is None:
        return dict(score), halving_round(
            alive,
            score,
            dict(score),
            epoch,
            0.0,
            low_performers=False,
            warming_up=warming_up,
            order_by="score",
            reduction_factor=reduction_factor,
        )
    predicted = {m: predict_final(predictors[m], score[m], epoch, curves[m]) for m in alive}
    margins = {m: resolve_margin(margin, predictors[m], epoch) for m in alive}
    return predicted, halving_round(
        alive,
        score,
        predicted,
        epoch,
        margins,
        warming_up=warming_up,
        order_by=order_by,
        reduction_factor=reduction_factor,
    )


def _worse_share(reduction_factor: int) -> str:
    """What a round drops, in words: "worse half", "below the best third", ..."""
    if reduction_factor == 2:
        return "worse half"
    kept = {3: "third", 4: "quarter"}.get(reduction_factor, f"1/{reduction_factor}")
    return f"below the best {kept}"


@dataclass
class HalvingReplay:
    """What synchronous halving did on recorded curves (see :func:`replay_halving`)."""

    selected: str
    epochs: dict[str, int]  # epochs each candidate trained; the selected one's is the full budget
    drops: dict[str, str]  # dropped candidate -> reason


def replay_halving(
    curves: Mapping[str, Sequence[float]],
    budget: int,
    *,
    predictors: Mapping[str, TrendPredictor] | None = None,
    margin: float | str = DEFAULT_MARGIN,
    rungs: Sequence[int] | None = None,
    warmup_epochs: Mapping[str, int] | None = None,
    order_by: HalvingOrder = DEFAULT_HALVING_ORDER,
    reduction_factor: int = DEFAULT_REDUCTION_FACTOR,
) -> HalvingReplay:
    """Synchronous halving replayed on recorded validation curves, without training anything.

    ``curves`` maps each candidate (best recalled first) to its validation score after each epoch.
    At every rung (:func:`halving_rungs`, fine selection's sync schedule, or the given ``rungs``)
    the surviving candidates are trained up to the rung and :func:`halving_round` decides, on each
    one's predicted final score (``predictors``; ``margin`` as :func:`stop_decision`'s) or, without
    ``predictors``, on the current score alone (plain successive halving). When the rungs end with
    several candidates left, the best latest prediction wins, as in the sync schedule; the winner
    is trained to ``budget``.

    ``warmup_epochs`` (candidate -> the epochs of its learning-rate warmup, from its protocol): a
    candidate is not judged at a rung that comes before its warmup is over (see
    :func:`halving_round`'s ``warming_up``). Without it every candidate is judged at every rung.
    ``order_by``: how a round orders the candidates with ``predictors`` (:func:`halving_order`);
    without them, by current score. ``reduction_factor``: a round keeps the best
    ``1 / reduction_factor`` (see :func:`halving_round`).
    """
    check_int("reduction_factor", reduction_factor, minimum=2)
    alive = list(curves)
    if not alive:
        raise ValueError("halving needs at least one candidate")
    schedule = sorted(
        {rung for rung in (halving_rungs(budget) if rungs is None else rungs) if 1 <= rung <= budget}
    )
    epochs = dict.fromkeys(alive, 0)
    drops: dict[str, str] = {}
    predicted: dict[str, float] = {}
    for rung in schedule:
        if len(alive) <= 1:
            break
        score = {model: float(curves[model][rung - 1]) for model in alive}
        earlier = {model: dict(enumerate(curves[model][:rung], start=1)) for model in alive}
        for model in alive:
            epochs[model] = rung
        warming_up = {model for model in alive if rung <= (warmup_epochs or {}).get(model, 0)}
        predicted, decided = synchronous_round(
            alive,
            score,
            earlier,
            rung,
            predictors,
            margin=margin,
            warming_up=warming_up,
            order_by=order_by,
            reduction_factor=reduction_factor,
        )
        drops.update(decided)
        alive = [model for model in alive if model not in decided]
    winner = max(alive, key=lambda model: predicted.get(model, 0.0)) if len(alive) > 1 else alive[0]
    epochs[winner] = budget
    return HalvingReplay(winner, epochs, drops)


# -- what reports show ---------------------------------------------------------------------------


def decision_rounds(
    curves: pd.DataFrame, rounds: pd.Series, stops: Mapping[str, tuple[Hashable, str | None]]
) -> list[dict[str, Any]]:
    """Each evaluation round's decisions, from a study's curves (what reports show).

    ``rounds`` labels each row of ``curves`` with its round (rounded as the caller counts rounds);
    ``stops`` maps each stopped run to ``(the round it was stopped in, the reason)``. A stopped run's
    decision is "stop", with its reason, in that round, and "continue" everywhere else.
    """
    report = []
    for label in sorted(set(rounds)):
        decisions = []
        for row in curves[rounds == label].itertuples():
            stop = stops.get(row.model_id)
            stopped_here = stop is not None and stop[0] == label
            predicted = row.predicted_final
            decisions.append(
                {
                    "model_id": row.model_id,
                    "score": float(row.score),
                    "predicted_final": None if predicted != predicted else float(predicted),
                    "decision": "stop" if stopped_here else "continue",
                    **({"reason": stop[1]} if stopped_here and stop is not None else {}),
                }
            )
        report.append({"round": label, "decisions": decisions})
    return report
