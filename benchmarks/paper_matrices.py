"""Clustering and coarse recall on the paper's released performance matrices (NLP and vision).

Cui et al., "A Two-Phase Recall-and-Select Framework for Fast Model Selection" (arXiv 2404.00069)
released two performance matrices of real Hub models fine-tuned on benchmark datasets (39 NLP
models x 21 datasets, 30 vision models x 6 datasets). This script measures, on them:

(a) the offline clustering (:class:`hfselect.core.clustering.ModelClustering`) at the paper's
    thresholds (NLP 0.09, vision 0.03) and with ``threshold="silhouette"``: number of clusters,
    multi-model clusters, silhouette, and how many proxy scores each recall scope needs;
(b) leave-one-dataset-out recall quality (:mod:`paper_matrices_recall`) of
    :func:`hfselect.core.recall.coarse_recall`: each benchmark dataset in turn is the target, the
    others form the performance matrix, and the proxy (LEEP in the paper) is *simulated* from the
    target's true scores (see :data:`SIMULATION`). For each K: the hit rate (a best model on the
    target is in the top K) and the regret (best score minus the best score within the top K), for
    every ``scope`` (``"evidence"`` also given only the representatives' proxies), against
    baselines that use no clustering;
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
from _stats import CONFIDENCE
from paper_matrices_recall import (
    METHOD_NOTES,
    METHODS,
    PAPER_K_LARGEST,
    SIMULATION,
    leave_one_out,
    ranking_order,
)

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
