"""The ``hfselect`` command tree. Each command parses its options and calls a library function.

Errors that hfselect raises on purpose (:class:`~hfselect.errors.HfSelectError`) are printed as one
``hfselect: error: ...`` line with a non-zero exit and no traceback; ``--debug`` shows the
traceback instead.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hfselect._version import __version__
from hfselect.core.scopes import DEFAULT_SCOPE, SCOPES
from hfselect.errors import HfSelectError
from hfselect.validation import non_negative_int, positive_float, positive_int, threshold_value

Handler = Callable[[argparse.Namespace], int]

# The demo's protocol for the zoo's tiny models (which need a far larger learning rate than BERT).
DEMO_EPOCHS = 3
DEMO_LEARNING_RATE = 2e-3
DEMO_MAX_LENGTH = 32


# -- output helpers ---------------------------------------------------------------------------


def print_table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> None:
    """Print rows as a plain aligned text table."""
    text = [[str(cell) for cell in row] for row in rows]
    widths = [max([len(header)] + [len(row[i]) for row in text]) for i, header in enumerate(headers)]
    print("  ".join(header.ljust(width) for header, width in zip(headers, widths, strict=True)).rstrip())
    print("  ".join("-" * width for width in widths))
    for row in text:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def repository_path(args: argparse.Namespace) -> str | None:
    """``--repository`` as a local file: ``hf://datasets/USER/NAME`` is pulled into a cached mirror."""
    if not args.repository:
        return None
    from hfselect.cards import resolve_repository_path

    return resolve_repository_path(str(args.repository))


def open_repository(args: argparse.Namespace, *, create: bool = True) -> Any:
    """Open the repository named by ``--repository`` (or the default); imported lazily to keep --help fast.

    Commands that only read (or need a filled repository) pass ``create=False``: a mistyped path is
    then an error, not a new empty repository.
    """
    from hfselect.store import ModelRepository

    return ModelRepository(repository_path(args), create=create)


# -- commands ---------------------------------------------------------------------------------


def cmd_crawl(args: argparse.Namespace) -> int:
    """``hfselect crawl``: list Hub models and store them in the repository."""
    from hfselect.hub.crawler import CrawlOptions, crawl

    options = CrawlOptions(
        pipeline_tag=args.pipeline_tag,
        library=args.library or None,
        author=args.author,
        search=args.search,
        min_downloads=args.min_downloads,
        license=args.license,
        sort=args.sort,
        limit=args.limit,
        include_gated=args.include_gated,
        allow_pickle=args.allow_pickle,
    )
    with open_repository(args) as repository:
        summary = crawl(repository, options, progress=not args.quiet)
    if args.json:
        print(json.dumps(summary.as_dict(), indent=2))
    else:
        rows = [
            ("listed", summary.listed),
            ("new", summary.new),
            ("updated", summary.updated),
            ("unchanged", summary.unchanged),
        ]
        rows += [(f"skipped: {reason}", count) for reason, count in sorted(summary.skipped.items())]
        rows += [("failed", len(summary.failed))]
        print_table(rows, ["outcome", "models"])
        for model_id, reason in sorted(summary.failed.items()):
            print(f"failed: {model_id}: {reason}")
    if summary.listing_error:
        print(f"hfselect: error: the listing stopped early: {summary.listing_error}", file=sys.stderr)
        return 1
    return 0


def cmd_repo_info(args: argparse.Namespace) -> int:
    """``hfselect repo info``: row counts of every table."""
    from hfselect.starters import result_sources

    with open_repository(args, create=False) as repository:
        counts = repository.counts()
        path, version = repository.path, repository.schema_version
        sources = result_sources(repository)
    if args.json:
        print(
            json.dumps(
                {
                    "path": str(path),
                    "schema_version": version,
                    "counts": counts,
                    "results_by_protocol": sources,
                },
                indent=2,
            )
        )
    else:
        print(f"repository: {path} (schema version {version})")
        print_table(sorted(counts.items(), key=lambda item: list(counts).index(item[0])), ["table", "rows"])
        print_result_sources(sources)
    return 0


def print_result_sources(sources: Sequence[dict[str, Any]]) -> None:
    """The results per protocol, with where they come from and whether they have learning curves."""
    if not sources:
        return
    rows = [
        (
            s["protocol"],
            s["results"],
            s["models"],
            s["datasets"],
            ",".join(s["metrics"]),
            s["curves"],
            s["source"],
        )
        for s in sources
    ]
    print_table(rows, ["protocol", "results", "models", "datasets", "metrics", "curves", "source"])


def cmd_repo_init(args: argparse.Namespace) -> int:
    """``hfselect repo init --starter NAME``: fill the repository with a starter's published results."""
    from hfselect.starters import init_starter

    with open_repository(args) as repository:
        starter = init_starter(repository, args.starter)
        path = repository.path
    results = len(starter.results())
    print(
        f"{path}: starter {starter.name}: {len(starter.models)} models (Hub ids) x {len(starter.datasets)} "
        f"datasets, {results} results under protocol {starter.protocol_key}"
    )
    print(f"protocol: {starter.protocol_note}")
    print(f"source: {starter.source}")
    print(f"license: {starter.license}")
    rows = [(d.paper_name, d.hub_id or "-", d.metric, d.note) for d in starter.datasets]
    print_table(rows, ["paper's dataset", "Hub id", "metric", "note"])
    unmapped = [d.paper_name for d in starter.datasets if d.unmapped]
    if unmapped:
        print(
            f"{len(unmapped)} dataset(s) map to no single Hub id and keep the paper's name: {', '.join(unmapped)}"
        )
    print(
        f"next: `hfselect cluster --threshold {starter.threshold:g}` (the paper's threshold for this matrix), then "
        "`hfselect recall <Hub dataset id> --max-download 2GB` (it says how much it downloads first)"
    )
    return 0


def cmd_repo_export(args: argparse.Namespace) -> int:
    """``hfselect repo export DIR``: one Parquet file per table."""
    with open_repository(args, create=False) as repository:
        written = repository.export_parquet(args.directory, include_local_paths=args.include_local_paths)
        counts = repository.counts()
    print_table([(str(path), counts[name]) for name, path in written.items()], ["file", "rows"])
    return 0


def cmd_repo_import(args: argparse.Namespace) -> int:
    """``hfselect repo import DIR``: merge exported Parquet tables into the repository."""
    with open_repository(args) as repository:
        imported = repository.import_parquet(args.directory)
    print_table(sorted(imported.items()), ["table", "rows read"])
    return 0


def cmd_repo_import_matrix(args: argparse.Namespace) -> int:
    """``hfselect repo import-matrix``: a paper-layout performance matrix."""
    with open_repository(args) as repository:
        count = repository.import_matrix(args.matrix, args.datasets, metric=args.metric)
    print(f"imported {count} results from {args.matrix}")
    return 0


def cmd_repo_import_csv(args: argparse.Namespace) -> int:
    """``hfselect repo import-csv``: long-form ``model_id,dataset,score`` results."""
    with open_repository(args) as repository:
        count = repository.import_csv(args.csv, metric=args.metric)
    print(f"imported {count} results from {args.csv}")
    return 0


def cmd_zoo_build(args: argparse.Namespace) -> int:
    """``hfselect zoo build DIR``: build the offline model zoo (tiny models and datasets)."""
    from hfselect.zoo import build_zoo

    manifest = build_zoo(args.directory, args.size, seed=args.seed, progress=not args.quiet)
    print(
        f"built the {args.size} zoo in {args.directory}: {len(manifest.models)} models in "
        f"{args.directory}/models, {len(manifest.datasets)} datasets in {args.directory}/datasets"
    )
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """``hfselect bench``: fine-tune models on benchmark datasets, recording results and learning curves."""
    from accelerate import PartialState

    from hfselect.training.bench import BenchConfig, parse_shard, run_bench

    config = BenchConfig(**training_options(args))
    shard = parse_shard(args.shard)
    with open_repository(args) as repository:
        summary = run_bench(
            repository, args.models, args.datasets, config, shard=shard, progress=not args.quiet,
            ray_address=args.ray, ray_resources=ray_resources(args),
        )  # fmt: skip
    if not PartialState().is_main_process:
        return 0
    rows = [
        (result.model_id, result.dataset, f"{result.score:.4f}", " ".join(f"{v:.3f}" for v in result.curve),
         f"{result.seconds:.1f}")
        for result in summary.done
    ]  # fmt: skip
    if rows:
        print_table(rows, ["model", "dataset", config.protocol.metric, "validation curve", "seconds"])
    print(
        f"{len(summary.done)} pairs done, {summary.skipped} already in the repository, {len(summary.failed)} failed "
        f"(shard {shard[0]}/{shard[1]} of the job list: {summary.planned} pairs)"
        + (
            f"; {summary.claimed_elsewhere} being trained by another worker"
            if summary.claimed_elsewhere
            else ""
        )
    )
    for result in summary.failed:
        print(f"failed: {result.model_id} on {result.dataset}: {result.error}")
    return 1 if summary.failed and not summary.done and not summary.skipped else 0


def cmd_cluster(args: argparse.Namespace) -> int:
    """``hfselect cluster``: group the repository's models by their benchmark results."""
    from hfselect.core.clustering import ModelClustering

    if args.n_clusters is not None and args.method != "kmeans":
        raise HfSelectError("--n-clusters is for --method kmeans; the agglomerative method uses --threshold")
    with open_repository(args, create=False) as repository:
        performance = repository.performance_matrix()
    if performance.empty or len(performance) < 2:
        raise HfSelectError(
            "the repository has benchmark results for fewer than 2 models: run `hfselect bench` "
            "or `hfselect repo import-matrix` first"
        )
    clustering = ModelClustering(
        threshold=args.threshold, k_largest=args.k_largest, method=args.method, n_clusters=args.n_clusters
    ).fit(performance)
    means = performance.mean(axis=1)
    clusters = []
    for index, members in enumerate(clustering.clusters_):
        ranked = sorted(members, key=lambda model: -means[model])
        clusters.append(
            {"cluster": index, "size": len(members), "representative": ranked[0], "members": ranked}
        )
    summary = {
        "models": len(performance),
        "datasets": performance.shape[1],
        "n_clusters": clustering.n_clusters_,
        "multi_model_clusters": sum(1 for cluster in clusters if cluster["size"] > 1),
        "threshold": clustering.threshold_,
        "silhouette": None if clustering.silhouette_ != clustering.silhouette_ else clustering.silhouette_,
        "clusters": clusters,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    rows = [
        (
            c["cluster"],
            c["size"],
            c["representative"],
            f"{means[c['representative']]:.4f}",
            ", ".join(c["members"][1:]),
        )
        for c in clusters
    ]
    print_table(rows, ["cluster", "size", "representative (best mean)", "mean score", "other members"])
    silhouette = "n/a" if summary["silhouette"] is None else f"{summary['silhouette']:.3f}"
    print(
        f"{summary['models']} models over {summary['datasets']} datasets: {summary['n_clusters']} clusters, "
        f"{summary['multi_model_clusters']} with several models; silhouette {silhouette}"
    )
    return 0


def read_proxy_scores(path: str) -> dict[str, float]:
    """Precomputed proxy scores: a CSV ``model_id,score``, or the paper's two-line TSV (ids, then scores)."""
    text = Path(path).read_text().splitlines()
    lines = [line for line in text if line.strip()]
    try:
        if len(lines) == 2 and "\t" in lines[0]:
            ids, values = lines[0].split("\t"), lines[1].split("\t")
            return {i.strip().replace("--", "/"): float(v) for i, v in zip(ids, values, strict=True)}
        import pandas as pd

        frame = pd.read_csv(path)
        return {str(row.model_id): float(row.score) for row in frame.itertuples()}
    except (ValueError, AttributeError) as error:
        raise HfSelectError(
            f"cannot read proxy scores from {path}: use a CSV with model_id,score ({error})"
        ) from error


def target_spec(args: argparse.Namespace) -> str:
    """The target dataset as given, with ``--config`` appended as ``ID:CONFIG``."""
    return f"{args.dataset}:{args.config}" if getattr(args, "config", None) else args.dataset


def cmd_recall(args: argparse.Namespace) -> int:
    """``hfselect recall DATASET``: rank the repository's models for a target dataset from a few proxy scores."""
    from hfselect.core.recall import recall_for_target

    with open_repository(args, create=False) as repository:
        recall = recall_for_target(
            repository,
            target_spec(args),
            top_k=args.top_k,
            proxy=args.proxy,
            sample_size=args.sample_size,
            scope=proxy_download_scope(repository, args),
            threshold=args.threshold,
            k_largest=args.k_largest,
            proxy_scores=read_proxy_scores(args.proxy_scores) if args.proxy_scores else None,
            text_columns=args.text_column,
            label_column=args.label_column,
            split=args.split,
            allow_pickle=args.allow_pickle,
            progress=not args.quiet,
        )
    print_recall(recall)
    if args.json:
        Path(args.json).write_text(json.dumps(recall.to_dict(), indent=2))
        print(f"wrote {args.json}")
    return 0


def proxy_download_scope(repository: Any, args: argparse.Namespace) -> str:
    """Print what the proxies will download from the Hub; return the recall scope that fits ``--max-download``."""
    if getattr(args, "proxy_scores", None):
        return args.scope  # precomputed scores: nothing is loaded
    from hfselect.hub.download_budget import DownloadBudgetError, plan_proxy_downloads

    try:
        plan = plan_proxy_downloads(
            repository,
            scope=args.scope,
            threshold=args.threshold,
            k_largest=args.k_largest,
            max_download=getattr(args, "max_download", None),
            allow_pickle=args.allow_pickle,
        )
    except DownloadBudgetError as error:
        print("\n".join(error.plan.lines()))
        raise
    for line in plan.lines():
        print(line)
    return plan.scope


def print_recall(recall: Any) -> None:
    """The recall table: rank, model, why it was recalled."""
    for note in recall.notes:
        print(f"note: {note}")
    rows = []
    for entry in recall.result.entries:
        why = entry.source or entry.role
        mean = "-" if entry.mean_score != entry.mean_score else f"{entry.mean_score:.4f}"
        proxy = "-" if entry.proxy is None or entry.proxy != entry.proxy else f"{entry.proxy:.4f}"
        rows.append((entry.rank, entry.model_id, f"{entry.score:.4f}", mean, proxy, why))
    print_table(
        rows, ["rank", "model", "recall score", "mean benchmark", f"{recall.proxy} used", "score from"]
    )
    print(
        f"{len(recall.result.models)} of {len(recall.result.ranking)} models recalled for {recall.target}; "
        f"{len(recall.proxied_models)} proxy score(s) computed ({recall.proxy}, {recall.proxy_seconds:.1f}s)"
    )
    for model, reason in sorted(recall.skipped.items()):
        print(f"skipped: {model}: {reason}")


def training_options(args: argparse.Namespace) -> dict[str, Any]:
    """The fine-tuning protocol's fields of :class:`~hfselect.training.bench.BenchConfig` from the training options."""
    return {
        "epochs": args.epochs,
        "learning_rate": args.learning_rate,
        "batch_size": args.batch_size,
        "max_length": args.max_length,
        "train_samples": args.train_samples,
        "eval_samples": args.eval_samples,
        "seed": args.seed,
        "metric": args.metric,
        "allow_pickle": args.allow_pickle,
        "allow_hub_metric_code": args.allow_hub_metric_code,
        # demo has no column options: its zoo datasets need none.
        "text_columns": getattr(args, "text_column", None),
        "label_column": getattr(args, "label_column", None),
    }


def selection_config(args: argparse.Namespace) -> Any:
    """The :class:`~hfselect.training.selection.SelectConfig` of ``select``/``demo`` options."""
    from hfselect.training.selection import SelectConfig

    return SelectConfig(
        **training_options(args),
        schedule=args.schedule,
        margin=args.margin,
        keep_checkpoints=args.keep_checkpoints,
        output_dir=str(Path(args.output) / "run"),
        study=args.study,
    )


def run_selection(
    repository: Any, target: str, args: argparse.Namespace, *, exclude_datasets: Sequence[str] = ()
) -> dict:
    """Recall then fine selection for ``target``; print each step; write ``report.json``; return the report."""
    from hfselect.core.recall import recall_for_target
    from hfselect.training.selection import FineSelection

    config = selection_config(args)
    print(f"== coarse recall: {args.candidates} candidates for {target} ==")
    recall = recall_for_target(
        repository,
        target,
        top_k=args.candidates,
        proxy=args.proxy,
        sample_size=args.sample_size,
        scope=proxy_download_scope(repository, args),
        threshold=args.threshold,
        k_largest=args.k_largest,
        text_columns=config.text_columns,
        label_column=config.label_column,
        split=getattr(args, "split", None),
        allow_pickle=config.allow_pickle,
        progress=not args.quiet,
    )
    print_recall(recall)
    for note in trend_notes(repository, recall.result.models, config):
        print(f"note: {note}")
    candidates = [repository.model_location(model) for model in recall.result.models]
    print(f"== fine selection ({config.schedule} successive halving, {config.epochs} epochs budget) ==")
    if getattr(args, "ray", None) is not None:  # demo has no --ray
        from hfselect.training.distributed import RayFineSelection

        selection = RayFineSelection(
            repository, target, candidates, config, on_event=print,
            repository_models=len(repository.models()),
            address=args.ray, resources=ray_resources(args), storage=args.storage,
        ).run()  # fmt: skip
    else:
        selection = FineSelection(
            repository, target, candidates, config, on_event=print, repository_models=len(repository.models())
        ).run()
    rows = [
        (
            c.model_id,
            c.epochs,
            f"{c.seconds:.1f}",
            " ".join(f"{v:.3f}" for v in c.curve),
            c.state,
            c.reason or "",
        )
        for c in selection.candidates
    ]
    print_table(rows, ["candidate", "epochs", "seconds", "validation curve", "state", "why it stopped"])
    print(
        f"selected {selection.selected_model}: validation {config.protocol.metric} {selection.selected_score:.4f}"
        + (f", test {selection.test_score:.4f}" if selection.test_score is not None else "")
    )
    print(
        f"cost: {selection.epochs_spent} epochs ({selection.wall_time_s:.0f}s) against {selection.brute_force_epochs} "
        f"for brute force ({selection.brute_force_epochs / max(selection.epochs_spent, 1):.1f}x) and "
        f"{selection.successive_halving_epochs} for plain successive halving over the same candidates; "
        f"brute force over all {selection.repository_models} repository models: "
        f"{selection.brute_force_repository_epochs} epochs "
        f"({selection.brute_force_repository_epochs / max(selection.epochs_spent, 1):.1f}x)"
    )
    from hfselect.cards import environment_versions, repository_snapshot, write_report_folder

    source = str(args.repository) if str(args.repository or "").startswith("hf://") else None
    report = {
        "hfselect_version": __version__,
        "command": "hfselect " + " ".join(sys.argv[1:]),
        "target": target,
        "selected_model": selection.selected_model,
        "selected_score": selection.selected_score,
        "test_score": selection.test_score,
        "saved_to": selection.saved_to,
        "metric": config.protocol.metric,
        "protocol": {"key": config.protocol.key, **vars(config.protocol)},
        "recall": recall.to_dict(),
        "selection": selection.to_dict(),
        "excluded_benchmark_datasets": list(exclude_datasets),
        "repository": repository_snapshot(repository, source=source),
        "versions": environment_versions(),
    }
    output = Path(args.output)
    write_report_folder(report, output)
    print(
        f"report: {output / 'report.json'}, card: {output / 'README.md'}; selected model: {selection.saved_to}"
    )
    if args.push_to_hub:
        from hfselect.cards import push_report

        url = push_report(
            output,
            args.push_to_hub,
            repo_type="model" if args.push_model else "dataset",
            private=args.private,
            create_pr=args.create_pr,
            model_dir=selection.saved_to if args.push_model else None,
        )
        print(f"pushed the report to {url}")
    return report


def trend_notes(repository: Any, candidates: Sequence[str], config: Any) -> list[str]:
    """Which trend prediction applies to candidates without learning curves, and what it does to the margin."""
    from hfselect.core.trend import curves_by_model, describe_trend_sources

    curves = curves_by_model(repository.curves())
    return describe_trend_sources(candidates, curves, predictor=config.predictor, margin=config.margin)


def cmd_select(args: argparse.Namespace) -> int:
    """``hfselect select DATASET``: coarse recall, then fine selection by successive halving with convergence trends."""
    with open_repository(args, create=False) as repository:
        run_selection(repository, target_spec(args), args)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """``hfselect demo``: the whole method, offline, on the built-in zoo.

    Builds (or reuses) the small zoo, benchmarks every zoo model on every zoo dataset into the
    demo's repository, holds out the dataset whose benchmark scores differ most between models (or
    ``--target``), then runs ``select`` on it against a copy of the repository without its results.
    """
    import time

    from hfselect.cards.report import SelectionReport, winner_gap
    from hfselect.demo import largest_spread_dataset, selection_repository_path
    from hfselect.store import ModelRepository, hfselect_cache
    from hfselect.training.bench import BenchConfig, run_bench
    from hfselect.zoo import ZooManifest, build_zoo

    started = time.perf_counter()
    zoo_dir = Path(args.zoo) if args.zoo else hfselect_cache() / f"zoo-{args.size}"
    try:
        manifest = ZooManifest.load(zoo_dir)
        print(
            f"== zoo: reusing {zoo_dir} ({len(manifest.models)} models, {len(manifest.datasets)} datasets) =="
        )
    except (OSError, ValueError, KeyError, TypeError):
        print(f"== zoo: building the {args.size} zoo in {zoo_dir} (once) ==")
        manifest = build_zoo(zoo_dir, args.size, progress=not args.quiet)
    names = [dataset.name for dataset in manifest.datasets]
    if args.target and args.target not in names:
        raise HfSelectError(f"--target {args.target!r} is not a zoo dataset; choose from {', '.join(names)}")
    # $HFSELECT_REPOSITORY is the user's own repository: the demo never writes zoo results into it.
    benchmarks_path = Path(repository_path(args) or hfselect_cache() / "demo" / f"{args.size}.sqlite")
    config = BenchConfig(
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
        max_length=args.max_length,
        seed=args.seed,
    )
    with ModelRepository(benchmarks_path) as benchmarks:
        print(
            f"== offline phase: {len(manifest.models)} models x {len(names)} zoo datasets into {benchmarks_path} =="
        )
        summary = run_bench(
            benchmarks,
            [str(Path(manifest.directory) / "models")],
            [str(manifest.dataset_path(name)) for name in names],
            config,
            progress=not args.quiet,
        )
        print(
            f"{len(summary.done)} pairs fine-tuned, {summary.skipped} already done, {len(summary.failed)} failed"
            + (
                f", {summary.claimed_elsewhere} being trained by another process"
                if summary.claimed_elsewhere
                else ""
            )
        )
        performance = benchmarks.performance_matrix(protocol=config.protocol.key)
        target = args.target or largest_spread_dataset(performance[[n for n in names if n in performance]])
        scores = performance[target].dropna() if target in performance else None
        print(
            f"== held out as the target: {target}"
            + (
                f" (benchmark scores from {scores.min():.3f} to {scores.max():.3f}: the largest spread)"
                if scores is not None and not args.target
                else ""
            )
            + " =="
        )
        demo_repository = selection_repository_path(benchmarks_path, target)
        with ModelRepository(demo_repository) as repository:
            copied = repository.copy_benchmarks(benchmarks, exclude_datasets=[target])
            print(f"{demo_repository}: {copied} benchmark results, none on {target}")
            report = run_selection(
                repository, str(manifest.dataset_path(target)), args, exclude_datasets=[target]
            )
    gap = winner_gap(SelectionReport(report).candidates)
    if gap is not None:
        print(
            f"winner {gap['winner']} against the worst recalled candidate {gap['worst']} after epoch "
            f"{gap['epoch']:g}: {gap['winner_score']:.3f} against {gap['worst_score']:.3f} (gap {gap['gap']:.3f})"
        )
    print(f"demo finished in {time.perf_counter() - started:.0f}s; winner: {report['selected_model']}")
    return 0


def cmd_repo_push(args: argparse.Namespace) -> int:
    """``hfselect repo push REPO_ID``: publish the repository as a Hub dataset of Parquet tables."""
    from hfselect.cards import push_repository

    with open_repository(args, create=False) as repository:
        url = push_repository(
            repository,
            args.repo_id,
            private=args.private,
            create_pr=args.create_pr,
            include_local_paths=args.include_local_paths,
        )
    print(f"pushed the repository to {url}")
    return 0


def cmd_repo_pull(args: argparse.Namespace) -> int:
    """``hfselect repo pull REPO_ID``: merge a repository snapshot from the Hub into the local store."""
    from hfselect.cards import pull_repository

    with open_repository(args) as repository:
        read = pull_repository(args.repo_id, repository, revision=args.revision)
    print_table(sorted(read.items()), ["table", "rows read"])
    return 0


def cmd_report_push(args: argparse.Namespace) -> int:
    """``hfselect report push DIR --repo-id USER/NAME``: push a selection report folder as a Hub card."""
    from hfselect.cards import push_report

    url = push_report(
        args.directory, args.repo_id, repo_type=args.repo_type, private=args.private, create_pr=args.create_pr
    )
    print(f"pushed the report to {url}")
    return 0


def cmd_report_render(args: argparse.Namespace) -> int:
    """``hfselect report render DIR``: (re)write the card and plot of a report folder from its report.json."""
    from hfselect.cards import SelectionReport, write_report_folder

    written = write_report_folder(SelectionReport.from_json(args.directory), args.directory)
    for path in written.values():
        print(path)
    return 0


# -- parser -----------------------------------------------------------------------------------


def _common(*, defaults: bool = True) -> argparse.ArgumentParser:
    """The options every (sub)command takes.

    Subcommands get them without defaults (``defaults=False``): a subparser's default would
    overwrite a value given before the subcommand (``hfselect --repository X repo info``).
    """
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--repository",
        metavar="PATH",
        default=None if defaults else argparse.SUPPRESS,
        help="the model repository file (default: $HFSELECT_REPOSITORY or ~/.cache/hfselect/repository.sqlite)",
    )
    flag_default = False if defaults else argparse.SUPPRESS
    common.add_argument("--quiet", "-q", action="store_true", default=flag_default, help="no progress bars")
    common.add_argument(
        "--debug", action="store_true", default=flag_default, help="show tracebacks and debug logs"
    )
    return common


def add_training_options(parser: argparse.ArgumentParser) -> None:
    """The fine-tuning protocol options shared by ``bench`` and ``select``."""
    parser.add_argument(
        "--epochs", type=positive_int, default=5, help="training epochs per pair (default: %(default)s)"
    )
    parser.add_argument(
        "--learning-rate", type=positive_float, default=5e-5, help="peak learning rate (default: %(default)s)"
    )
    parser.add_argument(
        "--batch-size", type=positive_int, default=32, help="per-device batch size (default: %(default)s)"
    )
    parser.add_argument(
        "--max-length",
        type=positive_int,
        default=128,
        help="maximum tokens per example (default: %(default)s)",
    )
    parser.add_argument(
        "--train-samples", type=positive_int, help="use a seeded sample of this many training examples"
    )
    parser.add_argument(
        "--eval-samples", type=positive_int, help="use seeded samples of this many validation/test examples"
    )
    parser.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default: %(default)s)")
    parser.add_argument(
        "--metric",
        default="accuracy",
        help="accuracy, f1 (macro), mcc, or a local evaluate metric script (default: %(default)s)",
    )
    parser.add_argument(
        "--allow-hub-metric-code",
        action="store_true",
        help="let --metric NAME download an evaluate metric's code from the Hub and run it",
    )
    parser.add_argument(
        "--allow-pickle", action="store_true", help="allow loading non-safetensors weights you trust"
    )


def size_value(text: str) -> int:
    """``--max-download``: a size such as 2GB or 500MB, in bytes."""
    from hfselect.hub.download_budget import parse_size

    try:
        return parse_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_ray_options(parser: argparse.ArgumentParser, *, storage: bool = False) -> None:
    """``--ray [ADDRESS]`` and the resources of each Ray task (``bench`` and ``select``)."""
    parser.add_argument(
        "--ray",
        nargs="?",
        const="local",
        metavar="ADDRESS",
        help="run every (model, dataset) training as a Ray task on the cluster at ADDRESS (without "
        "ADDRESS: $RAY_ADDRESS, else a local Ray); needs the extra: pip install 'hfselect[ray]'",
    )
    parser.add_argument(
        "--cpus-per-pair",
        type=float,
        default=1.0,
        metavar="N",
        help="CPUs each Ray task asks for (default 1)",
    )
    parser.add_argument(
        "--gpus-per-pair",
        type=float,
        metavar="N",
        help="GPUs each Ray task asks for, a fraction allowed (default 1 when the cluster has GPUs, else 0)",
    )
    if storage:
        parser.add_argument(
            "--storage",
            metavar="PATH",
            help="with --ray, the checkpoint folder every Ray worker can read (default: under --output, "
            "fine on one node)",
        )


def ray_resources(args: argparse.Namespace) -> Any:
    """The :class:`~hfselect.training.distributed.RayResources` of ``--cpus-per-pair``/``--gpus-per-pair`` (None without --ray)."""
    if args.ray is None:
        return None
    from hfselect.training.distributed import RayResources

    return RayResources(cpus=args.cpus_per_pair, gpus=args.gpus_per_pair)


def margin_value(text: str) -> float | str:
    """``--margin``: ``auto`` or a non-negative number."""
    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a number, not {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"the margin must be 'auto' or a number >= 0, not {text}")
    return value


def add_selection_options(parser: argparse.ArgumentParser) -> None:
    """Options of the fine-selection phase (``select`` and ``demo``)."""
    add_training_options(parser)
    parser.add_argument(
        "--candidates",
        type=positive_int,
        default=4,
        help="how many recalled models to fine-select (default %(default)s)",
    )
    parser.add_argument(
        "--schedule",
        choices=["sync", "async"],
        default="sync",
        help="sync: successive halving rounds (default); async: one after another, halted by the callback",
    )
    parser.add_argument(
        "--margin",
        type=margin_value,
        default="auto",
        help="drop a predicted low performer only when its predicted final score plus this is below a "
        "better-scoring rival's; auto (default): its trend predictor's held-out error at that epoch",
    )
    parser.add_argument(
        "--keep-checkpoints", action="store_true", help="keep the checkpoints of dropped candidates"
    )
    parser.add_argument(
        "--study", help="study name (default: fixed by target, candidates and protocol, so reruns resume)"
    )
    parser.add_argument("--output", default="hfselect-selection", help="report folder (default %(default)s)")
    parser.add_argument(
        "--push-to-hub", metavar="REPO_ID", help="push the report (card, JSON, plot) to this Hub repo"
    )
    parser.add_argument(
        "--push-model", action="store_true", help="push as a model repo, with the selected model"
    )
    add_hub_push_options(parser)


def add_hub_push_options(parser: argparse.ArgumentParser) -> None:
    """``--private`` and ``--create-pr`` for every command that pushes to the Hub."""
    parser.add_argument("--private", action="store_true", help="create the Hub repo private")
    parser.add_argument(
        "--create-pr", action="store_true", help="open a pull request instead of committing to main"
    )


def add_local_paths_option(parser: argparse.ArgumentParser) -> None:
    """``--include-local-paths`` for the commands that write the repository's tables to share them."""
    parser.add_argument(
        "--include-local-paths",
        action="store_true",
        help="keep local paths (local models' folders, local targets) in the tables; left out by default",
    )


def add_column_options(parser: argparse.ArgumentParser) -> None:
    """Column overrides for datasets whose text or label column cannot be inferred."""
    parser.add_argument("--text-column", action="append", help="text column(s) of the datasets (repeatable)")
    parser.add_argument("--label-column", help="label column of the datasets")


def add_target_options(parser: argparse.ArgumentParser) -> None:
    """The target dataset and proxy options shared by ``recall`` and ``select``."""
    parser.add_argument(
        "dataset", metavar="DATASET", help="target dataset: a Hub id (ID or ID:CONFIG) or a local path"
    )
    parser.add_argument("--config", help="the dataset's configuration (same as ID:CONFIG)")
    parser.add_argument("--split", help="use only this split (validation and test are carved from it)")
    parser.add_argument(
        "--proxy",
        default="logme",
        choices=["leep", "logme", "nce", "hscore", "knn"],
        help="proxy score for recall (default logme: best rank correlation with fine-tuned scores on the zoo, "
        "and it needs no classification head; leep/nce fall back to logme for headless models)",
    )
    parser.add_argument(
        "--sample-size", type=positive_int, default=1000, help="target examples the proxy sees (default 1000)"
    )
    parser.add_argument(
        "--max-download",
        type=size_value,
        metavar="SIZE",
        help="download at most this much for proxies (e.g. 2GB, 500MB); over it, the paper's "
        "representatives rule (one proxy per cluster) is used, and said",
    )
    parser.add_argument(
        "--threshold",
        type=threshold_value,
        default=0.09,
        help="clustering threshold for recall (default %(default)s; 'silhouette' picks it)",
    )
    parser.add_argument(
        "--k-largest",
        type=positive_int,
        default=5,
        help="clustering distance: mean of the k largest score differences; models sharing k or fewer "
        "benchmark datasets are never clustered (default %(default)s)",
    )
    parser.add_argument(
        "--scope",
        default=DEFAULT_SCOPE,
        choices=list(SCOPES),
        help="evidence (default): each model's own proxy fused with its results on the benchmark datasets "
        "that resemble the target; every: own proxy alone; representatives: the paper's rule, one proxy "
        "per cluster (cheapest for large repositories); all: the paper's released code",
    )


def build_parser() -> argparse.ArgumentParser:
    """The full ``hfselect`` argument parser."""
    common = _common(defaults=False)
    parser = argparse.ArgumentParser(
        prog="hfselect",
        description="Find the best pretrained Hugging Face Hub model for your dataset, fast.",
        parents=[_common()],
    )
    parser.add_argument("--version", action="version", version=f"hfselect {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    crawl = commands.add_parser(
        "crawl",
        parents=[common],
        help="list Hub models into the model repository",
        description=cmd_crawl.__doc__,
    )
    crawl.add_argument("--pipeline-tag", help="only models with this pipeline tag, e.g. text-classification")
    crawl.add_argument(
        "--library", default="transformers", help="only models of this library (default: transformers)"
    )
    crawl.add_argument("--author", help="only models of this user or organisation")
    crawl.add_argument("--search", help="only models whose id contains this text")
    crawl.add_argument("--min-downloads", type=non_negative_int, help="skip models with fewer downloads")
    crawl.add_argument("--license", help="only models with this license, e.g. apache-2.0")
    crawl.add_argument(
        "--sort",
        default="downloads",
        choices=["downloads", "likes", "last_modified", "created_at", "trending_score"],
        help="listing order (default: downloads)",
    )
    crawl.add_argument("--limit", type=positive_int, help="list at most this many models")
    crawl.add_argument("--include-gated", action="store_true", help="also store gated models")
    crawl.add_argument(
        "--allow-pickle", action="store_true", help="also store models without safetensors weights"
    )
    crawl.add_argument("--json", action="store_true", help="print the summary as JSON")
    crawl.set_defaults(handler=cmd_crawl)

    repo = commands.add_parser(
        "repo",
        parents=[common],
        help="inspect, export and import the model repository",
        description="Inspect, export and import the model repository.",
    )
    repo_commands = repo.add_subparsers(dest="repo_command", metavar="COMMAND", required=True)
    info = repo_commands.add_parser("info", parents=[common], help="row counts of every table")
    info.add_argument("--json", action="store_true", help="print as JSON")
    info.set_defaults(handler=cmd_repo_info)
    export = repo_commands.add_parser("export", parents=[common], help="write one Parquet file per table")
    export.add_argument("directory", metavar="DIR")
    add_local_paths_option(export)
    export.set_defaults(handler=cmd_repo_export)
    imp = repo_commands.add_parser("import", parents=[common], help="merge exported Parquet tables")
    imp.add_argument("directory", metavar="DIR")
    imp.set_defaults(handler=cmd_repo_import)
    from hfselect.starters import starter_names

    init = repo_commands.add_parser(
        "init",
        parents=[common],
        help="fill the repository with published benchmark results (a starter)",
        description=cmd_repo_init.__doc__,
    )
    init.add_argument(
        "--starter",
        required=True,
        choices=starter_names(),
        help="paper-nlp: 39 Hub NLP models x 21 datasets; paper-vision: 30 vision models x 6 datasets "
        "(Cui et al., arXiv 2404.00069, MIT)",
    )
    init.set_defaults(handler=cmd_repo_init)
    matrix = repo_commands.add_parser(
        "import-matrix",
        parents=[common],
        help="import a performance matrix in the layout of the paper's released code",
        description=(
            "Line 1 of MATRIX: tab-separated model ids ('--' stands for '/'); then one line per benchmark "
            "dataset with the scores in the same column order. DATASETS names the datasets, one per line."
        ),
    )
    matrix.add_argument("matrix", metavar="MATRIX.tsv")
    matrix.add_argument(
        "--datasets", required=True, metavar="DATASETS.txt", help="dataset names, one per line"
    )
    matrix.add_argument(
        "--metric", default="accuracy", help="the metric of the scores (default: %(default)s)"
    )
    matrix.set_defaults(handler=cmd_repo_import_matrix)
    csv = repo_commands.add_parser(
        "import-csv", parents=[common], help="import long-form results: a CSV with model_id,dataset,score"
    )
    csv.add_argument("csv", metavar="RESULTS.csv")
    csv.add_argument("--metric", default="accuracy", help="the metric of the scores (default: %(default)s)")
    csv.set_defaults(handler=cmd_repo_import_csv)
    push = repo_commands.add_parser("push", parents=[common], help="publish the repository as a Hub dataset")
    push.add_argument("repo_id", metavar="REPO_ID")
    add_hub_push_options(push)
    add_local_paths_option(push)
    push.set_defaults(handler=cmd_repo_push)
    pull = repo_commands.add_parser("pull", parents=[common], help="merge a repository snapshot from the Hub")
    pull.add_argument("repo_id", metavar="REPO_ID")
    pull.add_argument("--revision", help="branch, tag or commit of the snapshot")
    pull.set_defaults(handler=cmd_repo_pull)

    report = commands.add_parser(
        "report",
        parents=[common],
        help="render and push selection reports",
        description="Render and push selection reports (folders written by select and demo).",
    )
    report_commands = report.add_subparsers(dest="report_command", metavar="COMMAND", required=True)
    report_push = report_commands.add_parser("push", parents=[common], help="push a report folder to the Hub")
    report_push.add_argument("directory", metavar="DIR")
    report_push.add_argument("--repo-id", required=True, metavar="USER/NAME")
    report_push.add_argument("--repo-type", choices=["dataset", "model"], default="dataset")
    add_hub_push_options(report_push)
    report_push.set_defaults(handler=cmd_report_push)
    report_render = report_commands.add_parser(
        "render", parents=[common], help="rewrite README.md and the plot"
    )
    report_render.add_argument("directory", metavar="DIR")
    report_render.set_defaults(handler=cmd_report_render)
    zoo = commands.add_parser(
        "zoo",
        parents=[common],
        help="the small offline model zoo for tests, demo and benchmarks",
        description="The small offline model zoo: tiny pretrained models and datasets built on the CPU.",
    )
    zoo_commands = zoo.add_subparsers(dest="zoo_command", metavar="COMMAND", required=True)
    zoo_build = zoo_commands.add_parser("build", parents=[common], help="build the zoo into DIR")
    zoo_build.add_argument("directory", metavar="DIR")
    zoo_build.add_argument(
        "--size", choices=["small", "full"], default="small", help="small: tests and demo; full: benchmarks"
    )
    zoo_build.add_argument(
        "--seed", type=non_negative_int, default=0, help="random seed (default: %(default)s)"
    )
    zoo_build.set_defaults(handler=cmd_zoo_build)

    bench = commands.add_parser(
        "bench",
        parents=[common],
        help="fine-tune models on benchmark datasets (results + learning curves)",
        description=cmd_bench.__doc__,
    )
    bench.add_argument(
        "--models",
        nargs="+",
        required=True,
        metavar="MODEL",
        help="Hub ids, model folders, or folders holding several model folders",
    )
    bench.add_argument(
        "--datasets",
        nargs="+",
        required=True,
        metavar="DATASET",
        help="Hub ids (ID or ID:CONFIG), dataset folders or files, or folders holding several",
    )
    add_training_options(bench)
    add_column_options(bench)
    bench.add_argument(
        "--shard",
        default="0/1",
        metavar="I/N",
        help="run every N-th job starting at I (for job-array schedulers such as Slurm: workers sharing one "
        "repository; default 0/1)",
    )
    add_ray_options(bench)
    bench.set_defaults(handler=cmd_bench)
    cluster = commands.add_parser(
        "cluster",
        parents=[common],
        help="group the repository's models by their benchmark results",
        description=cmd_cluster.__doc__,
    )
    cluster.add_argument(
        "--threshold",
        type=threshold_value,
        default=0.09,
        help="merge clusters while their distance is within this (default 0.09; 'silhouette' picks it)",
    )
    cluster.add_argument(
        "--k-largest",
        type=positive_int,
        default=5,
        help="distance = mean of the k largest score differences (default 5)",
    )
    cluster.add_argument("--method", choices=["agglomerative", "kmeans"], default="agglomerative")
    cluster.add_argument("--n-clusters", type=positive_int, help="number of clusters for --method kmeans")
    cluster.add_argument("--json", action="store_true", help="print the clusters as JSON")
    cluster.set_defaults(handler=cmd_cluster)
    recall = commands.add_parser(
        "recall",
        parents=[common],
        help="recall candidate models for a target dataset (coarse recall)",
        description=cmd_recall.__doc__,
    )
    add_target_options(recall)
    add_column_options(recall)
    recall.add_argument(
        "--top-k", type=positive_int, default=15, help="how many models to recall (default 15)"
    )
    recall.add_argument(
        "--proxy-scores", metavar="FILE", help="precomputed proxy scores (CSV model_id,score)"
    )
    recall.add_argument("--json", metavar="PATH", help="also write the recall as JSON to PATH")
    recall.add_argument(
        "--allow-pickle", action="store_true", help="allow loading non-safetensors weights you trust"
    )
    recall.set_defaults(handler=cmd_recall)
    select = commands.add_parser(
        "select",
        parents=[common],
        help="recall candidates, then fine-select the best by successive halving",
        description=cmd_select.__doc__,
    )
    add_target_options(select)
    add_column_options(select)
    add_selection_options(select)
    add_ray_options(select, storage=True)
    select.set_defaults(handler=cmd_select)
    demo = commands.add_parser(
        "demo",
        parents=[common],
        help="the whole method offline on the built-in zoo",
        description="Build (or reuse) the small offline zoo, benchmark it on every zoo dataset, hold out the "
        "dataset whose benchmark scores differ most between models (or --target), then select the best model "
        "for it from a copy of the repository without its results. The repository is --repository "
        "(default ~/.cache/hfselect/demo/SIZE.sqlite; HFSELECT_REPOSITORY does not apply), and the "
        "selection's copy lies beside it as SIZE-without-TARGET.sqlite.",
    )
    demo.add_argument("--size", choices=["small", "full"], default="small", help="which zoo (default small)")
    demo.add_argument("--zoo", metavar="DIR", help="zoo folder (default ~/.cache/hfselect/zoo-SIZE)")
    demo.add_argument(
        "--target",
        help="the zoo dataset held out as the target (default: the one whose benchmark scores differ most)",
    )
    add_selection_options(demo)
    demo.set_defaults(
        handler=cmd_demo,
        output="hfselect-demo",
        candidates=4,
        epochs=DEMO_EPOCHS,
        learning_rate=DEMO_LEARNING_RATE,
        max_length=DEMO_MAX_LENGTH,
        proxy="logme",
        threshold=0.09,
        # The small zoo leaves 5 benchmark datasets beside the target: with k_largest=5 no two models
        # would be comparable (they must share more than k datasets), so the demo clusters on 4.
        k_largest=4,
        sample_size=256,
        scope=DEFAULT_SCOPE,
        split=None,
    )
    plain_descriptions(parser)
    return parser


def plain_text(text: str | None) -> str | None:
    """A docstring as ``--help`` shows it: reST markup (````code````, ``:class:`~a.B```) as plain text."""
    if not text:
        return text
    text = re.sub(r":\w+:`~?([^`]+)`", lambda match: match.group(1).rsplit(".", 1)[-1], text)
    return text.replace("``", "")


def plain_descriptions(parser: argparse.ArgumentParser) -> None:
    """Rewrite every (sub)command's description with :func:`plain_text` (they come from docstrings)."""
    parser.description = plain_text(parser.description)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subparser in set(action.choices.values()):
                plain_descriptions(subparser)


def quiet_libraries() -> None:
    """Silence the libraries' own logs and per-step progress bars; hfselect prints what matters.

    Failures end up in hfselect's summaries or one-line errors; the clients' per-retry warnings,
    weight-loading reports and tokenisation bars would bury them. ``--debug`` keeps them all.
    """
    import os

    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    from huggingface_hub.utils import logging as hub_logging

    hub_logging.set_verbosity_error()
    import huggingface_hub.utils

    huggingface_hub.utils.disable_progress_bars()
    import datasets
    import transformers

    datasets.utils.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    if not args.debug:
        quiet_libraries()
    try:
        status = args.handler(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler below
        return status
    except HfSelectError as error:
        if args.debug:
            raise
        print(f"hfselect: error: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (``hfselect cluster --json | head``). As Python's documentation
        # recommends, point stdout at devnull so the interpreter's final flush does not fail too.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        print("hfselect: interrupted; everything finished so far is saved", file=sys.stderr)
        return 130
