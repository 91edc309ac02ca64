"""Clustering and coarse recall on the paper's released performance matrices (NLP and vision).

Cui et al., "A Two-Phase Recall-and-Select Framework for Fast Model Selection" (arXiv 2404.00069)
released two performance matrices of real Hub models fine-tuned on benchmark datasets (39 NLP
models x 21 datasets, 30 vision models x 6 datasets). This script measures, on them:

(a) the offline clustering (:class:`hfselect.core.clustering.ModelClustering`) at the paper's
    thresholds (NLP 0.09, vision 0.03) and with ``threshold="silhouette"``: number of clusters,
    multi-model clusters, silhouette, and how many proxy scores each recall scope needs;
(b) leave-one-dataset-out recall quality of :func:`hfselect.core.recall.coarse_recall`: each benchmark
    dataset in turn is the target, the others form the performance matrix, and the proxy (LEEP in
    the paper) is *simulated* from the target's true scores (see :data:`SIMULATION`). For each K:
    the hit rate (a best model on the target is in the top K) and the regret (best score minus the
    best score within the top K), for every ``scope`` (``"evidence"`` also given only the
    representatives' proxies), against baselines that use no clustering;
(c) the recall with the released LEEP scores of the paper's two real targets (MultiRC, chest
    X-ray), whose fine-tuned scores are not released: what it recalls and how many proxies it needs.

Run ``python benchmarks/paper_matrices.py [--json out.json]``; ``--help`` lists the knobs. The
anchors folder is looked up next to the checkout (``../shared/anchors/two-phase-selection``);
without it the script prints "skipped: anchors not found" and exits 0.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _shared import machine_info, table
from _stats import CONFIDENCE, bootstrap_mean, resample_indices

from hfselect.core.clustering import ModelClustering
from hfselect.core.recall import coarse_recall, models_needing_proxy
from hfselect.store import parse_matrix

DEFAULT_ANCHORS = Path(__file__).resolve().parents[2] / "shared" / "anchors" / "two-phase-selection"

# name -> (matrix file, dataset list, the paper's threshold, released LEEP file, its target dataset)
MATRICES: dict[str, tuple[str, str, float, str, str]] = {
    "nlp": ("nlp_matrix.tsv", "nlp_datasets.txt", 0.09, "nlp_leep_multirc.tsv", "super_glue:multirc"),
    "cv": (
        "cv_matrix.tsv",
        "cv_datasets.txt",
        0.03,
        "cv_leep_xray.tsv",
        "trpakov/chest-xray-classification",
    ),
}
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


# -- helpers -----------------------------------------------------------------------------------------


def shorten(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, keeping its end (model ids differ at the end)."""
    return text if len(text) <= width else "..." + text[-(width - 3) :]


def load_matrix(anchors: Path, name: str) -> pd.DataFrame:
    """The released matrix as a DataFrame: rows = model ids (file order), columns = datasets."""
    matrix_file, datasets_file = MATRICES[name][:2]
    parsed = parse_matrix(anchors / matrix_file, anchors / datasets_file)
    frame = pd.DataFrame(parsed)  # {dataset: {model: score}} -> models x datasets, file order kept
    frame.index.name = "model_id"
    return frame.astype(float)


def load_leep(anchors: Path, name: str) -> pd.Series:
    """The released LEEP scores (model id -> LEEP) of a matrix's real target dataset."""
    lines = [line for line in (anchors / MATRICES[name][3]).read_text().splitlines() if line.strip()]
    models = [model.strip().replace("--", "/") for model in lines[0].split("\t")]
    values = [float(value) for value in lines[1].split("\t")]
    return pd.Series(values, index=models, dtype=float)


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


# -- (a) clustering -------------------------------------------------------------------------------------


def clustering_summary(matrix: pd.DataFrame, threshold: float | str) -> dict[str, Any]:
    """Cluster counts, silhouette and proxy needs of one threshold on the full matrix."""
    clustering = ModelClustering(threshold=threshold, k_largest=PAPER_K_LARGEST).fit(matrix)
    multi = [members for members in clustering.clusters_ if len(members) > 1]
    reps = models_needing_proxy(matrix, scope="representatives", clustering=clustering)
    everyone = models_needing_proxy(matrix, scope="all", clustering=clustering)
    finite = clustering.distances_.to_numpy()
    off_diagonal = ~np.eye(len(matrix), dtype=bool)
    return {
        "threshold": threshold,
        "threshold_used": clustering.threshold_,
        "n_models": len(matrix),
        "n_clusters": clustering.n_clusters_,
        "multi_model_clusters": len(multi),
        "models_in_multi_model_clusters": sum(len(members) for members in multi),
        "singletons": clustering.n_clusters_ - len(multi),
        "largest_cluster": max(len(members) for members in clustering.clusters_),
        "silhouette": None if math.isnan(clustering.silhouette_) else clustering.silhouette_,
        "non_comparable_pairs": int(np.isinf(finite[off_diagonal]).sum() // 2),
        "proxies_representatives": len(reps),
        "proxies_all": len(everyone),
        "clusters": [list(members) for members in multi],
        "representatives": reps,
    }


# -- (b) leave-one-dataset-out ----------------------------------------------------------------------------


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


# -- (c) the released LEEP scores ----------------------------------------------------------------------


def released_leep_recall(matrix: pd.DataFrame, leep: pd.Series, threshold: float, top_k: int) -> dict:
    """The recall with the paper's real LEEP scores on its real target (no ground truth released)."""
    clustering = ModelClustering(threshold=threshold, k_largest=PAPER_K_LARGEST).fit(matrix)
    lists = {}
    for scope in ("representatives", "all"):
        needed = models_needing_proxy(matrix, scope=scope, clustering=clustering)
        result = coarse_recall(
            matrix, {m: float(leep[m]) for m in needed}, top_k=top_k, scope=scope, clustering=clustering
        )
        lists[scope] = {"proxies": len(needed), "top": result.models}
    means = matrix.mean(axis=1, skipna=True)
    mean_top = list(means.iloc[ranking_order(means.to_numpy())[:top_k]].index)
    return {
        "top_k": top_k,
        "leep_min": float(leep.min()),
        "leep_max": float(leep.max()),
        "leep_std": float(leep.std(ddof=0)),
        "exp_leep_spread": float(np.exp(leep.max()) / np.exp(leep.min())),
        "representatives": lists["representatives"],
        "all": lists["all"],
        "mean_only_top": mean_top,
        "overlap_representatives_all": len(set(lists["representatives"]["top"]) & set(lists["all"]["top"])),
        "overlap_representatives_mean_only": len(set(lists["representatives"]["top"]) & set(mean_top)),
    }


# -- printing --------------------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def print_matrix_report(name: str, report: dict[str, Any]) -> None:
    """The tables of one matrix."""
    print(f"\n=== {name.upper()} matrix: {report['n_models']} models x {report['n_datasets']} datasets ===")
    print("\n(a) clustering on the full matrix (paper distance, k_largest=5, average linkage)")
    rows = [
        [
            str(c["threshold"]),
            _fmt(c["threshold_used"], 4),
            c["n_clusters"],
            c["multi_model_clusters"],
            c["models_in_multi_model_clusters"],
            c["singletons"],
            c["largest_cluster"],
            _fmt(c["silhouette"]),
            c["proxies_representatives"],
            c["proxies_all"],
        ]
        for c in report["clustering"]
    ]
    print(
        table(
            [
                "threshold",
                "used",
                "clusters",
                "multi",
                "in multi",
                "singletons",
                "largest",
                "silhouette",
                "proxies(reps)",
                "proxies(all)",
            ],
            rows,
        )
    )
    paper = report["clustering"][0]
    print(f"multi-model clusters at {paper['threshold']} (representative first):")
    for members, rep in zip(paper["clusters"], paper["representatives"], strict=True):
        others = [m for m in members if m != rep]
        print(f"  [{len(members)}] {rep}  + " + ", ".join(others))

    loo = report["leave_one_out"]
    print(
        f"\n(b) leave-one-dataset-out recall: {loo['targets']} targets, threshold {loo['threshold']}, "
        f"k_largest {loo['k_largest']}, {loo['seeds']} seeds per sigma > 0"
    )
    if loo["k_largest"] != PAPER_K_LARGEST:
        print(
            f"    note: with {loo['targets'] - 1} datasets left, k_largest=5 makes every pair non-comparable "
            f"(no cluster at all); k_largest={loo['k_largest']} is used so that the rule has clusters"
        )
    print(
        f"    clusters per target: {loo['clusters_per_target']['mean_clusters']:.1f} on average, "
        f"{loo['clusters_per_target']['mean_multi_model_clusters']:.1f} with several models"
    )
    print("    simulated proxy: " + SIMULATION)
    needs = loo["proxies_needed"]
    print(
        table(
            ["method", "proxies/target", "min", "max"],
            [[m, f"{v['mean']:.1f}", v["min"], v["max"]] for m, v in needs.items()],
        )
    )
    print(
        "\n    hit rate (a best model in the top K) [its "
        f"{CONFIDENCE:.0%} bootstrap interval over seeds and targets] / mean regret (best score - best in top K)"
    )
    by_key = {(r["sigma"], r["method"], r["k"]): r for r in loo["summary"]}
    rows = []
    for sigma in loo["sigmas"]:
        for method in METHODS:
            cells = []
            for k in loo["ks"]:
                r = by_key.get((float(sigma), method, k))
                if r is None:
                    cells.append("-")
                    continue
                low, high = (100 * v for v in r["hit_rate_interval"])
                cells.append(f"{100 * r['hit_rate']:5.1f}% [{low:.0f}-{high:.0f}] {r['mean_regret']:.3f}")
            rows.append([f"{sigma:g}", method, *cells])
    print(table(["sigma", "method", *[f"K={k}" for k in loo["ks"]]], rows, left=2))

    print("\n    per target at sigma=0 (exact proxy): rank of the best model (regret at K=5)")
    methods = ["recall:evidence", "recall:representatives", "recall:all", "mean*proxy", "mean-only"]
    rows = []
    for t in loo["per_target"]:
        rows.append(
            [
                shorten(t["target"], 24),
                shorten(t["best_model"], 40),
                t["best_model_role"],
                f"{t['best_score']:.3f}",
                t["clusters"],
                t["proxies_representatives"],
                *[f"{t['rank_of_best_sigma0'][m]} ({t['regret_at_5_sigma0'][m]:.3f})" for m in methods],
            ]
        )
    print(
        table(
            [
                "target",
                "best model",
                "its role",
                "best",
                "clusters",
                "proxies",
                "evidence",
                "reps",
                "all",
                "mean*proxy",
                "mean-only",
            ],
            rows,
            left=3,
        )
    )

    leep = report["released_leep"]
    print(
        f"\n(c) recall with the released LEEP scores on {report['leep_target']} "
        f"(no fine-tuned scores released: no ground truth)"
    )
    print(
        f"    LEEP range {leep['leep_min']:.3f} .. {leep['leep_max']:.3f} (std {leep['leep_std']:.4f}); "
        f"exp(LEEP) max/min = {leep['exp_leep_spread']:.3f}"
    )
    for scope in ("representatives", "all"):
        entry = leep[scope]
        print(
            f"    top {leep['top_k']} ({scope}, {entry['proxies']} proxies): "
            + ", ".join(entry["top"][:5])
            + ", ..."
        )
    print(
        f"    overlap of the top {leep['top_k']}: representatives vs all {leep['overlap_representatives_all']}, "
        f"representatives vs mean-only {leep['overlap_representatives_mean_only']}"
    )


# -- entry point -----------------------------------------------------------------------------------------


def _floats(text: str) -> list[float]:
    return [float(part) for part in text.split(",") if part.strip()]


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options (see ``--help``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--anchors", type=Path, default=DEFAULT_ANCHORS, help="folder of the released files")
    parser.add_argument("--matrices", default="nlp,cv", help="comma-separated: nlp, cv")
    parser.add_argument("--sigmas", type=_floats, default=[0.0, 0.02, 0.05, 0.1], help="proxy noise sizes")
    parser.add_argument("--seeds", type=int, default=20, help="noise draws per target and sigma > 0")
    parser.add_argument("--ks", type=_ints, default=[1, 3, 5, 8, 15], help="recall sizes K")
    parser.add_argument("--seed", type=int, default=0, help="base seed of every draw")
    parser.add_argument(
        "--random-draws", type=int, default=2000, help="Monte Carlo draws of the random baseline"
    )
    parser.add_argument("--json", type=Path, default=None, help="write the numbers here")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print the tables; write ``--json``. Returns the exit code."""
    args = parse_args(argv)
    started = time.perf_counter()
    machine = machine_info()
    print(
        f"machine: {machine['cpu_count']} CPUs, load average {machine['load_average']}, "
        f"Python {machine['python']}"
    )
    names = [name.strip() for name in args.matrices.split(",") if name.strip()]
    unknown = [name for name in names if name not in MATRICES]
    if unknown:
        print(f"unknown matrices: {unknown}; choose from {list(MATRICES)}", file=sys.stderr)
        return 2
    missing = [
        args.anchors / MATRICES[name][i]
        for name in names
        for i in (0, 1, 3)
        if not (args.anchors / MATRICES[name][i]).is_file()
    ]
    if missing:
        print(f"skipped: anchors not found ({missing[0]} is missing)")
        if args.json:
            args.json.write_text(json.dumps({"benchmark": "paper_matrices", "skipped": "anchors not found"}))
        return 0

    output: dict[str, Any] = {
        "benchmark": "paper_matrices",
        "machine": machine,
        "config": {
            "anchors": str(args.anchors),
            "sigmas": args.sigmas,
            "seeds": args.seeds,
            "ks": args.ks,
            "seed": args.seed,
            "random_draws": args.random_draws,
        },
        "simulation": SIMULATION,
        "methods": METHOD_NOTES,
        "matrices": {},
    }
    for name in names:
        matrix = load_matrix(args.anchors, name)
        threshold = MATRICES[name][2]
        report: dict[str, Any] = {
            "n_models": matrix.shape[0],
            "n_datasets": matrix.shape[1],
            "paper_threshold": threshold,
            "clustering": [clustering_summary(matrix, threshold), clustering_summary(matrix, "silhouette")],
            "leave_one_out": leave_one_out(
                matrix, threshold, args.sigmas, args.seeds, args.ks, args.seed, args.random_draws
            ),
            "leep_target": MATRICES[name][4],
            "released_leep": released_leep_recall(
                matrix, load_leep(args.anchors, name), threshold, max(args.ks)
            ),
        }
        output["matrices"][name] = report
        print_matrix_report(name, report)

    output["elapsed_s"] = time.perf_counter() - started
    output["machine"]["load_average_end"] = machine_info()["load_average"]
    print(
        f"\nelapsed {output['elapsed_s']:.1f} s; load average at the end {output['machine']['load_average_end']}"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(output, indent=1))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
