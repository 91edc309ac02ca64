"""Coarse recall: rank the repository's models for a target dataset from a few proxy scores.

This is the online half of the coarse-recall phase of Cui et al., "A Two-Phase Recall-and-Select
Framework for Fast Model Selection" (arXiv 2404.00069). The models are clustered by their benchmark
scores (:class:`hfselect.core.clustering.ModelClustering`), a proxy score (LEEP in the paper) is computed
on the target dataset for a few models, and every model gets a recall score; the ``top_k`` best
(15 in the paper) go on to the fine-selection phase.

The paper's rule: ``scope="representatives"`` (and ``"all"``)
    ``mean(m)`` is model m's mean benchmark score: the mean of its recorded scores (NaN cells are
    skipped; scores <= 0 are kept, as the released code averages every cell). ``w(p)`` turns a
    proxy score into a weight, ``exp(p)`` by default.

    * Each cluster of several models has a *representative*: the member with the best
      ``mean`` (ties: the first in the matrix's row order).
    * A member m of such a cluster scores ``mean(m) * w(proxy(representative))`` with
      ``scope="representatives"`` (the paper's rule), or ``mean(m) * w(proxy(m))``
      with ``scope="all"``, which is what the paper's released code computes.
    * A model alone in its cluster (a *singleton*) scores
      ``mean(s) * (1/R) * sum over the R representatives r of cos(s, r) * w(proxy(r))``, where
      ``cos`` is the cosine similarity of the two raw benchmark score vectors (a NaN cell counts as
      0, which is how the released matrices write a missing score; a zero vector has similarity 0).
      Singletons use the representatives' proxies in both scopes, as the released code does.
    * If no cluster has several models there are no representatives: every model then scores
      ``mean(m) * w(proxy(m))`` and needs its own proxy.

hfselect's default rule: ``scope="evidence"``
    Each model's own proxy score and its benchmark evidence, fused on a scale-free footing
    (:mod:`hfselect.core.evidence`): each benchmark dataset weighs as much as its scores agree with the
    target's proxy scores (Spearman, floored at 0), a model's evidence is the weighted mean of its
    standardized ranks on those datasets, and its score is two thirds its standardized proxy rank
    plus one third its standardized evidence. A model without benchmark results keeps its proxy part alone; a
    model without a proxy score takes its cluster representative's (else keeps its evidence alone),
    so for a repository of thousands of models the proxies of :func:`models_needing_proxy` with
    ``scope="representatives"`` are enough to rank everyone. ``proxy_transform`` plays no part: any
    increasing transform of the proxy gives the same ranking.

Pure proxy ranking: ``scope="every"``
    Every model is ranked by its own proxy score alone: ``score = w(proxy(m))``, ties going to the
    better mean benchmark score. Clusters are still computed (fine selection pools trends within
    them) but decide nothing here. On the zoo this recalls the best model far more often than the
    paper's rule (``benchmarks/selection_replay.py``): a proxy like LogME is built to rank models
    on a target directly, and a singleton or a cluster member that suits the target is seen by its
    own score instead of a representative's. It costs one proxy per model, cheap next to an epoch
    of fine-tuning on models this size; for a repository of thousands, ``"representatives"``
    caps the cost at one proxy per cluster.

Which models need a proxy score
    ``scope="representatives"``: the representatives only (one model per multi-model cluster),
    which is the method's saving. ``scope="all"``: every member of a multi-model cluster.
    Singletons never need their own. ``scope="every"`` and ``"evidence"``: every model (the
    evidence rule ranks a model whose proxy is missing all the same). :func:`models_needing_proxy`
    lists them, plus the new models below; compute proxies for exactly that list.

Models without benchmark results (newly crawled)
    A model with no recorded benchmark score (a row of NaN, or no row at all but named in
    ``proxy_scores`` or ``extra_models``) is not dropped. It cannot be clustered, so it is ranked by
    its own proxy as if it were an average model: ``score = G * w(proxy(m))`` with ``G`` the mean of
    the mean benchmark scores of all models that have results (1 when none has). So a new model
    outranks the members of a cluster exactly when its weighted proxy beats theirs after adjusting
    for how good they are on the benchmarks. It needs its own proxy, and it is flagged
    (``has_results=False``, role ``"new"``) in the result.

Proxy scale
    LEEP is an average log-likelihood (negative), and ``exp`` maps it to the geometric-mean
    probability of the true label, a weight in (0, 1]: that is the paper's setting and the default.
    For proxies on other scales pass ``proxy_transform``: e.g. ``lambda x: x`` for a proxy that is
    already a positive accuracy-like number (a kNN accuracy, an H-score), or keep ``exp`` for
    LogME, which is itself a per-sample log-evidence. The transform must return a positive number
    for the ranking to mean what the rule says.

Ties in the final ranking go to the model that comes first (rows of the matrix first, then new
models), which is what the released code's repeated ``max`` does.

Where the released code and the paper's text differ (``scope="all"`` follows the code)
    * Members of a cluster are weighted by their *own* proxy in the code, by their
      representative's in the text (so the code computes a proxy for every clustered model).
    * The code averages a model's scores over every dataset cell, a cell <= 0 included, and its
      cosine similarities use the raw score vectors; the text does not spell these out.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from hfselect.config import DEFAULT_K_LARGEST, DEFAULT_THRESHOLD, DEFAULT_TOP_K
from hfselect.core.clustering import ModelClustering
from hfselect.core.evidence import FusedScore, fused_scores
from hfselect.core.recall_result import RecallEntry, RecallResult
from hfselect.core.scopes import DEFAULT_SCOPE, SCOPES, RecallScope
from hfselect.validation import (
    check_choice,
    check_int,
    check_optional_int,
    check_scores,
    check_text,
    check_texts,
    check_threshold,
)

__all__ = [
    "DEFAULT_SCOPE",
    "SCOPES",
    "RecallEntry",
    "RecallResult",
    "cluster_representatives",
    "coarse_recall",
    "mean_benchmark_scores",
    "models_needing_proxy",
    "proxy_weight",
    "repository_candidates",
]


@dataclasses.dataclass
class _Plan:
    """What the recall needs before any proxy is known: clusters, representatives, new models."""

    scored: pd.DataFrame  # rows with at least one benchmark score, in matrix order
    clusters: list[list[str]]
    labels: list[int]
    representatives: dict[int, str]
    mean_scores: dict[str, float]
    new_models: list[str]
    threshold: float | None
    k_largest: int

    def needing_proxy(self, scope: str) -> list[str]:
        if not self.representatives or scope in ("every", "evidence"):
            clustered = list(self.scored.index)  # no representatives: everyone uses their own
        elif scope == "representatives":
            clustered = list(self.representatives.values())
        else:
            clustered = [model for cluster in self.clusters if len(cluster) > 1 for model in cluster]
        return clustered + self.new_models


def mean_benchmark_scores(scores: pd.DataFrame) -> dict[str, float]:
    """Each model's (row's) mean benchmark score: the mean over its recorded (non-NaN) cells."""
    values = scores.to_numpy(dtype=float)
    present = ~np.isnan(values)
    # A running sum in column order, like Python's sum(): the released code's means, bit for bit.
    totals = (
        np.cumsum(np.where(present, values, 0.0), axis=1)[:, -1] if values.shape[1] else np.zeros(len(values))
    )
    counts = present.sum(axis=1)
    return {
        model: float(total / count) if count else math.nan
        for model, total, count in zip(scores.index, totals, counts, strict=True)
    }


def _plan(
    performance: pd.DataFrame,
    threshold: float | str,
    k_largest: int,
    extra_models: Iterable[str],
    clustering: ModelClustering | None,
) -> _Plan:
    if not isinstance(performance, pd.DataFrame):
        raise TypeError("performance must be a pandas DataFrame (rows: models, columns: datasets)")
    if performance.index.has_duplicates:
        raise ValueError("the performance matrix lists a model more than once")
    numeric = performance.astype(float)
    has_results = numeric.notna().any(axis=1)
    scored = numeric[has_results]
    new_models = list(numeric.index[~has_results])
    for model in extra_models:
        if model not in scored.index and model not in new_models:
            new_models.append(model)

    if len(scored) == 0:
        return _Plan(scored, [], [], {}, {}, new_models, None, int(k_largest))
    if clustering is None:
        clustering = ModelClustering(threshold=threshold, k_largest=k_largest).fit(scored)
    elif not hasattr(clustering, "labels_"):
        raise ValueError("the clustering passed to the recall is not fitted")
    elif list(clustering.distances_.index) != list(scored.index):
        raise ValueError(
            "the clustering was fitted on other models: fit it on the performance matrix's rows that "
            "have at least one score, in the same order"
        )

    mean_scores = mean_benchmark_scores(scored)
    representatives = cluster_representatives(clustering.clusters_, mean_scores)
    return _Plan(
        scored=scored,
        clusters=[list(members) for members in clustering.clusters_],
        labels=[int(label) for label in clustering.labels_],
        representatives=representatives,
        mean_scores=mean_scores,
        new_models=new_models,
        threshold=clustering.threshold_,
        k_largest=int(clustering.k_largest),
    )


def cluster_representatives(
    clusters: Sequence[Sequence[str]], mean_scores: Mapping[str, float]
) -> dict[int, str]:
    """Cluster id -> its representative, for every cluster of several models.

    The representative is the member with the best mean benchmark score
    (:func:`mean_benchmark_scores`); ties go to the member listed first.
    """
    representatives: dict[int, str] = {}
    for cluster_id, members in enumerate(clusters):
        if len(members) > 1:
            # max() keeps the first of equal maxima: ties go to the earliest row.
            representatives[cluster_id] = max(members, key=lambda model: mean_scores[model])
    return representatives


def _check_scope(scope: str) -> None:
    check_choice("scope", scope, SCOPES)


def check_recall_options(
    target: Any,
    *,
    top_k: int | None,
    proxy: str,
    sample_size: int,
    scope: str,
    threshold: float | str,
    k_largest: int,
    proxy_scores: Mapping[str, float] | None,
    max_download: int | None,
    text_columns: Sequence[str] | None = None,
    label_column: str | None = None,
    split: str | None = None,
    seed: int = 0,
) -> tuple[str, dict[str, float] | None]:
    """Check every option of a recall before any work; return the target as a string and
    ``proxy_scores`` as a plain dict.

    ``hfselect.recall`` and ``hfselect.select`` call it first: a bad option must not cost a pass of
    proxies over every model, nor leave a study behind.

    Raises:
        InvalidValueError: (a ``ValueError``) an option out of range or not one of its choices.
        InvalidTypeError: (a ``TypeError``) an option of the wrong type, e.g. a string of scores.
    """
    from hfselect.core.proxies import PROXIES

    target = check_text("target", target, "a dataset: a Hub id (ID or ID:CONFIG) or a local path", path=True)
    check_optional_int("top_k", top_k, minimum=1)
    check_choice("proxy", proxy, PROXIES)
    check_int("sample_size", sample_size, minimum=1)
    _check_scope(scope)
    check_threshold("threshold", threshold)
    check_int("k_largest", k_largest, minimum=1)
    check_optional_int("max_download", max_download, minimum=0)
    check_int("seed", seed, minimum=0)
    if text_columns is not None:
        check_texts("text_columns", text_columns, "column names")
    for name, value in (("label_column", label_column), ("split", split)):
        if value is not None:
            check_text(name, value, "a name")
    return target, None if proxy_scores is None else check_scores("proxy_scores", proxy_scores)


def models_needing_proxy(
    performance: pd.DataFrame,
    threshold: float | str = DEFAULT_THRESHOLD,
    k_largest: int = DEFAULT_K_LARGEST,
    scope: RecallScope = DEFAULT_SCOPE,
    extra_models: Iterable[str] = (),
    *,
    clustering: ModelClustering | None = None,
) -> list[str]:
    """The models whose proxy score :func:`coarse_recall` needs, with the same arguments.

    ``scope="representatives"``: one representative per cluster of several models (singletons are
    scored from the representatives' proxies). ``scope="all"``: every model of a cluster of several
    models. ``scope="every"`` and ``"evidence"``: every model with results, in the matrix's order
    (``"evidence"`` still ranks a model whose proxy is missing, see :mod:`hfselect.core.evidence`). Then the models
    without benchmark results (all-NaN rows of ``performance``, then ``extra_models`` not in it),
    which are ranked by their own proxy. When no cluster has several models, every model with
    results needs its own. Order: cluster order, then new models.
    """
    _check_scope(scope)
    return _plan(performance, threshold, k_largest, extra_models, clustering).needing_proxy(scope)


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    norms = np.linalg.norm(a) * np.linalg.norm(b)
    if norms == 0:
        return 0.0
    # The released code's expression, so scores match it to the last bit.
    return float(a.dot(b) / norms)


def coarse_recall(
    performance: pd.DataFrame,
    proxy_scores: Mapping[str, float] | pd.Series,
    top_k: int | None = DEFAULT_TOP_K,
    threshold: float | str = DEFAULT_THRESHOLD,
    k_largest: int = DEFAULT_K_LARGEST,
    scope: RecallScope = DEFAULT_SCOPE,
    *,
    extra_models: Iterable[str] = (),
    proxy_transform: Callable[[float], float] = math.exp,
    clustering: ModelClustering | None = None,
) -> RecallResult:
    """Score every model for the target dataset and recall the ``top_k`` best (see the module docs).

    Args:
        performance: the performance matrix (rows: model ids, columns: benchmark datasets, NaN where
            a model has no score), e.g. ``ModelRepository.performance_matrix()``.
        proxy_scores: model id -> proxy score on the target dataset (a mapping or a Series). It must
            cover :func:`models_needing_proxy`; other entries are ignored, except that a model with
            no benchmark results listed here is ranked as a new model. NaN counts as missing.
        top_k: how many models to recall (all when ``None`` or larger than the number of models).
        threshold: clustering threshold (or ``"silhouette"``), see :class:`ModelClustering`.
        k_largest: the clustering distance's ``k_largest``.
        scope: ``"evidence"`` (hfselect's default: each model's own proxy fused with its results on
            the benchmark datasets that resemble the target, :mod:`hfselect.core.evidence`),
            ``"representatives"`` (the paper's rule: proxies of representatives only), ``"all"``
            (each clustered model's own proxy, as the released code does) or ``"every"`` (every
            model ranked by its own proxy alone).
        extra_models: models without benchmark results to rank by their own proxy.
        proxy_transform: maps a proxy score to a positive weight; ``math.exp`` (the paper's, for
            LEEP and other log-scale scores) by default.
        clustering: a fitted :class:`ModelClustering` of the matrix's rows that have scores, reused
            instead of clustering again (``threshold`` and ``k_largest`` are then ignored).

    Raises:
        ValueError: a needed proxy score is missing (with ``"evidence"``: only a model without
            benchmark results needs one), or an argument is invalid.
    """
    _check_scope(scope)
    check_optional_int("top_k", top_k, minimum=1)
    proxies = check_scores("proxy_scores", proxy_scores)  # None and NaN (a failed proxy) are missing
    extra = list(extra_models)
    if isinstance(performance, pd.DataFrame):
        # Models named only in proxy_scores are new models too.
        extra += [model for model in proxies if model not in performance.index and model not in extra]
    plan = _plan(performance, threshold, k_largest, extra, clustering)

    # The evidence rule ranks a benchmarked model without a proxy by its cluster's or its own evidence.
    required = plan.new_models if scope == "evidence" else plan.needing_proxy(scope)
    missing = [model for model in required if model not in proxies]
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise ValueError(
            f"no proxy score for {len(missing)} model(s) the recall needs: {shown} "
            "(compute proxies for models_needing_proxy(...))"
        )

    if scope == "evidence":
        entries = _evidence_entries(plan, proxies)
    else:
        entries = _weighted_entries(plan, proxies, scope, proxy_transform)

    # Best first; NaN scores last; ties keep the input order (matrix rows, then new models), except
    # that with scope="every" the better mean benchmark score goes first.
    def sort_key(i: int) -> tuple[bool, float, float, int]:
        score, mean = entries[i]["score"], entries[i]["mean_score"]
        tie = -mean if scope == "every" and not math.isnan(mean) else 0.0
        return (math.isnan(score), 0.0 if math.isnan(score) else -score, tie, i)

    order = sorted(range(len(entries)), key=sort_key)
    ranking = [RecallEntry(rank=rank, **entries[i]) for rank, i in enumerate(order, start=1)]
    chosen = ranking if top_k is None else ranking[:top_k]
    return RecallResult(
        models=[entry.model_id for entry in chosen],
        scores=[entry.score for entry in chosen],
        entries=chosen,
        ranking=ranking,
        clusters=plan.clusters,
        representatives=dict(plan.representatives),
        new_models=list(plan.new_models),
        scope=scope,
        top_k=top_k,
        threshold=plan.threshold,
        k_largest=plan.k_largest,
    )


def _role(plan: _Plan, model: str, cluster_id: int) -> str:
    representative = plan.representatives.get(cluster_id)
    if representative is None:
        return "singleton"
    return "representative" if model == representative else "member"


def _weighted_entries(
    plan: _Plan, proxies: dict[str, float], scope: str, proxy_transform: Callable[[float], float]
) -> list[dict[str, Any]]:
    """Scopes ``"representatives"``, ``"all"`` and ``"every"``: the recall score of every model."""

    def weight(model: str) -> float:
        return float(proxy_transform(proxies[model]))

    entries: list[dict[str, Any]] = []
    vectors = np.nan_to_num(plan.scored.to_numpy(dtype=float), nan=0.0)
    row_of = {model: row for row, model in enumerate(plan.scored.index)}
    # Representatives in cluster order: the order the released code sums the singletons' terms in.
    representative_weights = [(model, weight(model)) for model in plan.representatives.values()]
    for model, cluster_id in zip(plan.scored.index, plan.labels, strict=True):
        mean = plan.mean_scores[model]
        entry: dict[str, Any] = {
            "model_id": model,
            "mean_score": mean,
            "cluster": cluster_id,
            "has_results": True,
        }
        representative = plan.representatives.get(cluster_id)
        role = _role(plan, model, cluster_id)
        if scope == "every" or representative is not None or not plan.representatives:
            # Its own proxy (scope "every" or "all", or a singleton when no cluster has several
            # models), else its representative's.
            source = model if (representative is None or scope in ("all", "every")) else representative
            w = weight(source)
            entry.update(
                weight=w, role=role, representative=representative, proxy_model=source, proxy=proxies[source]
            )
            if scope == "every":
                entry["source"] = "own proxy"
            elif representative is None:
                entry["source"] = "own proxy x mean benchmark score (no cluster has several models)"
            elif source == model:
                entry["source"] = f"own proxy x mean benchmark score ({role} of cluster {cluster_id})"
            else:
                entry["source"] = (
                    f"cluster {cluster_id} representative {source}'s proxy x mean benchmark score"
                )
        else:
            total = 0.0
            for other, other_weight in representative_weights:
                total += _cosine(vectors[row_of[model]], vectors[row_of[other]]) * other_weight
            w = total / len(representative_weights)
            entry.update(weight=w, role="singleton", representative=None, proxy_model=None, proxy=None)
            entry["source"] = (
                f"mean benchmark score x its similarity to the {len(representative_weights)} "
                "cluster representatives' proxies"
            )
        # With scope "every" the proxy alone ranks (the mean benchmark score breaks ties).
        entry["score"] = w if scope == "every" else mean * w
        entries.append(entry)

    means = [plan.mean_scores[model] for model in plan.scored.index]
    average_model = float(np.mean(means)) if means else 1.0
    for model in plan.new_models:
        w = weight(model)
        score = w if scope == "every" else average_model * w
        entries.append(
            {
                "model_id": model,
                "mean_score": average_model,
                "cluster": None,
                "has_results": False,
                "weight": w,
                "role": "new",
                "representative": None,
                "proxy_model": model,
                "proxy": proxies[model],
                "score": score,
                "source": "own proxy (no benchmark results)"
                if scope == "every"
                else "own proxy x the average model's mean benchmark score (no benchmark results)",
            }
        )
    return entries


def _evidence_entries(plan: _Plan, proxies: dict[str, float]) -> list[dict[str, Any]]:
    """Scope ``"evidence"``: every model's fused score (:func:`hfselect.core.evidence.fused_scores`)."""
    cluster_of = dict(zip(plan.scored.index, plan.labels, strict=True))
    representative_of = {model: plan.representatives.get(cluster) for model, cluster in cluster_of.items()}
    fused = fused_scores(plan.scored, proxies, representative_of, plan.new_models)
    means = [plan.mean_scores[model] for model in plan.scored.index]
    average_model = float(np.mean(means)) if means else math.nan
    entries: list[dict[str, Any]] = []
    for model, parts in fused.items():
        has_results = model in cluster_of
        cluster = cluster_of.get(model)
        entries.append(
            {
                "model_id": model,
                "score": parts.score,
                "mean_score": plan.mean_scores[model] if has_results else average_model,
                "weight": math.nan if parts.proxy_part is None else parts.proxy_part,
                "role": _role(plan, model, cluster) if has_results else "new",
                "cluster": cluster,
                "representative": representative_of.get(model),
                "proxy_model": parts.proxy_model,
                "proxy": None if parts.proxy_model is None else proxies[parts.proxy_model],
                "has_results": has_results,
                "source": evidence_source(model, parts, has_results),
                "evidence": parts.evidence,
                "evidence_datasets": parts.evidence_datasets,
            }
        )
    return entries


def evidence_source(model: str, parts: FusedScore, has_results: bool) -> str:
    """In words, what a model's ``"evidence"`` score came from."""
    if parts.proxy_part is None:
        proxy = ""
    elif parts.proxy_model == model:
        proxy = "own proxy"
    else:
        proxy = f"cluster representative {parts.proxy_model}'s proxy"
    if parts.evidence is None:
        if not proxy:
            return "nothing to rank it by"
        why = "no benchmark results" if not has_results else "no benchmark dataset resembles the target"
        return f"{proxy} ({why})"
    plural = "" if parts.evidence_datasets == 1 else "s"
    if parts.resemblance_measured:
        evidence = f"evidence from {parts.evidence_datasets} similar dataset{plural}"
    else:  # too few proxy scores to measure resemblance: every dataset weighed the same
        evidence = f"evidence from {parts.evidence_datasets} dataset{plural}, equally weighted"
    return f"{proxy} + {evidence}" if proxy else f"{evidence} (no proxy)"


# -- what the recall of a repository ranks, and how a proxy becomes a weight ------------------------


def proxy_weight(proxy: str) -> Callable[[float], float]:
    """How a proxy's value becomes the rule's positive weight.

    LEEP, NCE and LogME are (per-example) log-likelihoods or log-evidences: ``exp``, as the paper.
    The kNN probe is an accuracy and the H-score a non-negative discriminability: used as they are.
    """
    return math.exp if proxy in ("leep", "nce", "logme") else (lambda value: max(float(value), 1e-12))


def repository_candidates(repository: Any, *, include_new: bool = True) -> tuple[pd.DataFrame, list[str]]:
    """What a recall ranks: the benchmarked models' performance matrix, and the stored models without results.

    The models without results are left out unless ``include_new`` (or nothing is benchmarked, when
    they are all there is to rank).
    """
    performance = repository.performance_matrix()
    if not performance.empty:
        performance = performance.dropna(how="all")
    benchmarked = set(performance.index)
    stored = [model["model_id"] for model in repository.models()]
    new_models = (
        [model for model in stored if model not in benchmarked] if include_new or performance.empty else []
    )
    return performance, new_models
