"""The benchmark command: ``bench`` fine-tunes models on datasets and records results and learning curves."""

from __future__ import annotations

import argparse
import math
import time
from datetime import datetime, timezone
from typing import Any

from hfselect.cli.options import (
    add_column_options,
    add_ray_options,
    add_training_options,
    open_repository,
    ray_resources,
    training_options,
)
from hfselect.cli.output import print_table
from hfselect.validation import shard_value


def cmd_bench(args: argparse.Namespace) -> int:
    """``hfselect bench``: fine-tune models on benchmark datasets, recording results and learning curves."""
    from accelerate import PartialState

    from hfselect.api import bench
    from hfselect.training.bench import BenchConfig

    config = BenchConfig(**training_options(args))
    shard = args.shard  # (i, n), checked by shard_value when parsed
    with open_repository(args) as repository:
        summary = bench(
            args.models, args.datasets, repository, config=config, shard=shard, progress=not args.quiet,
            ray_address=args.ray, ray_resources=ray_resources(args), reclaim=args.reclaim,
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
    for claim in summary.held_claims:
        print(held_claim_line(claim))
    return 1 if summary.failed and not summary.done and not summary.skipped else 0


def held_claim_line(claim: dict[str, Any], *, now: float | None = None) -> str:
    """What to do about a pair another worker holds: when its claim expires, and ``--reclaim``."""
    expires = datetime.fromtimestamp(claim["expires_at"], timezone.utc)
    minutes = max(0, math.ceil((claim["expires_at"] - (time.time() if now is None else now)) / 60))
    return (
        f"held: {claim['model_id']} on {claim['dataset']} is claimed by worker {claim['owner']} until "
        f"{expires:%Y-%m-%d %H:%M:%S} UTC (in {minutes} min; a live worker renews it); if that worker "
        "is dead, rerun with --reclaim to train it now"
    )


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``bench`` to the subcommands."""
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
        type=shard_value,
        default="0/1",
        metavar="I/N",
        help="run every N-th job starting at I (for job-array schedulers such as Slurm: workers sharing one "
        "repository; default 0/1)",
    )
    bench.add_argument(
        "--reclaim",
        action="store_true",
        help="take over the pairs other workers claimed, before their claims expire (10 minutes after "
        "a worker's last renewal): only when those workers are known to be dead (killed, crashed), "
        "or a live one's pair is trained twice",
    )
    add_ray_options(bench)
    bench.set_defaults(handler=cmd_bench)
