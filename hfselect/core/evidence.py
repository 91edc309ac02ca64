"""The ``"evidence"`` recall rule: a model's own proxy score and its benchmark evidence, fused.

A proxy score (LogME, LEEP, ...) ranks models on the target directly but is noisy; a model's
benchmark results say how good it is on datasets that may or may not look like the target. This
rule uses both, on one scale-free footing, for the ranking that :func:`hfselect.core.recall.coarse_recall`
returns with ``scope="evidence"`` (hfselect's default).

The rule, in two sentences
    Each benchmark dataset weighs as much as its scores agree with the target's proxy scores (their
    Spearman correlation over the models that have both; a negative one counts 0), and a model's
    *evidence* is the weighted mean of its standardized ranks on those datasets. Its recall score
    is two thirds its standardized proxy rank on the target plus one third its standardized
    evidence; a model without benchmark results keeps its proxy part alone, one without a proxy
    score takes its cluster representative's (else keeps its evidence alone).

"Standardized rank" means the values' ranks (ties averaged) shifted and scaled to mean 0 and standard
deviation 1 among the models that have a value, so LogME's and LEEP's different scales, or one
outlying benchmark score, change nothing but order. Resemblance comes only from what is known
before anything is fine-tuned on the target: the proxy scores and the benchmark matrix.

When fewer than :data:`MIN_CORRELATION_MODELS` models have a proxy score no correlation is
measurable, and every benchmark dataset weighs the same (the evidence is then the model's mean
standardized benchmark rank).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

__all__ = [
    "EVIDENCE_WEIGHT",
    "MIN_CORRELATION_MODELS",
    "FusedScore",
    "dataset_resemblance",
    "fused_scores",
    "resemblance_measurable",
    "standardized_ranks",
]

# A Spearman correlation over fewer models says nothing.
MIN_CORRELATION_MODELS = 3
# The evidence part's weight against the proxy part's 1. Chosen among 0.5, 1 and 2 by mean regret@1,
# @3 and @5 over both benchmarks at once (the paper's matrices with simulated proxies at noise 0.02,
# 0.05 and 0.1, and the zoo replay's real LogME, H-score and kNN): 0.5 was best at every K there,
# while 1 lost to the proxy alone at K=1 and 2 lost everywhere (README, Benchmarks).
EVIDENCE_WEIGHT = 0.5


@dataclasses.dataclass(frozen=True)
class FusedScore:
    """One model's parts of the ``"evidence"`` rule.

    Attributes:
        score: the recall score (NaN when the model has neither part).
        proxy_part: the standardized proxy rank used (its own, or its representative's), or None.
        proxy_model: whose proxy score that is (None without a proxy part).
        evidence: the standardized evidence, or None.
        evidence_datasets: how many benchmark datasets with a positive weight the model has results on.
        resemblance_measured: False when too few models had a proxy score to correlate, so that
            every benchmark dataset weighed the same.
    """

    score: float
    proxy_part: float | None
    proxy_model: str | None
    evidence: float | None
    evidence_datasets: int
    resemblance_measured: bool = True


def standardized_ranks(values: pd.Series) -> pd.Series:
    """Ranks of the non-NaN values (ties averaged), scaled to mean 0 and standard deviation 1.

    NaN stays NaN; all-equal values (or a single one) are all 0.
    """
    ranks = values.rank(method="average")
    spread = ranks.std(ddof=0)
    if not spread or math.isnan(spread):
        return ranks.where(ranks.isna(), 0.0)
    return (ranks - ranks.mean()) / spread


def _spearman(a: pd.Series, b: pd.Series) -> float:
    ranks_a, ranks_b = a.rank(), b.rank()
    if ranks_a.std(ddof=0) == 0 or ranks_b.std(ddof=0) == 0:
        return math.nan  # a constant column resembles nothing
    return float(np.corrcoef(ranks_a.to_numpy(), ranks_b.to_numpy())[0, 1])


def resemblance_measurable(performance: pd.DataFrame, proxies: Mapping[str, float]) -> bool:
    """Whether enough benchmarked models have a proxy score to correlate datasets with the target."""
    return sum(model in proxies for model in performance.index) >= MIN_CORRELATION_MODELS


def _weighted_mean(proxy_part: float | None, evidence: float | None) -> float:
    """The two parts' weighted mean; a missing part leaves the other as it is."""
    if proxy_part is None or evidence is None:
        return proxy_part if proxy_part is not None else evidence if evidence is not None else math.nan
    return (proxy_part + EVIDENCE_WEIGHT * evidence) / (1.0 + EVIDENCE_WEIGHT)


def dataset_resemblance(performance: pd.DataFrame, proxies: Mapping[str, float]) -> pd.Series:
    """Each benchmark dataset's weight: its Spearman correlation with the target's proxy scores, floored at 0.

    Over the models that have both a proxy score and a score on the dataset (at least
    :data:`MIN_CORRELATION_MODELS`, else the weight is 0). When fewer than that many models of
    ``performance`` have a proxy score at all, every dataset weighs 1.
    """
    proxy = pd.Series({model: proxies[model] for model in performance.index if model in proxies}, dtype=float)
    if not resemblance_measurable(performance, proxies):
        return pd.Series(1.0, index=performance.columns)
    weights = {}
    for dataset in performance.columns:
        column = performance.loc[proxy.index, dataset].dropna()
        if len(column) < MIN_CORRELATION_MODELS:
            weights[dataset] = 0.0
            continue
        correlation = _spearman(proxy[column.index], column)
        weights[dataset] = max(correlation, 0.0) if not math.isnan(correlation) else 0.0
    return pd.Series(weights, dtype=float)


def fused_scores(
    performance: pd.DataFrame,
    proxies: Mapping[str, float],
    representative_of: Mapping[str, str | None],
    new_models: list[str],
) -> dict[str, FusedScore]:
    """The ``"evidence"`` rule's score of every model (see the module docs).

    Args:
        performance: models with benchmark results x benchmark datasets (NaN where a model lacks one).
        proxies: model id -> proxy score on the target, for the models that have one (no NaN).
        representative_of: model -> its cluster's representative (None for singletons).
        new_models: models without benchmark results; each needs a proxy score to be ranked.
    """
    models = list(performance.index) + list(new_models)
    proxy_rank = standardized_ranks(pd.Series({m: proxies[m] for m in models if m in proxies}, dtype=float))
    weights = dataset_resemblance(performance, proxies)
    benchmark_ranks = performance.apply(standardized_ranks, axis=0)
    used = weights[weights > 0].index
    present = benchmark_ranks[used].notna()
    totals = (benchmark_ranks[used].fillna(0.0) * weights[used]).sum(axis=1)
    denominators = (present * weights[used]).sum(axis=1)
    raw_evidence = (totals / denominators.where(denominators > 0)).dropna()
    evidence = standardized_ranks(raw_evidence)
    counts = present.sum(axis=1)
    measured = resemblance_measurable(performance, proxies)

    scores: dict[str, FusedScore] = {}
    for model in models:
        source = model if model in proxy_rank.index else representative_of.get(model)
        part = float(proxy_rank[source]) if source is not None and source in proxy_rank.index else None
        own_evidence = float(evidence[model]) if model in evidence.index else None
        scores[model] = FusedScore(
            score=_weighted_mean(part, own_evidence),
            proxy_part=part,
            proxy_model=source if part is not None else None,
            evidence=own_evidence,
            evidence_datasets=int(counts.get(model, 0)) if own_evidence is not None else 0,
            resemblance_measured=measured,
        )
    return scores
