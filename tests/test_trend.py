"""Trend predictors and the study store."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hfselect.core.halving import RivalPoint, rivals_at, stop_decision
from hfselect.core.trend import (
    DEFAULT_PREDICTOR,
    Curve,
    HeadroomTrendPredictor,
    KMeansTrendPredictor,
    TrendPredictor,
    curve_sources,
    curves_by_model,
    describe_trend_sources,
    evaluate_predictors,
    make_predictor,
    resolve_margin,
)
from hfselect.store import ModelRepository
from hfselect.store.studies import COMPLETED, Study, Trial


def test_curve_interpolates_between_epochs() -> None:
    curve = Curve((0.5, 0.7, 0.8))
    assert curve.at(0.3) == 0.5 and curve.at(2) == 0.7 and curve.at(2.5) == pytest.approx(0.75)
    assert curve.at(9) == curve.final == 0.8


def test_headroom_predictor_closes_the_median_share_of_headroom() -> None:
    # After epoch 1 these curves close 50%, 50% and 80% of what is left: the median is 50%.
    predictor = HeadroomTrendPredictor([Curve((0.6, 0.8)), Curve((0.2, 0.6)), Curve((0.5, 0.9))])
    assert predictor.predict(0.4, 1) == pytest.approx(0.4 + 0.5 * 0.6)
    assert predictor.predict(0.9, 2) == 0.9  # the curves end at epoch 2: nothing left to predict
    assert predictor.predict(0.3, 1) < predictor.predict(0.4, 1)  # monotone in the current score
    assert HeadroomTrendPredictor([]).predict(0.42, 1) == 0.42


def test_kmeans_predictor_is_the_papers_cluster_lookup() -> None:
    curves = [Curve((0.1, 0.3)), Curve((0.12, 0.35)), Curve((0.8, 0.9)), Curve((0.82, 0.95))]
    predictor = KMeansTrendPredictor(curves, n_clusters=2)
    assert predictor.predict(0.11, 1) == pytest.approx(0.325)
    assert predictor.predict(0.9, 1) == pytest.approx(0.925)
    assert KMeansTrendPredictor([]).predict(0.3, 1) == 0.3


def long_curves() -> pd.DataFrame:
    rows = []
    for model, speed in (("fast", 0.8), ("slow", 0.3)):
        for dataset, start in (("a", 0.3), ("b", 0.5), ("c", 0.4), ("d", 0.6)):
            score = start
            for epoch in range(1, 5):
                rows.append(
                    {"model_id": model, "dataset": dataset, "protocol": "p", "epoch": epoch, "score": score}
                )
                score += speed * (1 - score) * 0.5
    return pd.DataFrame(rows)


def test_make_predictor_pools_peers_when_own_curves_are_few() -> None:
    curves = curves_by_model(long_curves())
    assert sorted(curves) == ["fast", "slow"] and len(curves["fast"]) == 4
    assert len(make_predictor("headroom", "fast", curves).curves) == 4
    assert len(make_predictor("headroom", "new-model", curves).curves) == 8  # every model's curves
    assert len(make_predictor("headroom", "new-model", curves, peers=["slow"]).curves) == 4
    assert type(make_predictor("current", "fast", curves)) is TrendPredictor
    with pytest.raises(ValueError, match="unknown trend predictor"):
        make_predictor("magic", "fast", curves)


def test_curve_sources_say_whose_curves_a_predictor_is_fitted_on() -> None:
    curves = curves_by_model(long_curves())
    assert curve_sources("fast", curves) == {"fast": 4}
    assert curve_sources("published-only", curves) == {"fast": 4, "slow": 4}
    assert curve_sources("published-only", curves, peers=["slow"]) == {"slow": 4}
    assert curve_sources("published-only", {}) == {}


def test_candidates_without_curves_are_told_which_prediction_applies() -> None:
    curves = curves_by_model(long_curves())
    assert describe_trend_sources(["fast", "slow"], curves) == []  # their own curves: nothing to say
    [pooled] = describe_trend_sources(["fast", "published-only"], curves)
    assert (
        "(published-only)" in pooled
        and f"{DEFAULT_PREDICTOR} predictor fitted on the pooled curves of 2 other model(s)" in pooled
    )
    assert "auto margin is that pooled predictor's held-out error" in pooled
    # No curves anywhere (a starter repository): the current score, and the margin follows from it.
    [auto] = describe_trend_sources(["a", "b"], {})
    assert "predicted final score is their current score" in auto and "plain successive halving" in auto
    [zero] = describe_trend_sources(["a", "b"], {}, margin=0)
    assert "scoring below a better-scoring rival is dropped" in zero and "after its first epoch" in zero
    [some] = describe_trend_sources(["a", "b"], {}, margin=0.05)
    assert "its score plus the margin 0.05 is below a better-scoring rival's" in some


def test_evaluate_predictors_reports_held_out_error() -> None:
    table = evaluate_predictors(long_curves(), epochs=(1, 2))
    assert set(table.predictor) == {"kmeans", "headroom", "current"} and (table.n == 8).all()
    errors = table.set_index(["predictor", "epoch"]).mae
    # Every curve here closes a constant share of its headroom: the headroom predictor is exact.
    assert errors["headroom", 1] == pytest.approx(0, abs=1e-9)
    assert errors["current", 1] > errors["headroom", 1]


def test_study_records_points_trials_and_rivals(tmp_path: Path) -> None:
    with ModelRepository(tmp_path / "repo.sqlite") as repository:
        study = Study(repository, "s", target="imdb", config={"epochs": 3})
        study.record_point("a", 1, 0.8, 0.9)
        study.record_point("b", 1, 0.6, 0.95)
        study.record_point("c", 1.1, 0.9, 0.92)  # evaluated every few steps: still compared at epoch 1
        # The study's rows are the callback's rivals (hfselect.core.halving.rivals_at).
        assert stop_decision(0.7, 1, 0.5, rivals_at(study.curves(), "d", 1), 0).rival == RivalPoint(
            "c", 0.9, 0.92
        )
        assert stop_decision(0.9, 1, 0.5, rivals_at(study.curves(), "c", 1), 0).rival is None
        study.record_point("a", 1, 0.85, 0.91)  # a resumed run replaces its point
        assert len(study.curves()) == 3
        study.set_trial(Trial("a", COMPLETED, epochs_trained=3, final_score=0.9, details={"x": 1}))
        assert study.trials()["a"].details == {"x": 1}
        assert Study(repository, "s").info["config"] == {"epochs": 3}


def test_holdout_error_is_the_leave_one_curve_out_error() -> None:
    curves = [Curve((0.6, 0.8)), Curve((0.2, 0.6)), Curve((0.5, 0.9))]
    # "current" predicts the epoch-1 score: its error is |final - epoch-1 score| on each curve.
    assert TrendPredictor(curves).holdout_error(1) == pytest.approx((0.2 + 0.4 + 0.4) / 3)
    # Headroom shares after epoch 1: 0.5, 0.5, 0.8. Leaving one out, the median of the other two:
    # 0.65 for the first two curves, 0.5 for the third.
    expected = [
        abs(0.6 + 0.65 * 0.4 - 0.8),
        abs(0.2 + 0.65 * 0.8 - 0.6),
        abs(0.5 + 0.5 * 0.5 - 0.9),
    ]
    assert HeadroomTrendPredictor(curves).holdout_error(1) == pytest.approx(sum(expected) / 3)
    # Curves that end at that epoch say nothing; fewer than two usable curves: unknown.
    assert math.isnan(HeadroomTrendPredictor(curves).holdout_error(2))
    assert math.isnan(HeadroomTrendPredictor(curves[:1]).holdout_error(1))
    assert math.isnan(KMeansTrendPredictor([]).holdout_error(1))
    kmeans = KMeansTrendPredictor([Curve((0.1, 0.3)), Curve((0.12, 0.35)), Curve((0.8, 0.9))], n_clusters=2)
    assert kmeans.holdout_error(1) >= 0


def test_error_bound_is_a_high_quantile_of_the_held_out_errors() -> None:
    # "current" predicts the epoch-1 score: held-out errors 0.2, 0.4, 0.4, 0.1 and, for the late
    # bloomer, 0.9. Their mean (0.4) is passed by one run in five; the 90th percentile is not.
    curves = [
        Curve((0.6, 0.8)),
        Curve((0.2, 0.6)),
        Curve((0.5, 0.9)),
        Curve((0.7, 0.8)),
        Curve((0.05, 0.95)),
    ]
    predictor = TrendPredictor(curves)
    errors = [0.2, 0.4, 0.4, 0.1, 0.9]
    assert predictor.holdout_error(1) == pytest.approx(np.mean(errors))
    assert predictor.error_bound(1) == pytest.approx(np.quantile(errors, 0.9))
    assert predictor.error_bound(1, coverage=0.5) == pytest.approx(0.4)
    assert sum(error > predictor.error_bound(1) for error in errors) <= 1
    assert resolve_margin("auto", predictor, 1) == pytest.approx(predictor.error_bound(1))
    assert math.isnan(TrendPredictor(curves[:1]).error_bound(1))  # fewer than two errors: unknown


def test_neighbours_predictor_tells_curve_shapes_apart() -> None:
    from hfselect.core.trend import NeighboursTrendPredictor

    # Two kinds of run at 0.3 after epoch 2: rising fast (ends at 0.9) or flat (ends at 0.3).
    rising = [Curve((0.1 + d, 0.3 + d, 0.6, 0.9 + d)) for d in (0.0, 0.01, 0.02)]
    flat = [Curve((0.3 + d, 0.3 + d, 0.3, 0.3 + d)) for d in (0.0, 0.01, 0.02)]
    predictor = NeighboursTrendPredictor(rising + flat, k=3)
    assert predictor.predict_curve([0.1, 0.3]) == pytest.approx(0.91)
    assert predictor.predict_curve([0.3, 0.3]) == pytest.approx(0.31)
    # The score-only path cannot tell them apart; the base class's predict_curve is the latest score.
    assert TrendPredictor(rising).predict_curve([0.1, 0.3]) == 0.3
    assert NeighboursTrendPredictor([]).predict_curve([0.1, 0.4]) == 0.4


def test_neighbours_holdout_errors_match_refitting_and_leave_the_group_out() -> None:
    from hfselect.core.trend import NeighboursTrendPredictor

    curves = [
        Curve((0.1, 0.2, 0.9), group="a"),
        Curve((0.1, 0.2, 0.9), group="a"),  # the same dataset: it must not vouch for the first
        Curve((0.12, 0.22, 0.5), group="b"),
        Curve((0.5, 0.6, 0.7), group="c"),
    ]
    predictor = NeighboursTrendPredictor(curves, k=1)
    fast = predictor.holdout_errors(2)
    assert fast == pytest.approx(TrendPredictor.holdout_errors(predictor, 2))  # the generic refit loop
    assert fast[0] == pytest.approx(0.4)  # predicted from "b", the nearest curve of another dataset
    ungrouped = NeighboursTrendPredictor([Curve(c.scores) for c in curves], k=1)
    assert ungrouped.holdout_errors(2)[0] == 0.0  # its twin vouches for it


def test_curves_by_model_labels_each_curve_with_its_dataset_and_pooled_kinds_use_every_model() -> None:
    frame = pd.DataFrame(
        [
            {"model_id": m, "dataset": d, "protocol": "p", "epoch": e, "score": 0.1 * e}
            for m in ("a", "b")
            for d in ("x", "y")
            for e in (1, 2)
        ]
    )
    grouped = curves_by_model(frame)
    assert [curve.group for curve in grouped["a"]] == ["x", "y"]
    assert len(make_predictor("neighbours", "a", grouped).curves) == 4  # both models' curves
    assert len(make_predictor("headroom", "a", grouped, min_curves=2).curves) == 2  # its own only
