"""The halving rule (hfselect.core.halving): one decision for every schedule, the callback and the replay."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from hfselect.core.halving import (
    RivalPoint,
    candidate_predictors,
    decision_rounds,
    halving_order,
    halving_round,
    halving_rungs,
    predict_final,
    replay_halving,
    rivals_at,
    stop_decision,
    successive_halving_epochs,
)
from hfselect.core.trend import (
    Curve,
    HeadroomTrendPredictor,
    NeighboursTrendPredictor,
    TrendPredictor,
    make_predictor,
)


@pytest.mark.parametrize(
    ("candidates", "budget", "expected"),
    [(1, 5, 5), (2, 5, 2 + 4), (4, 5, 4 + 2 + 3), (8, 3, 8 + 4 + 2)],  # 8 candidates: budget ends first
)
def test_successive_halving_epochs(candidates: int, budget: int, expected: int) -> None:
    assert successive_halving_epochs(candidates, budget) == expected


def test_successive_halving_epochs_follows_the_rungs_and_the_reduction_factor() -> None:
    # 9 candidates, every epoch, a third kept: 9 at epoch 1, 3 at epoch 2, then 1 trains to 5.
    assert successive_halving_epochs(9, 5, reduction_factor=3) == 9 + 3 + 3
    assert successive_halving_epochs(9, 5) == 9 + 5 + 3 + 2 + 1  # the better half: 9, 5, 3, 2, then 1
    # The library's rungs of a 50-epoch protocol (3, 6, 12, ...): 4 candidates for 3 epochs, 2 for 3 more.
    assert successive_halving_epochs(4, 50, rungs=[3, 6, 12, 24, 48]) == 4 * 3 + 2 * 3 + (50 - 6)
    assert successive_halving_epochs(4, 50, rungs=[3, 6], reduction_factor=4) == 4 * 3 + (50 - 3)
    with pytest.raises(ValueError, match="reduction_factor"):
        successive_halving_epochs(4, 5, reduction_factor=1)


def test_halving_round_drops_the_worse_half_and_predicted_low_performers() -> None:
    alive = ["a", "b", "c", "d"]
    score = {"a": 0.9, "b": 0.6, "c": 0.7, "d": 0.5}
    predicted = {"a": 0.92, "b": 0.95, "c": 0.75, "d": 0.6}
    drops = halving_round(alive, score, predicted, epoch=1)
    # c and d are the worse half by prediction; b is kept: nobody who scored higher is predicted higher.
    assert set(drops) == {"c", "d"} and drops["c"].startswith("worse half")
    predicted["b"] = 0.91  # now a (higher score, higher prediction) outranks b: a predicted low performer
    drops = halving_round(alive, score, predicted, epoch=1, order_by="predicted")
    assert set(drops) == {"b", "c", "d"} and drops["b"].startswith("predicted low performer")
    assert halving_round(["a"], score, predicted, epoch=2) == {}


def test_halving_order_sums_the_ranks_by_score_and_by_prediction() -> None:
    # r rises (4th by score, 1st by prediction), s leads but is predicted to stall (1st, 4th); m is
    # 2nd by both and n 3rd by both. Rank sums: m 4, s 5, r 5, n 6 (s before r: the higher score).
    alive = ["r", "s", "m", "n"]
    score = {"r": 0.50, "s": 0.80, "m": 0.70, "n": 0.60}
    predicted = {"r": 0.90, "s": 0.70, "m": 0.85, "n": 0.80}
    assert halving_order(alive, score, predicted, "predicted") == ["r", "m", "n", "s"]
    assert halving_order(alive, score, predicted, "score") == ["s", "m", "n", "r"]
    assert halving_order(alive, score, predicted) == ["m", "s", "r", "n"]
    drops = halving_round(alive, score, predicted, epoch=3, margin=float("nan"))
    assert set(drops) == {"r", "n"}
    assert drops["n"] == "worse half at epoch 3: 4 of 4 by rank sum (predicted final 0.8000, score 0.6000)"


def test_halving_order_breaks_ties_on_the_score_then_the_recall_order() -> None:
    # b and c tie on the rank sum (2 + 1 and 1 + 2): the higher current score goes first.
    score = {"a": 0.5, "b": 0.7, "c": 0.6}
    predicted = {"a": 0.6, "b": 0.8, "c": 0.9}
    assert halving_order(["a", "b", "c"], score, predicted) == ["b", "c", "a"]
    # A missing (NaN) prediction ranks last, whatever the order (score ranks b c a d, prediction d b a c).
    score = {"a": 0.5, "b": 0.7, "c": 0.6, "d": 0.4}
    predicted = {"a": 0.6, "b": 0.8, "c": math.nan, "d": 0.9}
    assert halving_order(["a", "b", "c", "d"], score, predicted) == ["b", "d", "c", "a"]  # 6, 3, 6, 5
    assert halving_order(["a", "b", "c", "d"], score, predicted, "predicted") == ["d", "b", "a", "c"]
    assert halving_order(["a", "b", "c", "d"], score, predicted, "score") == ["b", "c", "a", "d"]
    # Equal in everything: the better recalled (earlier) one first.
    assert halving_order(["y", "x"], {"x": 0.5, "y": 0.5}, {"x": 0.6, "y": 0.6}) == ["y", "x"]
    with pytest.raises(ValueError, match="unknown halving order 'best'"):
        halving_order(["x"], {"x": 0.5}, {"x": 0.5}, "best")  # type: ignore[arg-type]


def test_halving_round_margins_spare_a_late_bloomer() -> None:
    # Epoch 1 of a 4-class task: the late bloomer l is still at chance, e scored a little higher and
    # is predicted a little higher. Both are in the better half.
    alive = ["e", "l", "x", "y"]
    score = {"e": 0.33, "l": 0.25, "x": 0.25, "y": 0.24}
    predicted = {"e": 0.71, "l": 0.64, "x": 0.40, "y": 0.30}
    assert set(halving_round(alive, score, predicted, epoch=1)) == {"l", "x", "y"}  # the paper's rule
    # With a margin of the predictor's typical error (0.1 here), 0.64 + 0.1 is not below 0.71: kept.
    drops = halving_round(alive, score, predicted, epoch=1, margin={"e": 0.1, "l": 0.1, "x": 0.1, "y": 0.1})
    assert set(drops) == {"x", "y"}
    # A margin that is too small does not save it; an unknown (NaN or missing) one never condemns.
    drops = halving_round(alive, score, predicted, epoch=1, margin={"l": 0.05})
    assert drops["l"].startswith("predicted low performer") and "+ margin 0.0500" in drops["l"]
    assert "l" not in halving_round(alive, score, predicted, epoch=1, margin={"l": float("nan")})
    assert "l" not in halving_round(alive, score, predicted, epoch=1, margin={})


@pytest.mark.parametrize(
    ("budget", "rungs"), [(1, [1]), (3, [1, 2]), (5, [1, 2, 4]), (50, [3, 6, 12, 24, 48])]
)
def test_halving_rungs_start_at_a_sixteenth_of_the_budget(budget: int, rungs: list[int]) -> None:
    assert halving_rungs(budget) == rungs


def test_replay_halving_on_recorded_curves() -> None:

    curves = {
        "early": [0.6, 0.62, 0.63, 0.64],  # leads after one epoch, ends low
        "late": [0.35, 0.7, 0.8, 0.9],
        "mid": [0.3, 0.4, 0.5, 0.6],
        "flat": [0.1, 0.1, 0.1, 0.1],
    }
    # Plain successive halving after epochs 1 and 2: the early leader and the late bloomer survive
    # epoch 1's cut, the late bloomer wins at epoch 2 and trains to the budget.
    plain = replay_halving(curves, 4, rungs=[1, 2])
    assert plain.selected == "late"
    assert plain.epochs == {"early": 2, "late": 4, "mid": 1, "flat": 1}
    assert set(plain.drops) == {"early", "flat", "mid"}
    # With trend predictors and the paper's margin 0, the late bloomer is a predicted low performer
    # after epoch 1 (predicted below the early leader, which scored higher); with "auto" and a
    # predictor whose error is unknown (one curve), it is not.
    predictors = {m: HeadroomTrendPredictor([Curve((0.3, 0.9, 0.95, 0.97))]) for m in curves}
    paper = replay_halving(curves, 4, predictors=predictors, margin=0.0, rungs=[1, 2])
    assert paper.selected == "early" and "low performer" in paper.drops["late"]
    auto = replay_halving(curves, 4, predictors=predictors, margin="auto", rungs=[1, 2])
    assert auto.selected == "late" and auto.epochs["late"] == 4
    assert replay_halving({"only": [0.5, 0.6]}, 2).epochs == {"only": 2}


def test_a_round_keeps_the_best_share_its_reduction_factor_says() -> None:
    alive = ["a", "b", "c", "d", "e", "f", "g"]
    score = dict(zip(alive, [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3], strict=True))
    for factor, kept in ((2, {"a", "b", "c", "d"}), (3, {"a", "b", "c"}), (4, {"a", "b"})):
        # Plain halving (no trend): the best ceil(7 / factor) by score go on.
        drops = halving_round(
            alive, score, dict(score), epoch=3, low_performers=False, reduction_factor=factor
        )
        assert set(alive) - set(drops) == kept
    drops = halving_round(alive, score, dict(score), epoch=3, low_performers=False, reduction_factor=3)
    assert drops["d"].startswith("below the best third at epoch 3: 4 of 7")
    for bad in (1, 0, 2.5, True):
        with pytest.raises(ValueError, match="reduction_factor must be an integer >= 2"):
            halving_round(alive, score, dict(score), epoch=3, reduction_factor=bad)  # type: ignore[arg-type]


def test_replay_halving_with_a_reduction_factor_of_three() -> None:
    # Six runs, each better than the next at every epoch: 6 -> 2 after epoch 1, 2 -> 1 after epoch 2.
    curves = {name: [0.1 * rank + 0.01 * epoch for epoch in range(4)] for rank, name in enumerate("fedcba")}
    replay = replay_halving(curves, 4, rungs=[1, 2], reduction_factor=3)
    assert replay.selected == "a"
    assert replay.epochs == {"f": 1, "e": 1, "d": 1, "c": 1, "b": 2, "a": 4}
    halved = replay_halving(curves, 4, rungs=[1, 2], reduction_factor=2)
    assert halved.epochs == {"f": 1, "e": 1, "d": 1, "c": 2, "b": 2, "a": 4}


class _FixedPrediction(TrendPredictor):
    """Predicts one final score whatever the run has scored (no curves: its error bound is unknown)."""

    def __init__(self, final: float) -> None:
        super().__init__()
        self.final = final

    def predict(self, score: float, epoch: float) -> float:
        return self.final


def test_replay_halving_orders_the_worse_half_as_asked() -> None:
    # The candidates of test_halving_order_sums_the_ranks_by_score_and_by_prediction, after epoch 1.
    curves = {"r": [0.50, 0.9], "s": [0.80, 0.8], "m": [0.70, 0.85], "n": [0.60, 0.7]}
    predicted = {"r": 0.90, "s": 0.70, "m": 0.85, "n": 0.80}
    predictors = {model: _FixedPrediction(final) for model, final in predicted.items()}
    by_rank_sum = replay_halving(curves, 2, predictors=predictors, margin="auto", rungs=[1])
    assert set(by_rank_sum.drops) == {"r", "n"} and by_rank_sum.selected == "m"
    by_prediction = replay_halving(curves, 2, predictors=predictors, rungs=[1], order_by="predicted")
    assert set(by_prediction.drops) == {"s", "n"} and by_prediction.selected == "r"
    # Without predictors the order is the current score's, whatever order_by says.
    assert set(replay_halving(curves, 2, rungs=[1], order_by="predicted").drops) == {"r", "n"}


def test_runs_in_their_warmup_are_not_judged() -> None:
    alive = ["warm", "a", "b", "c"]
    score = {"warm": 0.05, "a": 0.6, "b": 0.5, "c": 0.4}
    # In its warmup "warm" is kept and no rival of the others: the better half is taken among a, b, c,
    # and with margin 0 it would otherwise be the first low performer.
    drops = halving_round(alive, score, dict(score), epoch=3, margin=0.0, warming_up={"warm"})
    assert "warm" not in drops and set(drops) == {"b", "c"}
    assert "warm" in halving_round(alive, score, dict(score), epoch=3, margin=0.0)
    assert halving_round(["warm"], score, dict(score), epoch=3, warming_up={"warm"}) == {}

    curves = {
        "slow": [0.02, 0.03, 0.05, 0.7, 0.8, 0.9],  # 3 warmup epochs, then the best run
        "fast": [0.5, 0.55, 0.6, 0.62, 0.63, 0.64],
    }
    # Judged at epoch 2, the slow starter is dropped; with its warmup known it is judged only at the
    # first rung after it (4), where it leads, and wins.
    assert replay_halving(curves, 6, rungs=[2, 4]).selected == "fast"
    replay = replay_halving(curves, 6, rungs=[2, 4], warmup_epochs={"slow": 3})
    assert replay.selected == "slow" and replay.epochs == {"slow": 6, "fast": 4}
    # A warmup past the last rung keeps the run to the end of the rungs: the better latest score wins.
    late = replay_halving(curves, 6, rungs=[2], warmup_epochs={"slow": 3})
    assert late.selected == "fast" and late.epochs == {"slow": 2, "fast": 6}


def test_stop_decision_is_the_papers_rule_with_a_margin() -> None:
    rivals = [RivalPoint("a", 0.9, 0.92), RivalPoint("b", 0.6, 0.99), RivalPoint("c", 0.8, 0.95)]
    # b is predicted highest but scored lower: only a and c vouch; c's prediction is the bar.
    decision = stop_decision(0.7, 1, 0.9, rivals, margin=0)
    assert decision.stop and decision.rival == rivals[2] and decision.margin == 0
    assert (
        decision.reason
        == "predicted low performer at epoch 1: predicted final 0.9000 < 0.9500 of c, which scored higher"
    )
    spared = stop_decision(0.7, 1, 0.9, rivals, margin=0.05)  # 0.9 + 0.05 is not below 0.95
    assert not spared.stop and spared.reason is None and spared.rival == rivals[2]
    assert "+ margin 0.0400" in str(stop_decision(0.7, 1.5, 0.9, rivals, margin=0.04).reason)
    assert not stop_decision(0.7, 1, 0.9, rivals, margin=math.nan).stop  # unknown margin: never
    assert not stop_decision(0.9, 1, 0.5, rivals, margin=0).stop  # nobody scored higher
    # A rival without a prediction does not vouch; ties go to the first rival.
    assert stop_decision(0.7, 1, 0.5, [RivalPoint("x", 0.8, None)], margin=0).rival is None
    tied = stop_decision(0.1, 1, 0.5, [RivalPoint("x", 0.8, 0.9), RivalPoint("y", 0.8, 0.9)], margin=0)
    assert tied.rival is not None and tied.rival.model_id == "x"


def test_stop_decision_auto_margin_and_min_final_score() -> None:
    predictor = HeadroomTrendPredictor([Curve((0.6, 0.8)), Curve((0.2, 0.6)), Curve((0.5, 0.9))])
    rivals = [RivalPoint("a", 0.9, 0.95)]
    auto = stop_decision(0.5, 1, 0.9, rivals, "auto", predictor=predictor)
    assert auto.margin == pytest.approx(predictor.error_bound(1))
    assert auto.stop == (0.9 + predictor.error_bound(1) < 0.95)
    assert math.isnan(stop_decision(0.5, 1, 0.9, rivals, "auto").margin)  # no predictor: unknown
    floor = stop_decision(0.5, 1, 0.4, [], 0, min_final_score=0.6)
    assert floor.stop and floor.reason == "predicted final 0.4000 is below min_final_score 0.6000"


def test_rivals_are_each_other_runs_evaluation_nearest_the_epoch() -> None:
    curves = pd.DataFrame(
        [
            ("a", 1.0, 0.8, 0.9),
            ("a", 2.0, 0.85, 0.91),
            ("b", 1.0, 0.6, None),
            ("c", 1.1, 0.9, 0.92),  # evaluated every few steps: still compared at epoch 1
            ("c", 0.6, 0.5, 0.7),
            ("d", 1.0, 0.7, 0.8),  # the run itself
            ("e", 3.0, 0.99, 0.99),  # too far away
        ],
        columns=["model_id", "epoch", "score", "predicted_final"],
    )
    rivals = {rival.model_id: rival for rival in rivals_at(curves, "d", 1)}
    assert rivals == {
        "a": RivalPoint("a", 0.8, 0.9),
        "b": RivalPoint("b", 0.6, None),
        "c": RivalPoint("c", 0.9, 0.92),
    }
    assert stop_decision(0.7, 1, 0.8, rivals.values(), 0).rival == rivals["c"]


def test_halving_round_and_the_callbacks_rivals_decide_alike() -> None:
    # The same recorded round, decided by the sync schedule and by the rule on the study's rows.
    alive = ["e", "l", "x", "y"]
    score = {"e": 0.33, "l": 0.25, "x": 0.25, "y": 0.24}
    predicted = {"e": 0.71, "l": 0.64, "x": 0.40, "y": 0.30}
    curves = pd.DataFrame(
        [(m, 1.0, score[m], predicted[m]) for m in alive],
        columns=["model_id", "epoch", "score", "predicted_final"],
    )
    for margin in (0.0, 0.05, 0.1):
        sync = halving_round(alive, score, predicted, 1, margin)
        kept = [m for m in alive if not sync.get(m, "").startswith("worse half")]
        by_rule = {
            m for m in kept if stop_decision(score[m], 1, predicted[m], rivals_at(curves, m, 1), margin).stop
        }
        assert by_rule == {m for m in kept if m in sync}


def test_predict_final_sees_the_whole_curve_only_when_it_is_known() -> None:
    rising = [Curve((0.1, 0.3, 0.9)), Curve((0.12, 0.31, 0.92))]
    flat = [Curve((0.3, 0.3, 0.3)), Curve((0.31, 0.3, 0.32))]
    predictor = NeighboursTrendPredictor(rising + flat, k=2)
    assert predict_final(predictor, 0.3, 2, {1: 0.1}) == predictor.predict_curve([0.1, 0.3])
    assert predict_final(predictor, 0.3, 2, {}) == predictor.predict(0.3, 2)  # epoch 1 unknown
    assert predict_final(predictor, 0.3, 1.5, {1: 0.1}) == predictor.predict(0.3, 1.5)  # mid-epoch


def test_candidate_predictors_share_one_pool() -> None:
    rows = [
        (model, dataset, "p", epoch, score)
        for model, datasets in {"a": 4, "b": 1}.items()
        for dataset in range(datasets)
        for epoch, score in enumerate((0.2 + dataset / 10, 0.5, 0.7), start=1)
    ]
    curves = pd.DataFrame(rows, columns=["model_id", "dataset", "protocol", "epoch", "score"])
    predictors = candidate_predictors(curves, ["a", "b", "new"], "headroom")
    assert len(predictors["a"].curves) == 4  # its own curves suffice
    assert (
        len(predictors["b"].curves) == 5 and len(predictors["new"].curves) == 5
    )  # pooled with every model's
    assert len(candidate_predictors(curves, ["b"], "neighbours")["b"].curves) == 5
    expected = make_predictor("headroom", "b", {"a": predictors["a"].curves, "b": predictors["b"].curves[:1]})
    assert predictors["b"].predict(0.4, 1) == pytest.approx(expected.predict(0.4, 1))


def test_decision_rounds_report_each_stop_in_its_round() -> None:
    curves = pd.DataFrame(
        [("a", 1.0, 0.8, 0.9), ("b", 1.0, 0.5, float("nan")), ("a", 2.0, 0.85, 0.91)],
        columns=["model_id", "epoch", "score", "predicted_final"],
    )
    rounds = decision_rounds(curves, curves["epoch"].map(round), {"b": (1, "worse half")})
    assert [r["round"] for r in rounds] == [1, 2]
    assert rounds[0]["decisions"] == [
        {"model_id": "a", "score": 0.8, "predicted_final": 0.9, "decision": "continue"},
        {"model_id": "b", "score": 0.5, "predicted_final": None, "decision": "stop", "reason": "worse half"},
    ]
    assert rounds[1]["decisions"][0]["decision"] == "continue"
