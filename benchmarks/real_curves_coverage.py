"""How many candidates recall needs, asked of the benchmark datasets instead of the target.

``real_curves.py --coverage-candidates`` adds hfselect rows whose candidate count is calibrated
this way: for a target, each other dataset in turn plays the target (its recall ranked with the
prior learned from the rest), and the best model's rank there, as a share of its pool, is recorded.
The target then recalls that share's ``coverage`` quantile of its own pool: enough candidates to
have held the best model on that share of the benchmark datasets. The same coverage principle as
the ``auto`` margin (:data:`hfselect.config.DEFAULT_MARGIN_COVERAGE`), applied to recall.

Nothing here looks at the target's curves. Each benchmark dataset needs its own prior fitted
without it, so this costs one regression fit per (target, benchmark dataset): minutes, hence opt-in.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np
from real_curves_data import CurveData, Target, make_target

# (target, the scopes to rank by) -> each scope's recall order, best first
Ranker = Callable[[Target, Sequence[str]], dict[str, list[str]]]


@dataclass(frozen=True)
class BestRank:
    """Where one benchmark dataset's best model landed in its own recall ranking."""

    dataset: str
    rank: int  # 1 = recalled first
    pool: int  # candidates on that dataset

    @property
    def share(self) -> float:
        """The rank as a share of the pool: the candidates needed to hold the best, per candidate."""
        return self.rank / self.pool


def without_dataset(data: CurveData, name: str) -> CurveData:
    """``data`` as if ``name`` had never been measured (its curves and seconds dropped)."""
    return replace(
        data,
        scores={dataset: runs for dataset, runs in data.scores.items() if dataset != name},
        seconds={dataset: runs for dataset, runs in data.seconds.items() if dataset != name},
    )


def nested_targets(data: CurveData, target: str) -> Iterator[Target]:
    """Each other dataset with two or more candidates, as the target of the rest (never of ``target``)."""
    others = without_dataset(data, target)
    for dataset in others.datasets:
        if others.has_choice(dataset):
            yield make_target(others, dataset)


def best_model_ranks(
    data: CurveData, target: str, scopes: Sequence[str], ranker: Ranker
) -> dict[str, list[BestRank]]:
    """Per scope: each dataset but ``target`` as a target of the others, and its best model's rank.

    ``ranker`` orders a target's candidates by a recall rule (everything it learns comes from the
    target's benchmark datasets, so here from neither ``target`` nor the dataset ranked).
    Datasets with fewer than two candidates are left out.
    """
    ranks: dict[str, list[BestRank]] = {scope: [] for scope in scopes}
    for held_out in nested_targets(data, target):
        finals = held_out.final
        best = max(finals, key=lambda model: finals[model])
        for scope, order in ranker(held_out, scopes).items():
            ranks[scope].append(BestRank(held_out.name, order.index(best) + 1, len(order)))
    return ranks


def coverage_candidates(ranks: Sequence[BestRank], pool: int, coverage: float) -> int:
    """Candidates out of ``pool`` that hold the best model on ``coverage`` of the benchmark datasets.

    The ``coverage`` quantile of the best model's rank share (the observed share at or above it),
    scaled to ``pool``; at least 2 (halving needs a choice), at most the pool.
    """
    if not ranks:
        return min(2, pool)
    share = float(np.quantile([rank.share for rank in ranks], coverage, method="higher"))
    # The tolerance keeps a float product such as 0.3 * 10 = 3.0000000000000004 from rounding up to 4.
    return max(min(2, pool), min(pool, math.ceil(share * pool - 1e-9)))
