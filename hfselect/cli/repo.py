"""The repository commands: ``crawl``, ``repo ...`` (info, init, export, import, push, pull) and ``zoo build``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from hfselect.cli.options import add_hub_push_options, add_local_paths_option, open_repository
from hfselect.cli.output import print_result_sources, print_table
from hfselect.validation import (
    metric_name,
    non_negative_int,
    output_folder_value,
    positive_int,
    revision_value,
)


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
    from hfselect.cards import pull_repository, resolve_repository_path

    # The path, not an open repository: nothing is created before the snapshot is downloaded and
    # checked, and a new file is removed again when the pull fails.
    path = resolve_repository_path(args.repository) if args.repository else None
    read = pull_repository(args.repo_id, path, revision=args.revision)
    print_table(sorted(read.items()), ["table", "rows read"])
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


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``crawl`` and ``repo`` to the subcommands."""
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
    export.add_argument("directory", metavar="DIR", type=output_folder_value)
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
        "--metric",
        type=metric_name,
        default="accuracy",
        help="the metric of the scores (default: %(default)s)",
    )
    matrix.set_defaults(handler=cmd_repo_import_matrix)
    csv = repo_commands.add_parser(
        "import-csv", parents=[common], help="import long-form results: a CSV with model_id,dataset,score"
    )
    csv.add_argument("csv", metavar="RESULTS.csv")
    csv.add_argument(
        "--metric",
        type=metric_name,
        default="accuracy",
        help="the metric of the scores (default: %(default)s)",
    )
    csv.set_defaults(handler=cmd_repo_import_csv)
    push = repo_commands.add_parser("push", parents=[common], help="publish the repository as a Hub dataset")
    push.add_argument("repo_id", metavar="REPO_ID")
    add_hub_push_options(push)
    add_local_paths_option(push)
    push.set_defaults(handler=cmd_repo_push)
    pull = repo_commands.add_parser("pull", parents=[common], help="merge a repository snapshot from the Hub")
    pull.add_argument("repo_id", metavar="REPO_ID")
    pull.add_argument("--revision", type=revision_value, help="branch, tag or commit of the snapshot")
    pull.set_defaults(handler=cmd_repo_pull)


def register_zoo(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``zoo`` to the subcommands."""
    zoo = commands.add_parser(
        "zoo",
        parents=[common],
        help="the small offline model zoo for tests, demo and benchmarks",
        description="The small offline model zoo: tiny pretrained models and datasets built on the CPU.",
    )
    zoo_commands = zoo.add_subparsers(dest="zoo_command", metavar="COMMAND", required=True)
    zoo_build = zoo_commands.add_parser("build", parents=[common], help="build the zoo into DIR")
    zoo_build.add_argument("directory", metavar="DIR", type=output_folder_value)
    zoo_build.add_argument(
        "--size", choices=["small", "full"], default="small", help="small: tests and demo; full: benchmarks"
    )
    zoo_build.add_argument(
        "--seed", type=non_negative_int, default=0, help="random seed (default: %(default)s)"
    )
    zoo_build.set_defaults(handler=cmd_zoo_build)
