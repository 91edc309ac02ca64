"""Leave-one-dataset-out recall on a released performance matrix: ``paper_matrices.py``'s part (b).

Each benchmark dataset in turn is the target and the others form the performance matrix; the
proxy is simulated from the target's true scores (:data:`SIMULATION`), and every recall scope of
:func:`hfselect.core.recall.coarse_recall` is compared with baselines that use no clustering, by
hit rate and regret of the top K, with bootstrap intervals over seeds and targets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from _stats import bootstrap_mean, resample_indices

from hfselect.core.clustering import ModelClustering
from hfselect.core.recall import coarse_recall, models_needing_proxy

PAPER_K_LARGEST = 5
# The log of the simulated proxy needs a positive argument: a noisy score below this is clipped.
PROXY_FLOOR = 1e-3

SIMULATION = (
    "proxy(m) = log(max(s(m) + e(m), 0.001)) with s(m) the model's true (released) score on the held-out "
    "target and e(m) ~ N(0, sigma^2) drawn independently per model, per seed and per target; so "
    "exp(proxy) = the true score plus Gaussian noise, which is how the recall rule uses LEEP "
    "(exp(LEEP) is a geometric-mean probability of the true label). One noise draw per (target, "
    "sigma, seed) is shared by every method, so methods are compared on identical proxies. "
    "sigma = 0 is deterministic and run once."
)

METHODS = (
    "recall:evidence",
    "recall:evidence, reps' proxies",
    "recall:every",
    "recall:representatives",
    "recall:all",
    "mean*proxy",
    "proxy-only",
    "mean-only",
    "random",
)
METHOD_NOTES = {
    "recall:evidence": "coarse_recall, scope='evidence' (hfselect's default: own proxy + benchmark evidence)",
    "recall:evidence, reps' proxies": (
        "coarse_recall, scope='evidence' given only the representatives' proxies (the large-repository trick)"
    ),
    "recall:every": "coarse_recall, scope='every' (every model's own proxy; ties to the better mean)",
    "recall:representatives": "coarse_recall, scope='representatives' (the paper's rule: one proxy per cluster)",
    "recall:all": "coarse_recall, scope='all' (the released code: every clustered model's own proxy)",
    "mean*proxy": "mean benchmark score x exp(proxy), every model proxied (the rule without clustering)",
    "proxy-only": "rank every model by its own noisy proxy alone (every model proxied)",
    "mean-only": "rank by mean benchmark score over the other datasets (no proxy)",
    "random": "K models drawn at random (expectation over draws)",
}


def ranking_order(scores: np.ndarray) -> np.ndarray:
    """Indices best first; ties keep row order (as ``coarse_recall`` does); NaN last."""
    keys = np.where(np.isnan(scores), np.inf, -scores)
    return np.argsort(keys, kind="stable")


def top_k_quality(
    order: Sequence[int], truth: np.ndarray, ks: Sequence[int]
) -> dict[int, tuple[bool, float]]:
    """For each K: (hit, regret). A hit is a regret of 0: ties for the best score all count as best."""
    best = float(np.max(truth))
    quality = {}
    for k in ks:
        within = float(np.max(truth[np.asarray(order[:k])]))
        regret = best - within
        quality[k] = (regret <= 1e-12, regret)
    return quality


def random_quality(truth: np.ndarray, ks: Sequence[int], draws: int, rng: np.random.Generator) -> dict:
    """Expected hit rate and regret of K models drawn at random (Monte Carlo, seeded)."""
    best = float(np.max(truth))
    n = len(truth)
    result = {}
    for k in ks:
        k_eff = min(k, n)
        picks = np.argsort(rng.random((draws, n)), axis=1)[:, :k_eff]
        regrets = best - truth[picks].max(axis=1)
        result[k] = (float(np.mean(regrets <= 1e-12)), float(np.mean(regrets)))
    return result


def simulate_proxy(truth: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """See :data:`SIMULATION`."""
    noisy = truth + (rng.normal(0.0, sigma, size=truth.shape) if sigma > 0 else 0.0)
    return np.log(np.maximum(noisy, PROXY_FLOOR))


def summary_intervals(frame: pd.DataFrame, replicates: int = 1000) -> dict[tuple, dict[str, list[float]]]:
    """Bootstrap intervals of each (sigma, method, K)'s hit rate and mean regret.

    The cells of a group are its (seed, target) draws: the interval resamples seeds and targets
    together (``_stats``), with the same draws for every group of the same shape, so methods are
    compared on the same replicates.
    """
    intervals: dict[tuple, dict[str, list[float]]] = {}
    draws_by_shape: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
    for key, group in frame.fillna({"seed": -1}).groupby(["sigma", "method", "k"], sort=False):
        hits = group.pivot(index="seed", columns="target", values="hit").to_numpy(dtype=float)
        regrets = group.pivot(index="seed", columns="target", values="regret").to_numpy(dtype=float)
        if hits.shape not in draws_by_shape:
            draws_by_shape[hits.shape] = resample_indices(*hits.shape, replicates)
        draws = draws_by_shape[hits.shape]
        hit, regret = bootstrap_mean(hits, draws), bootstrap_mean(regrets, draws)
        intervals[(float(key[0]), key[1], int(key[2]))] = {
            "hit_rate_interval": [hit.low, hit.high],
            "regret_interval": [regret.low, regret.high],
        }
    return intervals


def leave_one_out(
    matrix: pd.DataFrame,
    threshold: float,
    sigmas: Sequence[float],
    seeds: int,
    ks: Sequence[int],
    base_seed: int,
    random_draws: int,
) -> dict[str, Any]:
    """Every dataset in turn is the target; see the module docstring, (b)."""
    n_datasets = matrix.shape[1]
    # The paper's distance needs more than k_largest shared datasets: with k=5 the vision matrix's
    # 5 remaining datasets make every pair non-comparable (no cluster at all), so k is lowered there.
    k_largest = min(PAPER_K_LARGEST, n_datasets - 2)
    records: list[dict[str, Any]] = []
    per_target: list[dict[str, Any]] = []
    proxies_needed: dict[str, list[int]] = {"recall:representatives": [], "recall:all": []}
    proxies_needed["recall:evidence, reps' proxies"] = proxies_needed["recall:representatives"]
    clusters_per_target: list[dict[str, int]] = []
    for t_index, target in enumerate(matrix.columns):
        truth_all = matrix[target]
        # A model without a score on the target cannot be judged: leave it out of this round.
        keep = truth_all.notna().to_numpy()
        performance = matrix.loc[keep].drop(columns=target)
        performance = performance[performance.notna().any(axis=1)]
        truth = matrix.loc[performance.index, target].to_numpy(dtype=float)
        models = list(performance.index)
        n = len(models)
        clustering = ModelClustering(threshold=threshold, k_largest=k_largest).fit(performance)
        needed = {
            scope: models_needing_proxy(performance, scope=scope, clustering=clustering)
            for scope in ("evidence", "every", "representatives", "all")
        }
        proxies_needed["recall:representatives"].append(len(needed["representatives"]))
        proxies_needed["recall:all"].append(len(needed["all"]))
        clusters_per_target.append(
            {
                "clusters": clustering.n_clusters_,
                "multi": sum(1 for c in clustering.clusters_ if len(c) > 1),
            }
        )
        # The same mean as coarse_recall: NaN skipped, scores <= 0 kept.
        means = performance.mean(axis=1, skipna=True).to_numpy(dtype=float)
        position = {model: i for i, model in enumerate(models)}
        best_index = int(np.argmax(truth))
        target_row: dict[str, Any] = {
            "target": target,
            "n_models": n,
            "best_model": models[best_index],
            "best_score": float(truth[best_index]),
            "clusters": clustering.n_clusters_,
            "proxies_representatives": len(needed["representatives"]),
            "proxies_all": len(needed["all"]),
            "rank_of_best_sigma0": {},
            "regret_at_5_sigma0": {},
        }
        rand = random_quality(truth, ks, random_draws, np.random.default_rng([base_seed, t_index, 99]))
        for sigma in sigmas:
            for seed in range(1 if sigma == 0 else seeds):
                # One draw per (target, sigma, seed), shared by all methods.
                rng = np.random.default_rng([base_seed, seed, t_index, round(sigma * 1_000_000)])
                proxy = simulate_proxy(truth, sigma, rng)
                orders: dict[str, np.ndarray] = {}
                for scope in ("evidence", "every", "representatives", "all"):
                    # Only the proxies the rule asks for are given: coarse_recall raises if it needs more.
                    given = {model: float(proxy[position[model]]) for model in needed[scope]}
                    result = coarse_recall(performance, given, top_k=None, scope=scope, clustering=clustering)
                    orders[f"recall:{scope}"] = np.array([position[e.model_id] for e in result.ranking])
                    if scope == "representatives":
                        # The best model's role (representative, member, singleton) explains its rank.
                        roles = {entry.model_id: entry.role for entry in result.ranking}
                        target_row["best_model_role"] = roles[models[best_index]]
                # The evidence rule with the paper's budget: members take their representative's proxy.
                given = {model: float(proxy[position[model]]) for model in needed["representatives"]}
                result = coarse_recall(
                    performance, given, top_k=None, scope="evidence", clustering=clustering
                )
                orders["recall:evidence, reps' proxies"] = np.array(
                    [position[e.model_id] for e in result.ranking]
                )
                orders["mean*proxy"] = ranking_order(means * np.exp(proxy))
                orders["proxy-only"] = ranking_order(proxy)
                orders["mean-only"] = ranking_order(means)
                for method, order in orders.items():
                    for k, (hit, regret) in top_k_quality(order, truth, ks).items():
                        records.append(
                            {
                                "target": target,
                                "sigma": sigma,
                                "seed": seed,
                                "method": method,
                                "k": k,
                                "hit": hit,
                                "regret": regret,
                            }
                        )
                    if sigma == 0:
                        # Where the best model lands: tells where the rule fails, not just how often.
                        ties = np.flatnonzero(truth >= truth[best_index] - 1e-12)
                        rank = int(min(np.flatnonzero(np.isin(order, ties)))) + 1
                        target_row["rank_of_best_sigma0"][method] = rank
                        target_row["regret_at_5_sigma0"][method] = top_k_quality(order, truth, [5])[5][1]
            for k in ks:
                records.append(
                    {
                        "target": target,
                        "sigma": sigma,
                        "seed": None,
                        "method": "random",
                        "k": k,
                        "hit": rand[k][0],
                        "regret": rand[k][1],
                    }
                )
        per_target.append(target_row)

    frame = pd.DataFrame(records)
    frame["hit"] = frame["hit"].astype(float)
    summary = (
        frame.groupby(["sigma", "method", "k"], sort=False)
        .agg(
            hit_rate=("hit", "mean"),
            mean_regret=("regret", "mean"),
            max_regret=("regret", "max"),
            runs=("hit", "size"),
        )
        .reset_index()
    )
    intervals = summary_intervals(frame)
    n_models = [row["n_models"] for row in per_target]
    needs = {
        method: {"mean": float(np.mean(v)), "min": int(min(v)), "max": int(max(v))}
        for method, v in proxies_needed.items()
    }
    needs["recall:evidence"] = needs["recall:every"] = needs["mean*proxy"] = needs["proxy-only"] = {
        "mean": float(np.mean(n_models)),
        "min": min(n_models),
        "max": max(n_models),
    }
    needs["mean-only"] = needs["random"] = {"mean": 0.0, "min": 0, "max": 0}
    return {
        "threshold": threshold,
        "k_largest": k_largest,
        "targets": len(matrix.columns),
        "sigmas": list(sigmas),
        "seeds": seeds,
        "ks": list(ks),
        "clusters_per_target": {
            "mean_clusters": float(np.mean([c["clusters"] for c in clusters_per_target])),
            "mean_multi_model_clusters": float(np.mean([c["multi"] for c in clusters_per_target])),
        },
        "proxies_needed": needs,
        "summary": [
            {
                "sigma": float(row.sigma),
                "method": row.method,
                "k": int(row.k),
                "hit_rate": float(row.hit_rate),
                "mean_regret": float(row.mean_regret),
                "max_regret": float(row.max_regret),
                "runs": int(row.runs),
                **intervals[(float(row.sigma), row.method, int(row.k))],
            }
            for row in summary.itertuples(index=False)
        ],
        "per_target": per_target,
    }
