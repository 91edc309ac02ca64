"""The options the commands share, and how they become library arguments.

Every default comes from :mod:`hfselect.config`; the option types (sizes, margins, thresholds)
reject bad values with argparse's own one-line errors.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from hfselect.config import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_CANDIDATES,
    DEFAULT_EPOCHS,
    DEFAULT_HALVING_ORDER,
    DEFAULT_K_LARGEST,
    DEFAULT_LEARNING_RATE,
    DEFAULT_MARGIN,
    DEFAULT_MAX_LENGTH,
    DEFAULT_METRIC,
    DEFAULT_OUTPUT_DIR,
    DEFAULT_PROXY,
    DEFAULT_REDUCTION_FACTOR,
    DEFAULT_SAMPLE_SIZE,
    DEFAULT_SCHEDULE,
    DEFAULT_SCOPE,
    DEFAULT_SEED,
    DEFAULT_THRESHOLD,
    DEFAULT_TOP_K,
    HALVING_ORDERS,
)
from hfselect.core.scopes import SCOPES
from hfselect.validation import (
    duration_value,
    learning_rates_value,
    margin_value,
    metric_name,
    non_negative_float,
    non_negative_int,
    output_folder_value,
    positive_float,
    positive_int,
    reduction_factor_value,
    repository_path_value,
    study_name_value,
    threshold_value,
)


def open_repository(args: argparse.Namespace, *, create: bool = True) -> Any:
    """Open the repository named by ``--repository`` (or the default); ``hf://`` names a cached mirror.

    Commands that only read (or need a filled repository) pass ``create=False``: a mistyped path is
    then an error, not a new empty repository. Imported lazily to keep ``--help`` fast.
    """
    from hfselect.api import opened_repository

    return opened_repository(args.repository, create=create)


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


def selection_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options of :func:`hfselect.select` (and of ``SelectConfig``) given by ``select``/``demo``."""
    return {
        **training_options(args),
        "candidates": args.candidates,
        "proxy": args.proxy,
        "sample_size": args.sample_size,
        "scope": args.scope,
        "threshold": args.threshold,
        "k_largest": args.k_largest,
        "split": getattr(args, "split", None),
        "schedule": args.schedule,
        "margin": args.margin,
        "halving_order": args.halving_order,
        "reduction_factor": args.reduction_factor,
        "budget": args.budget,
        "budget_epochs": args.budget_epochs,
        "learning_rates": args.learning_rates,
        "keep_checkpoints": args.keep_checkpoints,
        "study": args.study,
        "output_dir": args.output,
    }


def _common(*, defaults: bool = True) -> argparse.ArgumentParser:
    """The options every (sub)command takes.

    Subcommands get them without defaults (``defaults=False``): a subparser's default would
    overwrite a value given before the subcommand (``hfselect --repository X repo info``).
    """
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--repository",
        metavar="PATH",
        # An empty path used to fall back on $HFSELECT_REPOSITORY silently: a typo wrote elsewhere.
        type=repository_path_value,
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
        "--epochs",
        type=positive_int,
        default=DEFAULT_EPOCHS,
        help="training epochs per pair (default: %(default)s)",
    )
    parser.add_argument(
        "--learning-rate",
        type=positive_float,
        default=DEFAULT_LEARNING_RATE,
        help="peak learning rate (default: %(default)s)",
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=DEFAULT_BATCH_SIZE,
        help="per-device batch size (default: %(default)s)",
    )
    parser.add_argument(
        "--max-length",
        type=positive_int,
        default=DEFAULT_MAX_LENGTH,
        help="maximum tokens per example (default: %(default)s)",
    )
    parser.add_argument(
        "--train-samples", type=positive_int, help="use a seeded sample of this many training examples"
    )
    parser.add_argument(
        "--eval-samples", type=positive_int, help="use seeded samples of this many validation/test examples"
    )
    parser.add_argument(
        "--seed", type=non_negative_int, default=DEFAULT_SEED, help="random seed (default: %(default)s)"
    )
    parser.add_argument(
        "--metric",
        type=metric_name,
        default=DEFAULT_METRIC,
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
        type=positive_float,
        default=1.0,
        metavar="N",
        help="CPUs each Ray task asks for, a number > 0 (default 1)",
    )
    parser.add_argument(
        "--gpus-per-pair",
        type=non_negative_float,
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


def add_selection_options(parser: argparse.ArgumentParser) -> None:
    """Options of the fine-selection phase (``select`` and ``demo``)."""
    add_training_options(parser)
    parser.add_argument(
        "--candidates",
        type=positive_int,
        help=f"how many recalled models to fine-select (default {DEFAULT_CANDIDATES}; with a budget, the "
        f"most the plan may start: default {DEFAULT_TOP_K})",
    )
    parser.add_argument(
        "--schedule",
        choices=["sync", "async"],
        default=DEFAULT_SCHEDULE,
        help="sync: successive halving rounds (default); async: one after another, halted by the callback",
    )
    parser.add_argument(
        "--margin",
        type=margin_value,
        default=DEFAULT_MARGIN,
        help="drop a predicted low performer only when its predicted final score plus this is below a "
        "better-scoring rival's; auto (default): the 90th percentile of its trend predictor's held-out errors at that epoch",
    )
    parser.add_argument(
        "--halving-order",
        choices=HALVING_ORDERS,
        default=DEFAULT_HALVING_ORDER,
        help="how a sync round orders the candidates before dropping the worse half: rank_sum (default): "
        "each one's rank by current score plus its rank by predicted final score; predicted; score",
    )
    parser.add_argument(
        "--reduction-factor",
        type=reduction_factor_value,
        default=DEFAULT_REDUCTION_FACTOR,
        help="a sync round keeps the best 1/N of its candidates, rounded up (default %(default)s: the better half)",
    )
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument(
        "--budget",
        type=duration_value,
        help="the compute budget of the whole command (4h, 90m, 2.5h, or seconds): hfselect plans how "
        "many of recall's top --candidates to start and when to halve, so that the winner is trained "
        "to the full --epochs within it (default: no budget, the fixed pipeline)",
    )
    budget.add_argument(
        "--budget-epochs",
        type=positive_int,
        help="a budget in candidate-epochs instead of time: every epoch of every candidate counts 1",
    )
    parser.add_argument(
        "--learning-rates",
        type=learning_rates_value,
        help="with a budget: try each recalled model at each of these learning rates "
        "(comma-separated, e.g. 1e-5,3e-5,1e-4; default: --learning-rate alone)",
    )
    parser.add_argument(
        "--keep-checkpoints", action="store_true", help="keep the checkpoints of dropped candidates"
    )
    parser.add_argument(
        "--study",
        type=study_name_value,
        help="study name, like a Hub repo name (default: fixed by target, candidates and protocol, so reruns resume)",
    )
    parser.add_argument(
        "--output",
        type=output_folder_value,  # checked before the recall: a file here failed after all the work
        default=DEFAULT_OUTPUT_DIR,
        help="report folder (default %(default)s)",
    )
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
        default=DEFAULT_PROXY,
        choices=["leep", "logme", "nce", "hscore", "knn"],
        help="proxy score for recall (default logme: best rank correlation with fine-tuned scores on the zoo, "
        "and it needs no classification head; leep/nce fall back to logme for headless models)",
    )
    parser.add_argument(
        "--sample-size",
        type=positive_int,
        default=DEFAULT_SAMPLE_SIZE,
        help="target examples the proxy sees (default %(default)s)",
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
        default=DEFAULT_THRESHOLD,
        help="clustering threshold for recall (default %(default)s; 'silhouette' picks it)",
    )
    parser.add_argument(
        "--k-largest",
        type=positive_int,
        default=DEFAULT_K_LARGEST,
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
