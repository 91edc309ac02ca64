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
  models (15 of 39) + synchronous halving with the k-means trend filter (the worse half by
  predicted final score).
* ``hfselect``: our defaults: recall of ``--candidates`` models by the default rule
  (``DEFAULT_SCOPE``), then halving with the default trend predictor (``DEFAULT_PREDICTOR``), the
  worse half by rank sum (``DEFAULT_HALVING_ORDER``). Then hfselect with one choice changed: the
  recall rule, the margin, the worse half by predicted final score (the rule before), the number
  of candidates.

Cost = fine-tuning epochs, plus the proxies expressed in epoch-equivalents (each model's measured
proxy time on the target divided by its measured time per fine-tuning epoch on it). Regret = best
final test score in the repository - final test score of the selected model (scores in [0, 1]);
hit rate = how often the selected model is the best. Model outputs for the proxies are computed
once per (model, target) and cached in ``--cache``; the replay itself takes seconds.

When the repository holds several training seeds of the protocol, each run's pick is also scored on
the other seeds' runs: *rerun regret* = the best model's mean test score over those seeds minus the
pick's. A model that is best under one training seed is partly that seed's luck; brute force, which
picks on the very runs it is scored on, counts that luck as skill, and a rerun does not.

Also printed: recall quality per proxy and rule (hit rate and regret of the top-K for K = 1, 3, 5, 8; Spearman
correlation of each proxy with the fine-tuned scores) and the trend predictors' held-out error.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _shared import provenance
from _stats import CONFIDENCE, bootstrap_mean, compare, mean_of_defined, rank_correlation, resample_indices
from selection_replay_report import print_report, run_label

from hfselect.config import DEFAULT_HALVING_ORDER, DEFAULT_MARGIN, DEFAULT_PREDICTOR, HalvingOrder
from hfselect.core.clustering import ModelClustering
from hfselect.core.halving import candidate_predictors, successive_halving_epochs
from hfselect.core.halving import replay_halving as replay_curves
from hfselect.core.recall import DEFAULT_SCOPE, SCOPES, coarse_recall, models_needing_proxy, proxy_weight
from hfselect.core.trend import evaluate_predictors
from hfselect.store import ModelRepository, Protocol

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
    protocol: str = ""  # the repository's key of the protocol these results share
    # model x dataset mean final test score over the repository's *other* training seeds under the
    # same protocol (None with one seed): what a rerun of the fine-tuning gives, for rerun regret.
    rerun_test: pd.DataFrame | None = None


def load_zoo(repository: ModelRepository, seed: int | None = None) -> Zoo:
    """Read results and curves of the most common protocol (of training seed ``seed``, if given)."""
    every_result = repository.results()
    results = every_result
    if seed is not None:
        results = results[results["seed"] == seed]
        if results.empty:
            raise ValueError(f"no benchmark results with training seed {seed}")
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
    rerun = rerun_scores(every_result, results.iloc[0], test)
    seconds = seconds.loc[test.index, test.columns]
    return Zoo(test, curves, seconds, {}, {}, epochs, max_length, protocol, rerun_test=rerun)


# The fields of a benchmark protocol, as the repository records them with each result.
PROTOCOL_FIELDS = tuple(field.name for field in fields(Protocol))
# What makes two benchmark results reruns of each other: every protocol field but the seed.
RERUN_FIELDS = tuple(name for name in PROTOCOL_FIELDS if name != "seed")


def rerun_scores(results: pd.DataFrame, protocol_row: pd.Series, test: pd.DataFrame) -> pd.DataFrame | None:
    """Mean final test score of each (model, dataset) of ``test`` over the other training seeds.

    The results of the same protocol as ``protocol_row`` except its training seed, averaged over
    those seeds; None when the repository holds no other seed for every cell of ``test``. A
    selection made on one seed's curves and scored on the other seeds is scored on training runs it
    never saw: a rerun, as a user who fine-tunes the chosen model again gets.
    """
    same = np.ones(len(results), dtype=bool)
    for name in RERUN_FIELDS:
        if name in results:
            value = protocol_row[name]
            same &= results[name].isna().to_numpy() if pd.isna(value) else (results[name] == value).to_numpy()
    others = results[same & (results["seed"] != protocol_row["seed"]).to_numpy()]
    if others.empty:
        return None
    mean = others.pivot_table(index="model_id", columns="dataset", values="score", aggfunc="mean")
    if not (set(test.index) <= set(mean.index) and set(test.columns) <= set(mean.columns)):
        return None
    mean = mean.loc[test.index, test.columns]
    return None if mean.isna().to_numpy().any() else mean


def compute_proxies(zoo: Zoo, zoo_dir: Path, cache: Path, sample_size: int) -> None:
    """Every proxy for every (model, dataset), from one forward pass each; cached in ``cache``."""
    from hfselect.core.proxies import run_proxy
    from hfselect.data import load_target_sample
    from hfselect.training.features import compute_model_outputs, load_model_for_outputs

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
    order_by: HalvingOrder = DEFAULT_HALVING_ORDER,
) -> tuple[str, int]:
    """Synchronous halving over recorded curves; ``predictor=None`` is plain successive halving.

    The library's rule and predictor pool (:func:`hfselect.core.halving.replay_halving`,
    :func:`hfselect.core.halving.candidate_predictors`): rounds at its rungs, or after
    every epoch with ``every_epoch`` (the paper's schedule, and plain successive halving's here).
    ``margin`` as fine selection's: a number, or ``"auto"`` for each candidate's
    predictor's error bound at that epoch; ``order_by``: how a round orders the candidates before
    dropping the worse half (:func:`hfselect.core.halving.halving_order`).
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
        predictors = candidate_predictors(pd.DataFrame(rows), candidates, predictor)
    replay = replay_curves(
        {m: zoo.curves[(m, target)] for m in candidates},
        budget,
        predictors=predictors,
        margin=margin,
        rungs=list(range(1, budget + 1)) if every_epoch or predictor is None else None,
        order_by=order_by,
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
    selected, cost = replay_halving(
        zoo, target, list(recall.models), "kmeans", benchmarks, every_epoch=True, order_by="predicted"
    )
    rows["two_phase_paper"] = {"selected": selected, "cost": cost + proxy_cost(zoo, target, needed)}

    def hfselect(
        k: int,
        scope: str = DEFAULT_SCOPE,
        margin: float | str = DEFAULT_MARGIN,
        order_by: HalvingOrder = DEFAULT_HALVING_ORDER,
    ) -> dict:
        needed = models_needing_proxy(performance, 0.09, 5, scope)
        recall = coarse_recall(performance, scores, k, 0.09, 5, scope, proxy_transform=proxy_weight(used))
        selected, cost = replay_halving(
            zoo, target, list(recall.models), DEFAULT_PREDICTOR, benchmarks, margin, order_by=order_by
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
    rows["hfselect, worse half by predicted final"] = hfselect(candidates, order_by="predicted")
    for k in (candidates - 1, candidates + 2, candidates + 4):
        rows[f"hfselect, K={k}"] = hfselect(k)

    best = zoo.test[target].max()
    for row in rows.values():
        row["regret"] = float(best - zoo.test.loc[row["selected"], target])
        row["hit"] = bool(row["regret"] <= 1e-12)
        if zoo.rerun_test is not None:
            rerun = zoo.rerun_test[target]
            row["rerun_regret"] = float(rerun.max() - rerun[row["selected"]])
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
                correlations.append(rank_correlation(*zip(*pairs, strict=True)) if len(pairs) > 2 else None)
            rows.append(
                {
                    "proxy": proxy,
                    "scope": scope,
                    "K": k,
                    "hit_rate": float(np.mean(hits)),
                    "mean_regret": float(np.mean(regrets)),
                    "spearman": mean_of_defined(correlations),
                }
            )
    return pd.DataFrame(rows)


def replay_run(
    repository_path: Path, zoo_dir: Path, seed: int | None, args: argparse.Namespace
) -> dict[str, Any]:
    """Every strategy on every target of one benchmarked zoo, under one training seed."""
    with ModelRepository(repository_path) as repository:
        zoo = load_zoo(repository, seed)
        trend_error = evaluate_predictors(
            repository.curves(protocol=zoo.protocol),
            epochs=(1, 2),
            names=("kmeans", "headroom", "neighbours", "current"),
        )
        protocol = protocol_fields(repository, zoo.protocol)
    cache = Path(args.cache) if args.cache else repository_path.with_suffix(".proxies.json")
    compute_proxies(zoo, zoo_dir, cache, args.sample_size)
    per_target = {target: run_target(zoo, target, args.candidates, args.proxy) for target in zoo.test.columns}
    clustering = ModelClustering(0.09).fit(zoo.test)
    return {
        "repository": str(repository_path),
        "zoo": str(zoo_dir),
        "zoo_seed": zoo_seed(zoo_dir),
        "training_seed": protocol.get("seed"),
        "protocol": protocol,
        "models": int(zoo.test.shape[0]),
        "datasets": int(zoo.test.shape[1]),
        "epochs": zoo.epochs,
        "clusters": [int(clustering.n_clusters_), int(sum(len(c) > 1 for c in clustering.clusters_))],
        "per_target": per_target,
        "recall_quality": recall_quality(zoo).to_dict(orient="records"),
        "trend_error": trend_error.to_dict(orient="records"),
    }


def zoo_seed(zoo_dir: Path) -> int | None:
    """The seed the zoo was built with (None for a folder without a zoo manifest)."""
    from hfselect.zoo import ZooManifest

    try:
        return ZooManifest.load(zoo_dir).seed
    except FileNotFoundError:
        return None


def protocol_fields(repository: ModelRepository, protocol: str) -> dict[str, Any]:
    """The protocol's fields as recorded with its results (epochs, learning rate, seed, ...)."""
    row = repository.results(protocol=protocol).iloc[0]  # the store filters, in SQL
    return {"key": protocol} | {name: _plain(row[name]) for name in PROTOCOL_FIELDS if name in row}


def _plain(value: Any) -> Any:
    """A pandas/numpy scalar as a JSON value (NaN as None)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value


def training_seeds(repository_path: Path) -> list[int]:
    """The training seeds the repository holds benchmark results for."""
    with ModelRepository(repository_path) as repository:
        seeds = repository.results()["seed"].dropna()
    return sorted({int(seed) for seed in seeds})


def aggregate(runs: list[dict[str, Any]], replicates: int) -> dict[str, dict[str, Any]]:
    """Per method over every (run, target) cell: means with bootstrap intervals, worst run, ties.

    A run is one training seed of one zoo. The regret of each method is compared with hfselect's on
    the same bootstrap replicates: a difference whose interval holds zero is a tie. When every run's
    repository holds other training seeds of its protocol, the rerun regret is summarized the same way.
    """
    targets = sorted(set.intersection(*(set(run["per_target"]) for run in runs)))
    methods = list(runs[0]["per_target"][targets[0]])
    draws = resample_indices(len(runs), len(targets), replicates)

    def grid(method: str, field: str) -> np.ndarray:
        return np.array([[float(run["per_target"][t][method][field]) for t in targets] for run in runs])

    regret = {method: grid(method, "regret") for method in methods}
    # Rerun regret needs every run's repository to hold other training seeds of its protocol.
    has_reruns = all("rerun_regret" in run["per_target"][t]["hfselect"] for run in runs for t in targets)
    rerun_regret = {method: grid(method, "rerun_regret") for method in methods} if has_reruns else {}
    summary: dict[str, dict[str, Any]] = {}
    for method in methods:
        cost = bootstrap_mean(grid(method, "cost"), draws)
        mean_regret = bootstrap_mean(regret[method], draws)
        per_run = regret[method].mean(axis=1)
        row: dict[str, Any] = {
            "cost_epochs": cost.mean,
            "cost_interval": [cost.low, cost.high],
            "mean_regret": mean_regret.mean,
            "regret_interval": [mean_regret.low, mean_regret.high],
            "worst_run_mean_regret": float(per_run.max()),
            "worst_run": run_label(runs[int(per_run.argmax())]),
            "per_run_mean_regret": [float(v) for v in per_run],
            "max_regret": float(regret[method].max()),
            "hit_rate": bootstrap_mean(grid(method, "hit"), draws).mean,
        }
        if method != "hfselect":
            difference, verdict = compare(regret[method], regret["hfselect"], draws)
            row["regret_minus_hfselect"] = difference.as_dict()
            row["regret_vs_hfselect"] = verdict
        if has_reruns:
            rerun = bootstrap_mean(rerun_regret[method], draws)
            row["mean_rerun_regret"] = rerun.mean
            row["rerun_regret_interval"] = [rerun.low, rerun.high]
            row["per_run_mean_rerun_regret"] = [float(v) for v in rerun_regret[method].mean(axis=1)]
            if method != "hfselect":
                _, verdict = compare(rerun_regret[method], rerun_regret["hfselect"], draws)
                row["rerun_regret_vs_hfselect"] = verdict
        summary[method] = row
    return summary


def main(argv: list[str] | None = None) -> int:
    """Run the replay over every repository and training seed, print the tables, write the JSON."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--repository", required=True, nargs="+", help="benchmarked zoo repositories (one per zoo seed)"
    )
    parser.add_argument(
        "--zoo", required=True, nargs="+", help="the zoo folder of each repository, in the same order"
    )
    parser.add_argument(
        "--seeds", help="training seeds to replay, comma-separated (default: every seed benchmarked)"
    )
    parser.add_argument("--cache", help="proxy cache JSON (default: beside each repository)")
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
    parser.add_argument("--bootstrap", type=int, default=2000, help="bootstrap replicates per interval")
    parser.add_argument("--json", help="write the numbers here")
    args = parser.parse_args(argv)
    if len(args.repository) != len(args.zoo):
        parser.error("give one --zoo folder per --repository, in the same order")
    if args.cache and len(args.repository) > 1:
        parser.error("--cache takes one repository; with several, each caches beside itself")
    from hfselect.logs import quiet_libraries

    quiet_libraries()

    started = time.perf_counter()
    wanted = {int(s) for s in args.seeds.split(",")} if args.seeds else None
    runs = []
    for repository_path, zoo_dir in zip(map(Path, args.repository), map(Path, args.zoo), strict=True):
        seeds = [s for s in training_seeds(repository_path) if wanted is None or s in wanted]
        if not seeds:
            parser.error(f"{repository_path} holds no results for training seeds {args.seeds}")
        runs.extend(replay_run(repository_path, zoo_dir, seed, args) for seed in seeds)
    summary = aggregate(runs, args.bootstrap)
    print_report(runs, summary, args.candidates)
    if args.json:
        first = runs[0]
        record = provenance(
            "benchmarks/selection_replay.py",
            argv,
            zoo_seeds=sorted({run["zoo_seed"] for run in runs}, key=str),
            training_seeds=sorted({run["training_seed"] for run in runs}, key=str),
            # The protocol every run shares, less its seed (listed above) and the key that hashes it.
            protocols=[
                json.loads(text)
                for text in sorted(
                    {
                        json.dumps(run["protocol"] | {"key": None, "seed": None}, sort_keys=True)
                        for run in runs
                    }
                )
            ],
            replay_seconds=round(time.perf_counter() - started, 1),
        )
        Path(args.json).write_text(
            json.dumps(
                {
                    "zoo": {
                        "models": first["models"],
                        "datasets": first["datasets"],
                        "epochs": first["epochs"],
                    },
                    "runs_count": len(runs),
                    "bootstrap": {
                        "replicates": args.bootstrap,
                        "confidence": CONFIDENCE,
                        "over": ["runs", "targets"],
                    },
                    "summary": summary,
                    "runs": runs,
                    "provenance": record,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
