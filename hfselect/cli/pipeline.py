"""The selection commands: ``cluster``, ``recall``, ``select`` and ``demo``; each calls :mod:`hfselect.api`."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from hfselect.cli.options import (
    add_column_options,
    add_ray_options,
    add_selection_options,
    add_target_options,
    open_repository,
    ray_resources,
    selection_options,
)
from hfselect.cli.output import print_recall, print_selection, print_table
from hfselect.config import (
    DEFAULT_K_LARGEST,
    DEFAULT_PROXY,
    DEFAULT_SCOPE,
    DEFAULT_THRESHOLD,
    DEFAULT_TOP_K,
    DEMO_EPOCHS,
    DEMO_K_LARGEST,
    DEMO_LEARNING_RATE,
    DEMO_MAX_LENGTH,
    DEMO_OUTPUT_DIR,
    DEMO_SAMPLE_SIZE,
)
from hfselect.errors import HfSelectError
from hfselect.validation import output_file_value, positive_int, threshold_value


def cmd_cluster(args: argparse.Namespace) -> int:
    """``hfselect cluster``: group the repository's models by their benchmark results."""
    from hfselect.api import cluster

    with open_repository(args, create=False) as repository:
        summary = cluster(
            repository, threshold=args.threshold, k_largest=args.k_largest, method=args.method,
            n_clusters=args.n_clusters,
        )  # fmt: skip
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
        return 0
    rows = [
        (
            c.cluster,
            c.size,
            c.representative,
            f"{summary.mean_scores[c.representative]:.4f}",
            ", ".join(c.members[1:]),
        )
        for c in summary.clusters
    ]
    print_table(rows, ["cluster", "size", "representative (best mean)", "mean score", "other members"])
    silhouette = "n/a" if summary.silhouette is None else f"{summary.silhouette:.3f}"
    print(
        f"{summary.models} models over {summary.datasets} datasets: {summary.n_clusters} clusters, "
        f"{summary.multi_model_clusters} with several models; silhouette {silhouette}"
    )
    return 0


def read_proxy_scores(path: str) -> dict[str, float]:
    """Precomputed proxy scores: a CSV ``model_id,score``, or the paper's two-line TSV (ids, then scores)."""
    try:
        text = Path(path).read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise HfSelectError(
            f"cannot read proxy scores from {path}: it is not UTF-8 text; save it as UTF-8 (a CSV with model_id,score)"
        ) from None
    except OSError as error:  # missing, a folder, unreadable
        raise HfSelectError(f"cannot read proxy scores from {path}: {error.strerror or error}") from None
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


def command_line() -> str:
    """The command line as run, for a report's reproduction section."""
    return "hfselect " + " ".join(sys.argv[1:])


def cmd_recall(args: argparse.Namespace) -> int:
    """``hfselect recall DATASET``: rank the repository's models for a target dataset from a few proxy scores."""
    from hfselect.api import recall

    proxy_scores = read_proxy_scores(args.proxy_scores) if args.proxy_scores else None
    with open_repository(args, create=False) as repository:
        result = recall(
            target_spec(args), repository, top_k=args.top_k, proxy=args.proxy, sample_size=args.sample_size,
            scope=args.scope, threshold=args.threshold, k_largest=args.k_largest, proxy_scores=proxy_scores,
            max_download=args.max_download, text_columns=args.text_column, label_column=args.label_column,
            split=args.split, allow_pickle=args.allow_pickle, progress=not args.quiet, on_event=print,
        )  # fmt: skip
    print_recall(result)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)  # --json's check allows new folders
        Path(args.json).write_text(json.dumps(result.to_dict(), indent=2))
        print(f"wrote {args.json}")
    return 0


def finish_selection(report: Any, args: argparse.Namespace) -> None:
    """Print the fine selection's outcome and where the report is; push it when asked."""
    print_selection(report)
    output = Path(args.output)
    print(
        f"report: {output / 'report.json'}, card: {output / 'README.md'}; selected model: {report.saved_to}"
    )
    if args.push_to_hub:
        from hfselect.cards import push_report

        url = push_report(
            output, args.push_to_hub, repo_type="model" if args.push_model else "dataset", private=args.private,
            create_pr=args.create_pr, model_dir=report.saved_to if args.push_model else None,
        )  # fmt: skip
        print(f"pushed the report to {url}")


def cmd_select(args: argparse.Namespace) -> int:
    """``hfselect select DATASET``: coarse recall, then fine selection by successive halving with convergence trends."""
    from hfselect.api import select

    with open_repository(args, create=False) as repository:
        report = select(
            target_spec(args), repository, max_download=args.max_download, ray_address=args.ray,
            ray_resources=ray_resources(args), ray_storage=args.storage, command=command_line(),
            progress=not args.quiet, on_event=print, on_recall=print_recall, **selection_options(args),
        )  # fmt: skip
    finish_selection(report, args)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """``hfselect demo``: the whole method, offline, on the built-in zoo.

    Builds (or reuses) the small zoo, benchmarks every zoo model on every zoo dataset into the
    demo's repository, holds out the dataset whose benchmark scores differ most between models (or
    ``--target``), then runs ``select`` on it against a copy of the repository without its results.
    """
    from hfselect.cards import winner_gap
    from hfselect.demo import run_demo

    started = time.perf_counter()
    options = selection_options(args)
    del options["split"]  # the zoo's datasets have their splits
    demo = run_demo(
        size=args.size, zoo=args.zoo, target=args.target, repository=args.repository,
        command=command_line(), progress=not args.quiet, on_event=print, on_recall=print_recall, **options,
    )  # fmt: skip
    finish_selection(demo.report, args)
    gap = winner_gap(demo.report.candidates)
    if gap is not None:
        print(
            f"winner {gap['winner']} against the worst recalled candidate {gap['worst']} after epoch "
            f"{gap['epoch']:g}: {gap['winner_score']:.3f} against {gap['worst_score']:.3f} (gap {gap['gap']:.3f})"
        )
    print(f"demo finished in {time.perf_counter() - started:.0f}s; winner: {demo.report.selected_model}")
    return 0


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``cluster``, ``recall``, ``select`` and ``demo`` to the subcommands."""
    cluster = commands.add_parser(
        "cluster",
        parents=[common],
        help="group the repository's models by their benchmark results",
        description=cmd_cluster.__doc__,
    )
    cluster.add_argument(
        "--threshold",
        type=threshold_value,
        default=DEFAULT_THRESHOLD,
        help="merge clusters while their distance is within this (default %(default)s; 'silhouette' picks it)",
    )
    cluster.add_argument(
        "--k-largest",
        type=positive_int,
        default=DEFAULT_K_LARGEST,
        help="distance = mean of the k largest score differences (default %(default)s)",
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
        "--top-k",
        type=positive_int,
        default=DEFAULT_TOP_K,
        help="how many models to recall (default %(default)s)",
    )
    recall.add_argument(
        "--proxy-scores", metavar="FILE", help="precomputed proxy scores (CSV model_id,score)"
    )
    recall.add_argument(
        "--json",
        metavar="PATH",
        type=output_file_value,  # checked before the recall, not after all its proxies
        help="also write the recall as JSON to PATH",
    )
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
        output=DEMO_OUTPUT_DIR,
        epochs=DEMO_EPOCHS,
        learning_rate=DEMO_LEARNING_RATE,
        max_length=DEMO_MAX_LENGTH,
        proxy=DEFAULT_PROXY,
        threshold=DEFAULT_THRESHOLD,
        k_largest=DEMO_K_LARGEST,
        sample_size=DEMO_SAMPLE_SIZE,
        scope=DEFAULT_SCOPE,
        split=None,
    )
