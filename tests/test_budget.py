"""Budget-first selection (hfselect.core.budget): the plan, the loop, and a plan that shrinks."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from hfselect.core.budget import (
    BudgetCandidate,
    BudgetTooSmallError,
    ReplayTrainer,
    coverage_width,
    estimate_cost,
    evidence_best_ranks,
    format_seconds,
    plan_budget,
    run_budget,
    schedule,
)
from hfselect.core.trend import Curve, HeadroomTrendPredictor

FULL = 16  # epochs; the library's first rung is then epoch 1


def candidates(*costs: float) -> list[BudgetCandidate]:
    """Candidates c0, c1, ... best ranked first, with these seconds per epoch."""
    return [BudgetCandidate(f"c{i}", cost) for i, cost in enumerate(costs)]


def test_schedule_and_estimated_cost() -> None:
    assert schedule(8, 1, 16, 2) == (1, 2, 4)  # 8 -> 4 -> 2 -> 1
    assert schedule(9, 2, 16, 3) == (2, 6)  # 9 -> 3 -> 1
    assert schedule(8, 4, 10, 2) == (4, 8)  # the full length cuts the rungs short
    # 4 candidates of 1 s an epoch and one of 5 s: mean 1.8; rungs 1, 2: 5 epochs + 2 epochs.
    total, reserve = estimate_cost([1, 1, 1, 1, 5], (1, 2), 16, 2)
    assert reserve == 5 * 14 and total == pytest.approx(5 * 1.8 + 3 * 1.8 + reserve)


def test_a_small_budget_trains_recalls_top_pick_that_fits() -> None:
    # Two candidates halved after epoch 1 would need 2 + 15 s: more than 16.5 s.
    assert len(plan_budget(candidates(1, 1, 1), FULL, 17).candidates) == 2
    plan = plan_budget(candidates(1, 1, 1), FULL, 16.5)
    assert plan.candidates == ("c0",) and plan.rungs == () and plan.estimated_seconds == 16
    assert "top pick" in plan.width_reason and plan.fallbacks == ("c1", "c2")
    # The top pick costs more than the budget: the best-ranked one that fits.
    cheaper = plan_budget(candidates(3, 1, 1), FULL, 16.5)
    assert cheaper.candidates == ("c1",) and "the 1 ranked above it cost more" in cheaper.width_reason
    with pytest.raises(BudgetTooSmallError, match=r"cheapest candidate, c1, needs about 16 s"):
        plan_budget(candidates(3, 1, 2), FULL, 10)


def test_a_large_budget_starts_every_candidate_at_the_librarys_first_rung() -> None:
    plan = plan_budget(candidates(*[1.0] * 8), FULL, 1000)
    assert plan.candidates == tuple(f"c{i}" for i in range(8)) and plan.rungs == (1, 2, 4)
    assert plan.estimated_seconds <= 1000 and "every one of the 8" in plan.width_reason
    lines = plan.describe()
    assert lines[0].startswith("budget 16.7 min: 8 candidate(s), rungs at epochs 1, 2, 4")
    assert "c0: about 1.0 s an epoch" in lines[-8]


def test_the_width_follows_what_recalls_ranking_is_worth() -> None:
    ranked = candidates(*[1.0] * 8)
    full = 32  # the library's first rung is epoch 2
    # 4 candidates at epochs 2 and 4 need 8 + 4 + 28 s; a 5th would need a third rung (48 s).
    base = plan_budget(ranked, full, 44)
    assert base.rungs == (2, 4) and len(base.candidates) == 4
    # The best benchmark model was up to 5th in recall's ranking: the plan reaches wider, earlier.
    wide = plan_budget(ranked, full, 44, best_ranks=[1, 4, 5, 2, 4, 5, 3, 4, 5, 5])
    assert len(wide.candidates) == 5 and wide.rungs == (1, 2, 4) and wide.estimated_seconds <= 44
    assert "held the best model on 90% of the benchmark datasets" in wide.width_reason
    # A ranking that found the best model first everywhere asks for no more than the budget gives.
    assert plan_budget(ranked, full, 44, best_ranks=[1] * 10).candidates == base.candidates


def test_coverage_width_and_evidence_best_ranks() -> None:
    assert coverage_width([]) is None
    assert coverage_width([1, 1, 1, 1, 1, 1, 1, 1, 1, 7]) == 1
    assert coverage_width([1, 1, 1, 1, 1, 1, 1, 1, 2, 7]) == 2
    performance = pd.DataFrame(
        {"d1": [0.9, 0.8, 0.7], "d2": [0.9, 0.7, 0.8], "d3": [0.5, 0.6, math.nan]},
        index=["a", "b", "c"],
    )
    # d1: by d2 and d3 "a" leads -> place 1; d2: by d1 and d3 "b" leads, its best "a" is 2nd;
    # d3: its best "b" comes after "a" on d1 and d2.
    assert evidence_best_ranks(performance) == [1, 2, 2]


def test_run_budget_replays_the_plan_within_budget() -> None:
    curves = {"c0": [0.5, 0.6, 0.62, 0.63], "c1": [0.3, 0.5, 0.7, 0.9], "c2": [0.2, 0.2, 0.2, 0.2]}
    seconds = {name: [1.0] * 4 for name in curves}
    plan = plan_budget(candidates(1, 1, 1), 4, 100, reduction_factor=2)
    assert plan.rungs == (1, 2)
    outcome = run_budget(plan, ReplayTrainer(curves, seconds))  # plain halving: by current score
    assert outcome.selected == "c0" and outcome.within_budget and outcome.shrinks == []
    assert outcome.epochs == {"c0": 4, "c1": 2, "c2": 1} and outcome.seconds == 7
    assert "worse half" in outcome.drops["c2"]
    # With a trend that knows late bloomers rise, the ordering changes.
    rising = HeadroomTrendPredictor([Curve((0.3, 0.5, 0.7, 0.9)), Curve((0.2, 0.4, 0.7, 0.95))])
    trend = run_budget(plan, ReplayTrainer(curves, seconds), predictors=dict.fromkeys(curves, rising))
    assert trend.within_budget and set(trend.epochs) == {"c0", "c1", "c2"}


def test_a_plan_shrinks_when_measured_costs_exceed_the_estimates() -> None:
    curves = {name: [0.5, 0.6, 0.7, 0.8] for name in ("c0", "c1", "c2", "c3")}
    curves["c0"] = [0.6, 0.7, 0.8, 0.9]
    # Planned at 1 s an epoch (8 s in all); c0 and c1 really take 3 s, so rung 2 cannot take both.
    seconds = {"c0": [3.0] * 4, "c1": [3.0] * 4, "c2": [1.0] * 4, "c3": [1.0] * 4}
    plan = plan_budget(candidates(1, 1, 1, 1), 4, 18)
    assert plan.candidates == ("c0", "c1", "c2", "c3") and plan.estimated_seconds == 8
    outcome = run_budget(plan, ReplayTrainer(curves, seconds))
    assert outcome.within_budget and outcome.selected == "c0" and outcome.seconds == 17
    assert outcome.epochs == {"c0": 4, "c1": 1, "c2": 1, "c3": 1}  # c1 was not trained to rung 2
    assert len(outcome.shrinks) == 1 and outcome.shrinks[0].startswith("c1: budget: not trained to rung 2")


def test_a_top_pick_that_costs_more_than_estimated_gives_way_to_one_that_fits() -> None:
    curves = {"c0": [0.9] * 4, "c1": [0.8] * 4}
    seconds = {"c0": [2.0] * 4, "c1": [0.2] * 4}
    plan = plan_budget(candidates(1, 0.2), 4, 4.1)  # one full run at the estimates, not a halving
    assert plan.candidates == ("c0",) and plan.fallbacks == ("c1",)
    outcome = run_budget(plan, ReplayTrainer(curves, seconds))
    assert outcome.selected == "c1" and outcome.seconds == pytest.approx(2 + 0.8)  # c0's first epoch, then c1
    assert outcome.within_budget
    assert (
        outcome.epochs == {"c0": 1, "c1": 4} and "c0: budget: its full run would need" in outcome.shrinks[0]
    )


def test_format_seconds() -> None:
    assert [format_seconds(s) for s in (0.42, 95, 750, 9000)] == ["0.4 s", "95 s", "12.5 min", "2.50 h"]
