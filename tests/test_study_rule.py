"""The study rule: the callback's rule for a model without benchmark curves (hfselect.core.study_rule)."""

from __future__ import annotations

import math

import pytest

from hfselect.core.study_rule import (
    RunCurve,
    finished_curves,
    later_gain,
    own_rise,
    rival_points,
    run_curves,
    study_decision,
    study_rule_decision,
)


def curve(*scores: float, start: float = 1.0) -> RunCurve:
    """A run evaluated after every epoch from ``start``."""
    return RunCurve(tuple(start + i for i in range(len(scores))), scores)


FIRST = RunCurve((), ())  # a run's own curve before its first evaluation


def test_a_run_behind_by_more_than_any_later_gain_is_stopped() -> None:
    # The first study: a strong run finished (0.93 after 2 epochs, 1.0 after 3), a flat one at 0.58.
    rivals = {"strong": curve(0.6, 0.93, 1.0, 1.0, 1.0, 1.0)}
    decision = study_rule_decision(0.58, 2.0, curve(0.58), rivals, last_epoch=6)
    assert decision.stop and decision.rival is not None and decision.rival.model_id == "strong"
    assert decision.margin == pytest.approx(0.07)  # what "strong" still gained after epoch 2
    assert "behind strong at epoch 2 by 0.3500" in str(decision.reason)
    # At epoch 1 the strong run was only 0.02 ahead and gained 0.4 later: the gap could still close.
    assert not study_rule_decision(0.58, 1.0, FIRST, rivals, last_epoch=6).stop


def test_a_run_still_rising_fast_is_spared() -> None:
    rivals = {"strong": curve(0.6, 0.93, 1.0, 1.0, 1.0, 1.0)}
    # 0.3 -> 0.58 in one epoch, 4 epochs left: its own rise would add far more than the 0.35 gap.
    rising = study_rule_decision(0.58, 2.0, curve(0.3), rivals, last_epoch=6)
    assert not rising.stop and rising.margin == pytest.approx(0.28 * 4)
    assert own_rise(curve(0.3), 0.58, 2.0, 6) == pytest.approx(1.12)
    assert own_rise(curve(0.7), 0.58, 2.0, 6) == 0.0  # falling: no rise
    assert own_rise(curve(0.1, 0.2, 0.3), 0.5, 4.0, 6) == pytest.approx(
        (0.5 - 0.2) / 2 * 2
    )  # the last 2 epochs


def test_a_large_late_gain_anywhere_in_the_study_keeps_a_run_going() -> None:
    rivals = {"strong": curve(0.9, 0.92, 0.93), "late bloomer": curve(0.2, 0.25, 0.95)}
    assert later_gain(rivals, 2.0) == pytest.approx(0.70)
    assert not study_rule_decision(0.5, 2.0, curve(0.5), rivals, last_epoch=3).stop


def test_nobody_is_stopped_before_a_run_went_past_the_epoch_or_when_ahead() -> None:
    running = {"other": curve(0.9, 0.95)}  # evaluated up to epoch 2 only
    assert math.isnan(later_gain(running, 2.0))
    assert not study_rule_decision(0.1, 2.0, curve(0.1), running, last_epoch=6).stop
    assert not study_rule_decision(0.1, 1.0, FIRST, {}, last_epoch=6).stop  # the study's first run
    ahead = study_rule_decision(0.99, 1.0, FIRST, {"other": curve(0.9, 0.95)}, last_epoch=6)
    assert not ahead.stop and ahead.rival is not None


def test_rivals_meet_within_half_an_epoch() -> None:
    steps = RunCurve((0.5, 1.0, 1.5, 2.0, 2.5), (0.6, 0.9, 0.95, 0.96, 0.97), (None, 0.99, None, None, None))
    assert steps.nearest(1.2, 0.5) == 1 and steps.nearest(3.2, 0.5) is None
    assert steps.gain_after(1) == pytest.approx(0.07) and steps.gain_after(4) is None
    assert rival_points({"s": steps}, 1.1) == [rival_points({"s": steps}, 1.0)[0]]
    assert rival_points({"s": steps}, 1.0)[0].predicted_final == 0.99


def test_run_curves_and_finished_curves() -> None:
    points = [("a", 2.0, 0.8, None), ("a", 1.0, 0.5, 0.7), ("b", 1.0, 0.4, math.nan), ("a", 1.5, 0.6, None)]
    runs = run_curves(points)
    assert runs["a"] == RunCurve((1.0, 1.5, 2.0), (0.5, 0.6, 0.8), (0.7, None, None))
    assert runs["b"].predicted == (None,)
    # Whole epochs only, two or more of them, of the runs that finished; each run its own group.
    curves = finished_curves(runs, ["a", "b", "missing"])
    assert [(c.scores, c.group) for c in curves] == [((0.5, 0.8), "a")]


def test_study_decision_adds_the_studys_trend_and_min_final_score() -> None:
    rivals = {"strong": RunCurve((1.0,), (0.9,), (0.95,))}  # running: no later gain known yet
    own = FIRST
    assert not study_decision(0.5, 1.0, 0.6, own, rivals, 6).stop  # no trend margin: the study rule alone
    trend = study_decision(0.5, 1.0, 0.6, own, rivals, 6, margin=0.1)
    assert trend.stop and "predicted low performer" in str(trend.reason)  # 0.6 + 0.1 < 0.95
    floor = study_decision(0.95, 1.0, 0.96, own, {}, 6, min_final_score=0.97)
    assert floor.stop and "min_final_score" in str(floor.reason)
