"""Replay model-selection strategies on recorded learning curves: cost and regret, side by side.

The paper's own method of evaluation. The offline zoo is benchmarked once with ``hfselect bench``
(every model on every zoo dataset, a validation score per epoch and a final test score):

    hfselect zoo build zoo-full --size full
    hfselect bench --models zoo-full/models --datasets zoo-full/datasets --epochs 5 \\
        --learning-rate 3e-3 --max-length 48 --repository zoo-full.sqlite

Then, leave one dataset out: each zoo dataset in turn is the target and the others are the
benchmark datasets. Strategies are replayed from the recorded curves without retraining:

* ``brute_force``: every model to the full budget, the best final validation score wins.
* ``proxy_top1``: fine-tune only the model with the best proxy score.
* ``successive_halving``: plain synchronous successive halving over every model (one epoch per
  rung, the better half by current validation score goes on), the survivor to the full budget.
* ``two_phase_paper``: the paper: clustering (0.09) + LEEP recall (its released code's scope, every
  clustered model proxied; LogME for all when a model has no head) of the paper's share of the
  models (15 of 39) + synchronous halving with the k-means trend filter.
* ``hfselect``: our defaults: recall of ``--candidates`` models by the default rule
  (``DEFAULT_SCOPE``), then halving with the headroom trend predictor.

Cost = fine-tuning epochs, plus the proxies expressed in epoch-equivalents (each model's measured
proxy time on the target divided by its measured time per fine-tuning epoch on it). Regret = best
final test score in the repository - final test score of the selected model (scores in [0, 1]);
hit rate = how often the selected model is the best. Model outputs for the proxies are computed once
per (model, target) and cached in ``--cache``; the replay itself takes seconds.

Also printed: recall quality per proxy and rule (hit rate and regret of the top-K for K = 1, 3, 5, 8; Spearman
correlation of each proxy with the fine-tuned scores) and the trend predictors' held-out error.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from hfselect.clustering import ModelClustering
from hfselect.recall import DEFAULT_SCOPE, SCOPES, coarse_recall, models_needing_proxy, proxy_weight
from hfselect.repository import ModelRepository
from hfselect.selection import SelectConfig, successive_halving_epochs
from hfselect.selection import replay_halving as replay_curves
from hfselect.trend import DEFAULT_PREDICTOR, curves_by_model, evaluate_predictors, make_predictor

PROXIES = ("leep", "nce", "logme", "hscore", "knn")
HEAD_PROXIES = ("leep", "nce")


@dataclass
class Zoo:
    """The recorded benchmark: final test scores, validation curves, epoch times, proxy scores."""

    test: pd.DataFrame  # model x dataset final test score
    curves: dict[tuple[str, str], list[float]]  # (model, dataset) -> validation score per epoch
    epoch_seconds: pd.DataFrame  # model x dataset seconds per fine-tuning epoch
    proxies: dict[str, dict[str, dict[str, float | None]]]  # proxy -> dataset -> model -> score
    proxy_seconds: dict[str, dict[str, float]]  # dataset -> model -> seconds for its outputs
    epochs: int
    max_length: int


def load_zoo(repository: ModelRepository) -> Zoo:
    """Read results and curves of the most common protocol from the repository."""
    results = repository.results()
    protocol = results["protocol"].value_counts().idxmax()
    results = results[results["protocol"] == protocol]
    test = results.pivot(index="model_id", columns="dataset", values="score").dropna()
    epochs = int(results["epochs"].iloc[0])
    max_length = int(results["max_length"].iloc[0])
    seconds = results.pivot(index="model_id", columns="dataset", values="duration_s") / epochs
    long = repository.curves(protocol=protocol)
    curves = {
        (model, dataset): frame.sort_values("epoch")["score"].tolist()
        for (model, dataset), frame in long.groupby(["model_id", "dataset"])
    }
    return Zoo(test, curves, seconds.loc[test.index, test.columns], {}, {}, epochs, max_length)


def compute_proxies(zoo: Zoo, zoo_dir: Path, cache: Path, sample_size: int) -> None:
    """Every proxy for every (model, dataset), from one forward pass each; cached in ``cache``."""
    from hfselect.data import load_target_sample
    from hfselect.proxy import compute_model_outputs, load_model_for_outputs, run_proxy

    stored = json.loads(cache.read_text()) if cache.exists() else {}
    # The proxies see the inputs fine-tuning saw: the same truncation.
    key = f"sample={sample_size},max_length={zoo.max_length}"
    table = stored.setdefault(key, {"scores": {}, "seconds": {}})
    for dataset in zoo.test.columns:
        if dataset in table["seconds"] and set(zoo.test.index) <= set(table["seconds"][dataset]):
            continue
        sample, columns = load_target_sample(
            str(zoo_dir / "datasets" / dataset), sample_size, streaming=False
        )
        labels = np.asarray(sample["label"])
        for model in zoo.test.index:
            started = time.perf_counter()
            loaded = load_model_for_outputs(str(zoo_dir / "models" / model))
            outputs = compute_model_outputs(loaded, sample, columns, max_length=zoo.max_length)
            table["seconds"].setdefault(dataset, {})[model] = time.perf_counter() - started
            for proxy in PROXIES:
                value = None
                if proxy not in HEAD_PROXIES or outputs.source_probs is not None:
                    value = run_proxy(proxy, outputs, labels)
                table["scores"].setdefault(proxy, {}).setdefault(dataset, {})[model] = value
            print(f"  proxies: {model} on {dataset}", file=sys.stderr)
        cache.write_text(json.dumps(stored))
    zoo.proxies, zoo.proxy_seconds = table["scores"], table["seconds"]


def proxy_scores(zoo: Zoo, proxy: str, target: str) -> tuple[str, dict[str, float]]:
    """The proxy on the target for every model; a head proxy falls back to LogME for all when a model lacks a head."""
    values = zoo.proxies[proxy][target]
    if any(values[model] is None for model in zoo.test.index):
        proxy = "logme"
        values = zoo.proxies[proxy][target]
    return proxy, {model: float(values[model]) for model in zoo.test.index}


def proxy_cost(zoo: Zoo, target: str, models: list[str]) -> float:
    """Proxy time of ``models`` on the target in epoch-equivalents of their own fine-tuning."""
    return float(sum(zoo.proxy_seconds[target][m] / zoo.epoch_seconds.loc[m, target] for m in models))


def replay_halving(
    zoo: Zoo,
    target: str,
    candidates: list[str],
    predictor: str | None,
    benchmarks: list[str],
    margin: float | str = 0.0,
    every_epoch: bool = False,
) -> tuple[str, int]:
    """Synchronous halving over recorded curves; ``predictor=None`` is plain successive halving.

    The library's rule (:func:`hfselect.selection.replay_halving`): rounds at its rungs, or after
    every epoch with ``every_epoch`` (the paper's schedule, and plain successive halving's here).
    ``margin`` as ``SelectConfig.margin``: a number, or ``"auto"`` for each candidate's
    predictor's held-out error at that epoch.
    """
    budget = zoo.epochs
    predictors = None
    if predictor is not None:
        other = {(m, d): c for (m, d), c in zoo.curves.items() if d in benchmarks}
        rows = [
            {"model_id": m, "dataset": d, "protocol": "p", "epoch": e + 1, "score": s}
            for (m, d), curve in other.items()
            for e, s in enumerate(curve)
        ]
        by_model = curves_by_model(pd.DataFrame(rows))
        predictors = {m: make_predictor(predictor, m, by_model) for m in candidates}
    replay = replay_curves(
        {m: zoo.curves[(m, target)] for m in candidates},
        budget,
        predictors=predictors,
        margin=margin,
        rungs=list(range(1, budget + 1)) if every_epoch or predictor is None else None,
    )
    return replay.selected, sum(replay.epochs.values())


def run_target(zoo: Zoo, target: str, candidates: int, proxy: str) -> dict[str, dict[str, Any]]:
    """Every strategy on one target."""
    benchmarks = [d for d in zoo.test.columns if d != target]
    performance = zoo.test[benchmarks]
    models = list(zoo.test.index)
    n, budget = len(models), zoo.epochs
    rows: dict[str, dict[str, Any]] = {}

    best_val = max(models, key=lambda m: zoo.curves[(m, target)][-1])
    rows["brute_force"] = {"selected": best_val, "cost": n * budget}

    used, scores = proxy_scores(zoo, proxy, target)
    top = max(models, key=lambda m: scores[m])
    rows["proxy_top1"] = {"selected": top, "cost": budget + proxy_cost(zoo, target, models)}

    selected, cost = replay_halving(zoo, target, models, None, benchmarks)
    rows["successive_halving"] = {"selected": selected, "cost": cost}
    assert cost == successive_halving_epochs(n, budget)

    paper_k = max(2, round(15 / 39 * n))
    leep_used, leep = proxy_scores(zoo, "leep", target)
    needed = models_needing_proxy(performance, 0.09, 5, "all")
    recall = coarse_recall(
        performance, leep, paper_k, 0.09, 5, "all", proxy_transform=proxy_weight(leep_used)
    )
    selected, cost = replay_halving(zoo, target, list(recall.models), "kmeans", benchmarks, every_epoch=True)
    rows["two_phase_paper"] = {"selected": selected, "cost": cost + proxy_cost(zoo, target, needed)}

    def hfselect(k: int, scope: str = DEFAULT_SCOPE, margin: float | str = SelectConfig.margin) -> dict:
        needed = models_needing_proxy(performance, 0.09, 5, scope)
        recall = coarse_recall(performance, scores, k, 0.09, 5, scope, proxy_transform=proxy_weight(used))
        selected, cost = replay_halving(
            zoo, target, list(recall.models), DEFAULT_PREDICTOR, benchmarks, margin
        )
        return {
            "selected": selected,
            "cost": cost + proxy_cost(zoo, target, needed),
            "candidates": list(recall.models),
            "finetune_epochs": cost,  # without the proxies: what issue 5 compares with brute force
            "candidates_brute_force_epochs": len(recall.models) * budget,
            "regret_vs_candidates": float(
                zoo.test.loc[list(recall.models), target].max() - zoo.test.loc[selected, target]
            ),
        }

    rows["hfselect"] = hfselect(candidates)
    # What each choice contributes: the paper's recall rule, the paper's margin, other recall sizes.
    rows["hfselect, scope=representatives"] = hfselect(candidates, scope="representatives")
    rows["hfselect, scope=every"] = hfselect(candidates, scope="every")
    rows["hfselect, margin=0"] = hfselect(candidates, margin=0.0)
    for k in (candidates - 1, candidates + 2, candidates + 4):
        rows[f"hfselect, K={k}"] = hfselect(k)

    best = zoo.test[target].max()
    for row in rows.values():
        row["regret"] = float(best - zoo.test.loc[row["selected"], target])
        row["hit"] = bool(row["regret"] <= 1e-12)
    return rows


def recall_quality(zoo: Zoo) -> pd.DataFrame:
    """Leave-one-dataset-out top-K recall (K = 1, 3, 5, 8) and Spearman correlation, per proxy and rule."""
    rows = []
    for proxy, scope in itertools.product(PROXIES, SCOPES):
        for k in (1, 3, 5, 8):
            hits, regrets, correlations = [], [], []
            for target in zoo.test.columns:
                performance = zoo.test[[d for d in zoo.test.columns if d != target]]
                used, scores = proxy_scores(zoo, proxy, target)
                recall = coarse_recall(
                    performance, scores, k, 0.09, 5, scope, proxy_transform=proxy_weight(used)
                )
                truth = zoo.test[target]
                regrets.append(float(truth.max() - truth[list(recall.models)].max()))
                hits.append(regrets[-1] <= 1e-12)
                raw = zoo.proxies[proxy][target]
                pairs = [(raw[m], truth[m]) for m in zoo.test.index if raw[m] is not None]
                correlations.append(
                    spearmanr(*zip(*pairs, strict=True)).statistic if len(pairs) > 2 else np.nan
                )
            rows.append(
                {
                    "proxy": proxy,
                    "scope": scope,
                    "K": k,
                    "hit_rate": float(np.mean(hits)),
                    "mean_regret": float(np.mean(regrets)),
                    "spearman": float(np.nanmean(correlations)),
                }
            )
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    """Run the replay and print the tables."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repository", required=True, help="the benchmarked zoo repository (see above)")
    parser.add_argument("--zoo", required=True, help="the zoo folder the repository was benchmarked from")
    parser.add_argument("--cache", help="proxy cache JSON (default: beside the repository)")
    parser.add_argument(
        "--sample-size",
        type=int,
        default=256,
        help="target examples the proxies see (half a zoo training split)",
    )
    parser.add_argument("--candidates", type=int, default=4, help="hfselect's recall size (select's default)")
    parser.add_argument(
        "--proxy", default="logme", choices=PROXIES, help="hfselect's proxy (select's default)"
    )
    parser.add_argument("--json", help="write the numbers here")
    args = parser.parse_args(argv)
    from hfselect.cli import quiet_libraries

    quiet_libraries()

    with ModelRepository(args.repository) as repository:
        zoo = load_zoo(repository)
        trend_error = evaluate_predictors(
            repository.curves(), epochs=(1, 2), names=("kmeans", "headroom", "neighbours", "current")
        )
    cache = Path(args.cache) if args.cache else Path(args.repository).with_suffix(".proxies.json")
    compute_proxies(zoo, Path(args.zoo), cache, args.sample_size)

    per_target = {target: run_target(zoo, target, args.candidates, args.proxy) for target in zoo.test.columns}
    methods = list(next(iter(per_target.values())))
    summary = {}
    for method in methods:
        rows = [per_target[t][method] for t in per_target]
        summary[method] = {
            "cost_epochs": float(np.mean([r["cost"] for r in rows])),
            "mean_regret": float(np.mean([r["regret"] for r in rows])),
            "max_regret": float(np.max([r["regret"] for r in rows])),
            "hit_rate": float(np.mean([r["hit"] for r in rows])),
        }
    brute, halving = summary["brute_force"]["cost_epochs"], summary["successive_halving"]["cost_epochs"]
    n, datasets = zoo.test.shape
    clustering = ModelClustering(0.09).fit(zoo.test)
    print(
        f"zoo: {n} models x {datasets} datasets, {zoo.epochs} epochs budget; "
        f"{clustering.n_clusters_} clusters at 0.09 ({sum(len(c) > 1 for c in clustering.clusters_)} of several)"
    )
    print(
        f"{'method':32} {'epochs':>8} {'vs brute':>9} {'vs SH':>7} {'mean regret':>12} {'max regret':>11} {'hit rate':>9}"
    )
    for method, row in summary.items():
        print(
            f"{method:32} {row['cost_epochs']:8.1f} {brute / row['cost_epochs']:8.1f}x {halving / row['cost_epochs']:6.1f}x "
            f"{row['mean_regret']:12.4f} {row['max_regret']:11.4f} {row['hit_rate']:9.2f}"
        )
    print(f"\nhfselect per target ({args.candidates} candidates; epochs = fine-tuning only):")
    print(
        f"{'target':18} {'selected':30} {'regret':>7} {'vs best candidate':>18} {'epochs':>7} {'brute force':>12}"
    )
    for target, rows in per_target.items():
        row = rows["hfselect"]
        print(
            f"{target:18} {row['selected']:30} {row['regret']:7.4f} {row['regret_vs_candidates']:18.4f} "
            f"{row['finetune_epochs']:7d} {row['candidates_brute_force_epochs']:12d}"
        )
    quality = recall_quality(zoo)
    print(
        f"\nrecall quality (leave-one-dataset-out; {DEFAULT_SCOPE} = hfselect's rule, representatives = the paper's):"
    )
    print(quality.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print("\ntrend predictors, held-out error of the predicted final validation score:")
    print(trend_error.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "zoo": {"models": n, "datasets": datasets, "epochs": zoo.epochs},
                    "summary": summary,
                    "per_target": per_target,
                    "recall_quality": quality.to_dict(orient="records"),
                    "trend_error": trend_error.to_dict(orient="records"),
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
