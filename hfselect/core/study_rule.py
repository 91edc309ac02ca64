"""The study rule: stop a clearly losing run from the study's own runs, with no benchmark curves.

The trend rule (:func:`hfselect.core.halving.stop_decision`) needs each model's learning curves on
the benchmark datasets to know how far off its predictions may be. A new repository, or a starter
repository with final scores only, has none, and neither does a model the repository never
benchmarked. The study rule needs nothing but the runs of the study itself, compared at the same
epoch, as Optuna's median and successive-halving pruners compare trials; unlike the median pruner
it can decide with a single rival, which a user's first study often has.

**The rule** (:func:`study_rule_decision`). After an evaluation at ``epoch`` a run that scored ``s``
is behind the best rival at that epoch (the other runs' evaluations nearest to it) by a gap
``g``. It is stopped when ``g`` is larger than both

* every gain any run of the study made after ``epoch`` (the best score it reached later, minus its
  score at ``epoch``): to end ahead, the run would have to rise more than any run here ever did;
* its own recent rise carried on to its last epoch (its gain per epoch over the last
  :data:`RISE_WINDOW_EPOCHS` epochs, times the epochs it has left): a run still climbing fast may
  catch up, whatever the others did.

Until some run of the study has been evaluated past ``epoch`` nobody knows how much a run still
gains from there, and the rule does not stop anyone. Replayed on Quick-Tune's real learning curves
(``benchmarks/callback_rules.py``) it saves about as many epochs as Optuna's ``MedianPruner`` while
halting a dataset's best run less often.

Pure: plain numbers in, a :class:`~hfselect.core.halving.StopDecision` out.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property

from hfselect.core.halving import RivalPoint, StopDecision, stop_decision
from hfselect.core.trend import Curve

# A run's own rise is measured over this many epochs before its latest evaluation.
RISE_WINDOW_EPOCHS = 2.0


@dataclass(frozen=True)
class RunCurve:
    """A run's recorded evaluations in a study: ``epochs`` ascending, ``scores`` (higher is better)."""

    epochs: tuple[float, ...]
    scores: tuple[float, ...]
    # The predicted final score recorded with each evaluation (None where there was none).
    predicted: tuple[float | None, ...] = ()

    def nearest(self, epoch: float, tolerance: float) -> int | None:
        """The index of the evaluation nearest to ``epoch``, within ``tolerance`` epochs (None: none)."""
        right = bisect.bisect_left(self.epochs, epoch)
        candidates = [i for i in (right - 1, right) if 0 <= i < len(self.epochs)]
        if not candidates:
            return None
        index = min(candidates, key=lambda i: abs(self.epochs[i] - epoch))
        return index if abs(self.epochs[index] - epoch) <= tolerance else None

    def gain_after(self, index: int) -> float | None:
        """The best score after evaluation ``index`` minus the score there (None: nothing after it)."""
        if index + 1 >= len(self.scores):
            return None
        return self._best_from[index + 1] - self.scores[index]

    @cached_property
    def _best_from(self) -> tuple[float, ...]:
        """The best score from each evaluation on (computed once: every decision asks for it)."""
        best, suffix = -math.inf, []
        for score in reversed(self.scores):
            best = max(best, score)
            suffix.append(best)
        return tuple(reversed(suffix))


def run_curves(points: Iterable[tuple[str, float, float, float | None]]) -> dict[str, RunCurve]:
    """Each run's :class:`RunCurve` from ``(run, epoch, score, predicted_final)`` points in any order."""
    grouped: dict[str, list[tuple[float, float, float | None]]] = {}
    for run, epoch, score, predicted in points:
        grouped.setdefault(run, []).append((float(epoch), float(score), _number(predicted)))
    curves = {}
    for run, rows in grouped.items():
        rows.sort(key=lambda row: row[0])
        epochs, scores, predicted = zip(*rows, strict=True)
        curves[run] = RunCurve(epochs, scores, predicted)
    return curves


def _number(value: float | None) -> float | None:
    """``value`` as a float; None for a missing or NaN one."""
    return None if value is None or value != value else float(value)


def rival_points(rivals: Mapping[str, RunCurve], epoch: float, tolerance: float = 0.5) -> list[RivalPoint]:
    """Each rival's evaluation nearest to ``epoch`` (within ``tolerance``), with its recorded prediction."""
    points = []
    for name, curve in rivals.items():
        index = curve.nearest(epoch, tolerance)
        if index is not None:
            predicted = curve.predicted[index] if index < len(curve.predicted) else None
            points.append(RivalPoint(name, curve.scores[index], predicted))
    return points


def later_gain(rivals: Mapping[str, RunCurve], epoch: float, tolerance: float = 0.5) -> float:
    """The largest gain any run made after ``epoch`` (never below 0); NaN when no run went past it."""
    gains = []
    for curve in rivals.values():
        index = curve.nearest(epoch, tolerance)
        gain = curve.gain_after(index) if index is not None else None
        if gain is not None:
            gains.append(gain)
    return max(0.0, *gains) if gains else math.nan


def own_rise(own: RunCurve, score: float, epoch: float, last_epoch: float) -> float:
    """What the run's recent rise adds by ``last_epoch`` if it carries on (never below 0).

    The rise is the gain per epoch from the run's earliest evaluation in the last
    :data:`RISE_WINDOW_EPOCHS` epochs (before ``epoch``) to ``score``; 0 without such an evaluation.
    """
    window = [
        (e, s) for e, s in zip(own.epochs, own.scores, strict=True) if epoch - RISE_WINDOW_EPOCHS <= e < epoch
    ]
    if not window:
        return 0.0
    start_epoch, start_score = window[0]
    per_epoch = (score - start_score) / (epoch - start_epoch)
    return max(0.0, per_epoch) * max(0.0, last_epoch - epoch)


def study_rule_decision(
    score: float,
    epoch: float,
    own: RunCurve,
    rivals: Mapping[str, RunCurve],
    last_epoch: float,
    *,
    tolerance: float = 0.5,
) -> StopDecision:
    """Stop this run? The study rule of the module docstring.

    Args:
        score: the run's score at ``epoch`` (higher is better).
        epoch: when it was evaluated.
        own: the run's earlier evaluations (those before ``epoch`` count for its rise).
        rivals: the study's other runs, by name.
        last_epoch: the epoch the run would train to.
        tolerance: a rival's evaluation counts at ``epoch`` when it is this close (in epochs), so
            runs evaluated every few steps still meet.

    Returns:
        the decision; its ``rival`` is the best rival at ``epoch`` and its ``margin`` the gap the
        run was allowed (NaN: unknown, nobody is stopped).
    """
    best = max(rival_points(rivals, epoch, tolerance), key=lambda rival: rival.score, default=None)
    if best is None or best.score <= score:
        return StopDecision(False, None, best)
    gained = later_gain(rivals, epoch, tolerance)
    rise = own_rise(own, score, epoch, last_epoch)
    allowed = max(gained, rise)
    gap = best.score - score
    if math.isnan(gained) or not gap > allowed:
        return StopDecision(False, None, best, allowed)
    reason = (
        f"behind {best.model_id} at epoch {epoch:g} by {gap:.4f}: more than any run of this study "
        f"gained after epoch {epoch:g} ({gained:.4f}) and more than its own rise would add by epoch "
        f"{last_epoch:g} ({rise:.4f})"
    )
    return StopDecision(True, reason, best, allowed)


def study_decision(
    score: float,
    epoch: float,
    predicted_final: float,
    own: RunCurve,
    rivals: Mapping[str, RunCurve],
    last_epoch: float,
    *,
    margin: float = math.nan,
    min_final_score: float | None = None,
    tolerance: float = 0.5,
) -> StopDecision:
    """Stop a run that has no benchmark curves? The study's own trend, then the study rule.

    Where the study's finished runs give a trend predictor (:func:`finished_curves`),
    ``predicted_final`` is its prediction and ``margin`` its error bound at ``epoch``, and the trend
    rule (:func:`~hfselect.core.halving.stop_decision`, with ``min_final_score``) may stop the run;
    a NaN ``margin`` (no such trend yet) stops nobody on the rivals. Then
    :func:`study_rule_decision`.
    """
    trend = stop_decision(
        score,
        epoch,
        predicted_final,
        rival_points(rivals, epoch, tolerance),
        margin,
        min_final_score=min_final_score,
    )
    if trend.stop:
        return trend
    return study_rule_decision(score, epoch, own, rivals, last_epoch, tolerance=tolerance)


def finished_curves(runs: Mapping[str, RunCurve], finished: Iterable[str]) -> list[Curve]:
    """The whole-epoch learning curves of the study's ``finished`` runs, for a trend predictor.

    A finished run trained to its end, so its curve is a learning curve of the target itself. Only
    evaluations at whole epochs count, and only curves of two epochs or more carry a trend; each
    curve's group is its run, so a held-out error leaves out one run at a time.
    """
    curves = []
    for run in finished:
        curve = runs.get(run)
        if curve is None:
            continue
        by_epoch = {round(e): s for e, s in zip(curve.epochs, curve.scores, strict=True) if _whole(e)}
        length = 0
        while length + 1 in by_epoch:
            length += 1
        if length >= 2:
            curves.append(Curve(tuple(by_epoch[e] for e in range(1, length + 1)), run))
    return curves


def _whole(epoch: float) -> bool:
    return epoch >= 1 and abs(epoch - round(epoch)) < 1e-6
