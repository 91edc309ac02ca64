"""Throughput of hfselect's stages: proxy scoring, Hub crawling, and the convergence callback.

(a) Proxy scoring: examples/s per model of :func:`hfselect.training.features.compute_model_outputs` batched
    through Accelerate (``batch_size=64``) against a one-example-at-a-time loop like the paper's
    released code (``one_at_a_time=True``), same loaded model, same sample, same run (the two paths
    alternate over ``--repeats`` repetitions; the median is reported, after a warm-up).
(b) Crawler: models/s of :class:`hfselect.hub.crawler.Crawler` against an in-process local Hub
    (``tests.hub.server.LocalHub``) holding ``--crawl-models`` fake models (``config.json`` + a tiny
    safetensors file): a cold crawl (empty repository, empty download cache), a warm one (nothing
    changed: incremental) and one after ``--crawl-changed`` of the models got a new commit.
(c) ConvergenceTrendCallback: a short ``transformers.Trainer`` fine-tune of a tiny model with and
    without the callback; the callback's own time per evaluation (``overhead_s``) next to the time
    of the evaluation itself.

Models and data: ``--zoo DIR`` takes models from ``DIR/models`` and datasets from
``DIR/datasets`` (``hfselect zoo build DIR``); otherwise tiny models and datasets are built into a
temporary folder with the test builders (``tests/assets.py``), plus a wider BERT and a dataset of
longer, variable-length sentences, so that batching is not only measured on 7-token inputs.

Run ``python benchmarks/stages.py [--json out.json]``; a smoke run:
``python benchmarks/stages.py --crawl-models 30 --sample 64 --repeats 1 --train-size 64``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import _shared
from _shared import table
from stages_assets import built_assets, zoo_assets

REPO_ROOT = Path(__file__).resolve().parents[1]

# The Hugging Face libraries read these once, at import; they are only imported inside functions,
# after main() has pointed every cache at a scratch folder.
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


# -- helpers -----------------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    """The machine (see ``_shared.machine_info``) with torch's version and thread count."""
    import torch

    return _shared.machine_info(torch=torch.__version__, torch_threads=torch.get_num_threads())


@contextlib.contextmanager
def quiet_libraries() -> Iterator[None]:
    """Silence the libraries' progress bars and advisory warnings: the tables are the output."""
    import datasets
    import transformers
    from huggingface_hub.utils import disable_progress_bars, enable_progress_bars

    datasets.disable_progress_bars()
    disable_progress_bars()
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    try:
        yield
    finally:
        datasets.enable_progress_bars()
        enable_progress_bars()
        transformers.logging.enable_progress_bar()


# -- (a) proxy scoring throughput ----------------------------------------------------------------------------


def bench_proxy(
    assets: dict[str, Any], sample_size: int, batch_size: int, repeats: int, threads: Sequence[int]
) -> list[dict[str, Any]]:
    """Batched vs one-at-a-time outputs for every (threads, dataset, model); see the module docstring, (a)."""
    import torch

    rows = []
    default_threads = torch.get_num_threads()
    try:
        for count in threads:
            torch.set_num_threads(count)
            for row in _bench_proxy_once(assets, sample_size, batch_size, repeats):
                rows.append({"threads": count, **row})
    finally:
        torch.set_num_threads(default_threads)
    return rows


def _bench_proxy_once(
    assets: dict[str, Any], sample_size: int, batch_size: int, repeats: int
) -> list[dict[str, Any]]:
    import numpy as np
    from accelerate import Accelerator

    from hfselect.data import load_target_sample
    from hfselect.training.features import compute_model_outputs, load_model_for_outputs

    # One accelerator for all models, as score_models uses it.
    accelerator = Accelerator()
    rows = []
    for data_name, data_path in assets["proxy_datasets"].items():
        sample, columns = load_target_sample(data_path, n=sample_size, seed=0)
        for model_name, model_path in assets["models"].items():
            loaded = load_model_for_outputs(model_path, modality=columns.modality)

            def run(
                one_at_a_time: bool, data: Any = sample, loaded: Any = loaded, columns: Any = columns
            ) -> Any:
                return compute_model_outputs(
                    loaded,
                    data,
                    columns,
                    batch_size=batch_size,
                    one_at_a_time=one_at_a_time,
                    accelerator=accelerator,
                )

            # Warm-up: the first forward passes allocate and pick kernels; not what is measured.
            warm = sample.select(range(min(16, len(sample))))
            run(False, warm)
            run(True, warm)
            times: dict[bool, list[float]] = {False: [], True: []}
            outputs: dict[bool, Any] = {}
            for repeat in range(repeats):
                # Alternate which path goes first, so a load change on the shared machine hits both.
                for mode in (False, True) if repeat % 2 == 0 else (True, False):
                    outputs[mode] = run(mode)
                    times[mode].append(outputs[mode].seconds)
            batched, single = statistics.median(times[False]), statistics.median(times[True])
            feature_gap = float(np.max(np.abs(outputs[False].features - outputs[True].features)))
            probs = (outputs[False].source_probs, outputs[True].source_probs)
            prob_gap = None if probs[0] is None else float(np.max(np.abs(probs[0] - probs[1])))
            rows.append(
                {
                    "dataset": data_name,
                    "model": model_name,
                    "parameters": sum(p.numel() for p in loaded.model.parameters()),
                    "examples": len(sample),
                    "mean_tokens": float(
                        np.mean(
                            [
                                len(ids)
                                for ids in loaded.processor(list(sample[columns.text_columns[0]]))[
                                    "input_ids"
                                ]
                            ]
                        )
                    )
                    if columns.modality == "text"
                    else None,
                    "batched_s": batched,
                    "one_at_a_time_s": single,
                    "batched_examples_per_s": len(sample) / batched,
                    "one_at_a_time_examples_per_s": len(sample) / single,
                    "speedup": single / batched,
                    "all_batched_s": times[False],
                    "all_one_at_a_time_s": times[True],
                    "max_feature_difference": feature_gap,
                    "max_probability_difference": prob_gap,
                    "has_head": loaded.has_head,
                }
            )
            del loaded
    return rows


def print_proxy(rows: list[dict[str, Any]], batch_size: int, repeats: int) -> None:
    """The proxy-scoring table."""
    print(
        f"\n(a) proxy scoring: examples/s per model (preprocessing + forward passes; model loading "
        f"excluded), batched (batch_size={batch_size}, Accelerate) vs one at a time; median of {repeats}"
    )
    print(
        table(
            [
                "threads",
                "dataset",
                "model",
                "params",
                "tokens",
                "batched ex/s",
                "1-at-a-time ex/s",
                "speedup",
                "max |diff|",
            ],
            [
                [
                    r["threads"],
                    r["dataset"],
                    r["model"],
                    f"{r['parameters'] / 1e6:.2f}M",
                    "-" if r["mean_tokens"] is None else f"{r['mean_tokens']:.1f}",
                    f"{r['batched_examples_per_s']:.0f}",
                    f"{r['one_at_a_time_examples_per_s']:.0f}",
                    f"{r['speedup']:.1f}x",
                    f"{r['max_feature_difference']:.1e}",
                ]
                for r in rows
            ],
            left=3,
        )
    )


# -- (b) crawler throughput -------------------------------------------------------------------------------------


def _fake_model_files(index: int) -> dict[str, bytes]:
    """config.json + a tiny safetensors file: what the crawler reads and what the listing counts."""
    import numpy as np
    from safetensors.numpy import save

    labels = 2 + index % 3
    config = {
        "architectures": ["BertForSequenceClassification"],
        "model_type": "bert",
        "hidden_size": 32,
        "num_hidden_layers": 1,
        "id2label": {str(i): f"LABEL_{i}" for i in range(labels)},
        "label2id": {f"LABEL_{i}": i for i in range(labels)},
    }
    weights = save({"classifier.weight": np.zeros((labels, 32), dtype=np.float32)})
    return {"config.json": json.dumps(config).encode(), "model.safetensors": weights}


def bench_crawl(n_models: int, changed_fraction: float, scratch: Path) -> dict[str, Any]:
    """Cold, warm and partly-changed crawls against an in-process local Hub."""
    from huggingface_hub import HfApi, constants

    from hfselect.hub.crawler import Crawler, CrawlOptions
    from hfselect.store import ModelRepository
    from tests.hub.server import LocalHub

    hub = LocalHub(port=0).start()
    old_cache = constants.HF_HUB_CACHE
    # A download cache of our own, empty: otherwise configs cached earlier (the local hub's shas are
    # deterministic) would make the "cold" crawl warm. hf_hub_download reads this at call time.
    constants.HF_HUB_CACHE = str(scratch / "crawl-hub-cache")
    try:
        for index in range(n_models):
            hub.add_model(
                f"org{index % 7}/model-{index:04d}",
                _fake_model_files(index),
                downloads=10 * (n_models - index),
                pipeline_tag="text-classification",
            )
        # token=False: never send the user's token, even to a local server.
        api = HfApi(endpoint=hub.url, token=False)
        runs = []
        with ModelRepository(scratch / "crawl.sqlite") as repository:

            def crawl(kind: str) -> None:
                before = len(hub.requests)
                started = time.perf_counter()
                summary = Crawler(repository, CrawlOptions(), api=api).crawl(progress=False)
                seconds = time.perf_counter() - started
                runs.append(
                    {
                        "crawl": kind,
                        "seconds": seconds,
                        "models_per_s": summary.listed / seconds,
                        "http_requests": len(hub.requests) - before,
                        **summary.as_dict(),
                    }
                )

            crawl("cold")
            crawl("warm (nothing changed)")
            n_changed = round(changed_fraction * n_models)
            for index in range(0, n_models, max(1, n_models // max(1, n_changed)))[:n_changed]:
                files = _fake_model_files(index + 1)
                hub.update_file(f"org{index % 7}/model-{index:04d}", "config.json", files["config.json"])
            crawl(f"incremental ({n_changed} changed)")
        return {"models": n_models, "changed": n_changed, "runs": runs}
    finally:
        constants.HF_HUB_CACHE = old_cache
        hub.stop()


def print_crawl(result: dict[str, Any]) -> None:
    """The crawl table."""
    print(f"\n(b) crawler against the in-process local Hub: {result['models']} fake models")
    print(
        table(
            ["crawl", "seconds", "models/s", "HTTP requests", "new", "updated", "unchanged", "failed"],
            [
                [
                    r["crawl"],
                    f"{r['seconds']:.2f}",
                    f"{r['models_per_s']:.0f}",
                    r["http_requests"],
                    r["new"],
                    r["updated"],
                    r["unchanged"],
                    len(r["failed"]),
                ]
                for r in result["runs"]
            ],
        )
    )


# -- (c) callback overhead ---------------------------------------------------------------------------------------


def _seed_repository(path: Path, model_id: str, n_datasets: int = 6, epochs: int = 5) -> None:
    """A repository with benchmark results and curves, so the callback fits a real trend predictor."""
    from hfselect.store import ModelRepository

    rng = random.Random(0)
    with ModelRepository(path) as repository:
        for m in range(8):
            model = model_id if m == 0 else f"peer/model-{m}"
            for d in range(n_datasets):
                final = 0.6 + 0.35 * rng.random()
                curve = [final * (1 - 0.5 ** (e + 1)) for e in range(epochs)]
                repository.record_result(model, f"benchmark-{d}", curve[-1], curve=curve)


def _train(
    model_path: str, data_path: str, epochs: int, evals_per_epoch: int, callback: Any, scratch: Path
) -> dict[str, Any]:
    """One short fine-tune; returns the wall time and the per-evaluation runtimes."""
    import datasets
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        PrinterCallback,
        Trainer,
        TrainingArguments,
    )

    data = datasets.load_dataset(data_path)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    data = data.map(lambda batch: tokenizer(batch["text"], truncation=True, max_length=64), batched=True)
    model = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=2)
    batch_size = 16
    steps_per_epoch = math.ceil(len(data["train"]) / batch_size)
    arguments = TrainingArguments(
        output_dir=str(scratch / "trainer"),
        num_train_epochs=epochs,
        learning_rate=1e-2,
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=64,
        eval_strategy="steps",
        eval_steps=max(1, steps_per_epoch // evals_per_epoch),
        logging_strategy="no",
        save_strategy="no",
        report_to=[],
        seed=0,
        disable_tqdm=True,
        dataloader_pin_memory=False,  # no accelerator here: pinning only warns
    )
    trainer = Trainer(
        model=model,
        args=arguments,
        train_dataset=data["train"],
        eval_dataset=data["validation"],
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=lambda p: {"accuracy": float((p.predictions.argmax(-1) == p.label_ids).mean())},
        callbacks=[callback] if callback is not None else [],
    )
    # disable_tqdm swaps the progress bar for a callback printing every log line: not wanted here.
    trainer.remove_callback(PrinterCallback)
    started = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - started
    evals = [entry["eval_runtime"] for entry in trainer.state.log_history if "eval_runtime" in entry]
    return {
        "wall_s": wall,
        "eval_runtimes_s": evals,
        "eval_examples": len(data["validation"]),
        "train_examples": len(data["train"]),
    }


def bench_callback(
    assets: dict[str, Any], epochs: int, evals_per_epoch: int, scratch: Path
) -> dict[str, Any]:
    """The same fine-tune with and without ConvergenceTrendCallback; see the module docstring, (c)."""
    from hfselect import ConvergenceTrendCallback

    model_path, data_path = assets["train_model"], assets["train_dataset"]
    # The callback's first on_train_begin in a process imports scikit-learn (for the clustering of
    # peers); timed apart, so that on_train_begin below is what every later run pays.
    started = time.perf_counter()
    import hfselect.core.clustering  # noqa: F401

    import_s = time.perf_counter() - started
    repository = scratch / "callback.sqlite"
    _seed_repository(repository, model_path)
    # min_epochs above the run's length: the callback does all its work (record, predict, compare)
    # but never stops the run, so both runs train and evaluate exactly as much.
    callback = ConvergenceTrendCallback(
        study="bench", repository=str(repository), metric="eval_accuracy", min_epochs=epochs + 1
    )
    begin_times: list[float] = []
    on_train_begin = callback.on_train_begin

    def timed_begin(*args: Any, **kwargs: Any) -> None:
        # Opening the study and fitting the predictor happens once per run, outside overhead_s.
        started = time.perf_counter()
        on_train_begin(*args, **kwargs)
        begin_times.append(time.perf_counter() - started)

    callback.on_train_begin = timed_begin  # type: ignore[method-assign]
    without = _train(model_path, data_path, epochs, evals_per_epoch, None, scratch)
    with_callback = _train(model_path, data_path, epochs, evals_per_epoch, callback, scratch)
    overhead = callback.overhead_s
    evals = with_callback["eval_runtimes_s"]
    return {
        "model": model_path,
        "dataset": data_path,
        "epochs": epochs,
        "evaluations": len(overhead),
        "eval_examples": with_callback["eval_examples"],
        "train_examples": with_callback["train_examples"],
        "without_callback": without,
        "with_callback": with_callback,
        "overhead_s": overhead,
        "overhead_mean_s": statistics.fmean(overhead) if overhead else None,
        "overhead_max_s": max(overhead) if overhead else None,
        "eval_mean_s": statistics.fmean(evals) if evals else None,
        "eval_max_s": max(evals) if evals else None,
        "train_begin_s": begin_times[0] if begin_times else None,
        "import_clustering_s": import_s,
        "decisions": [d["trend/decision"] for d in callback.decisions],
    }


def print_callback(result: dict[str, Any]) -> None:
    """The callback table."""
    print(
        f"\n(c) ConvergenceTrendCallback: {result['epochs']} epochs, {result['evaluations']} evaluations of "
        f"{result['eval_examples']} examples, {result['train_examples']} training examples"
    )
    mean_overhead, mean_eval = result["overhead_mean_s"], result["eval_mean_s"]
    rows = [
        [
            "callback overhead per evaluation",
            f"{1000 * mean_overhead:.1f}",
            f"{1000 * result['overhead_max_s']:.1f}",
        ],
        ["evaluation itself (eval_runtime)", f"{1000 * mean_eval:.1f}", f"{1000 * result['eval_max_s']:.1f}"],
        ["callback on_train_begin (once per run)", f"{1000 * result['train_begin_s']:.1f}", "-"],
        [
            "import hfselect.core.clustering (once per process)",
            f"{1000 * result['import_clustering_s']:.1f}",
            "-",
        ],
    ]
    print(table(["", "mean ms", "max ms"], rows))
    print(
        f"overhead / evaluation time: {100 * mean_overhead / mean_eval:.1f}%; whole fine-tune "
        f"{result['without_callback']['wall_s']:.2f} s without the callback, "
        f"{result['with_callback']['wall_s']:.2f} s with it"
    )


# -- entry point ---------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options (see ``--help``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--zoo", type=Path, default=None, help="a built zoo (DIR/models, DIR/datasets)")
    parser.add_argument("--max-models", type=int, default=4, help="models in the proxy stage (zoo: by name)")
    parser.add_argument("--zoo-dataset", default=None, help="zoo dataset for the sample (default: the first)")
    parser.add_argument("--sample", type=int, default=512, help="target sample size for the proxy stage")
    parser.add_argument("--batch-size", type=int, default=64, help="batch size of the batched path")
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions per path (median)")
    parser.add_argument(
        "--threads",
        type=lambda text: [int(part) for part in text.split(",") if part.strip()],
        default=[1],
        help="torch threads for the proxy stage, comma-separated (e.g. 1,2); the first is used for the rest",
    )
    parser.add_argument("--crawl-models", type=int, default=300, help="fake models on the local Hub")
    parser.add_argument(
        "--crawl-changed", type=float, default=0.1, help="fraction updated before the 3rd crawl"
    )
    parser.add_argument(
        "--train-size",
        type=int,
        default=320,
        help="training examples of the fine-tune (built assets; a zoo dataset keeps its splits)",
    )
    parser.add_argument(
        "--eval-size", type=int, default=128, help="validation examples per evaluation (built assets only)"
    )
    parser.add_argument("--epochs", type=int, default=3, help="epochs of the fine-tune")
    parser.add_argument("--evals-per-epoch", type=int, default=2, help="evaluations per epoch")
    parser.add_argument(
        "--stages", default="proxy,crawl,callback", help="comma-separated subset of proxy, crawl, callback"
    )
    parser.add_argument("--json", type=Path, default=None, help="write the numbers here")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen stages; print the tables; write ``--json``. Returns the exit code."""
    args = parse_args(argv)
    stages = {s.strip() for s in args.stages.split(",") if s.strip()}
    unknown = stages - {"proxy", "crawl", "callback"}
    if unknown:
        print(f"unknown stages: {sorted(unknown)}", file=sys.stderr)
        return 2
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))  # for tests.assets and tests.hub
    started = time.perf_counter()
    # Restored at the end: a caller importing main() keeps its own cache settings.
    saved_environment = {
        name: os.environ.get(name) for name in ("HF_HOME", "HF_HUB_CACHE", "HF_DATASETS_CACHE")
    }
    try:
        output = _run(args, stages)
    finally:
        for name, value in saved_environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    output["elapsed_s"] = time.perf_counter() - started
    output["machine"]["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    print(
        f"\nelapsed {output['elapsed_s']:.1f} s; load average at the end {output['machine']['load_average_end']}"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(output, indent=1))
        print(f"wrote {args.json}")
    return 0


def _run(args: argparse.Namespace, stages: set[str]) -> dict[str, Any]:
    """The stages themselves, in a scratch folder that holds every cache and asset."""
    with tempfile.TemporaryDirectory(prefix="hfselect-bench-") as tmp:
        scratch = Path(tmp)
        # Every Hugging Face cache in the scratch folder: nothing of the user's is read or written.
        # (Effective when this runs as a script; imported into a process that already loaded the
        # libraries, the crawl still uses its own download cache, see bench_crawl.)
        for name, sub in (
            ("HF_HOME", "hf"),
            ("HF_HUB_CACHE", "hf/hub"),
            ("HF_DATASETS_CACHE", "hf/datasets"),
        ):
            os.environ[name] = str(scratch / sub)
        machine = machine_info()
        import torch

        # A tiny model's forward pass is many small ops: with more torch threads than free cores
        # (other processes on a shared machine), each op waits on the scheduler. The first
        # --threads value is used outside the proxy stage's own sweep.
        torch.set_num_threads(args.threads[0])
        print(
            f"machine: {machine['cpu_count']} CPUs, torch {machine['torch']} (default {machine['torch_threads']} "
            f"threads; {args.threads[0]} used outside the proxy sweep), load average {machine['load_average']}"
        )
        output: dict[str, Any] = {"benchmark": "stages", "machine": machine, "config": vars(args).copy()}
        output["config"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in output["config"].items()}
        with quiet_libraries():
            if "proxy" in stages or "callback" in stages:
                assets = (
                    zoo_assets(args.zoo, args.max_models, args.zoo_dataset)
                    if args.zoo
                    else built_assets(scratch / "assets", args.sample, args.train_size, args.eval_size)
                )
                assets["models"] = dict(list(assets["models"].items())[: args.max_models])
                output["assets"] = {"source": assets["source"], "models": list(assets["models"])}
                print(f"models and data: {assets['source']}")
            if "proxy" in stages:
                output["proxy"] = bench_proxy(
                    assets, args.sample, args.batch_size, args.repeats, args.threads
                )
                print_proxy(output["proxy"], args.batch_size, args.repeats)
            if "crawl" in stages:
                output["crawl"] = bench_crawl(args.crawl_models, args.crawl_changed, scratch)
                print_crawl(output["crawl"])
            if "callback" in stages:
                output["callback"] = bench_callback(assets, args.epochs, args.evals_per_epoch, scratch)
                print_callback(output["callback"])
        torch.set_num_threads(machine["torch_threads"])  # as it was, for a caller importing main()
    return output


if __name__ == "__main__":
    sys.exit(main())
