"""The pipeline as Python functions: :func:`bench`, :func:`recall` and :func:`select`.

``hfselect.recall(target)`` ranks the model repository's models for a target dataset from a few
proxy scores (the coarse recall); ``hfselect.select(target)`` recalls candidates, fine-selects the
best by successive halving and returns a :class:`~hfselect.cards.SelectionReport` (also written as
``report.json``, a card and a plot into ``output_dir``); ``hfselect.bench(models, datasets)`` fills
the repository with benchmark results, here or on a Ray cluster. The command line, ``hfselect demo``
and the benchmarks call these functions; every default comes from :mod:`hfselect.config`.

A repository is given as a :class:`~hfselect.store.ModelRepository` (left open), a path,
``hf://datasets/USER/NAME`` (a cached mirror of a published one), or ``None`` (the default
repository: ``$HFSELECT_REPOSITORY`` or ``~/.cache/hfselect/repository.sqlite``). A path must
name an existing repository: the recall needs benchmark results or crawled models to rank.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from hfselect.cards.selection_report import SelectionReport
from hfselect.config import (
    DEFAULT_CANDIDATES,
    DEFAULT_K_LARGEST,
    DEFAULT_OUTPUT_DIR,
    DEFAULT_PROXY,
    DEFAULT_SAMPLE_SIZE,
    DEFAULT_SCOPE,
    DEFAULT_SEED,
    DEFAULT_THRESHOLD,
    DEFAULT_TOP_K,
    RecallScope,
)
from hfselect.core.recall import (
    check_recall_options,
    coarse_recall,
    models_needing_proxy,
    proxy_weight,
    repository_candidates,
)
from hfselect.core.recall_result import RecallResult
from hfselect.errors import HfSelectError, InvalidValueError
from hfselect.store import ModelRepository
from hfselect.validation import (
    check_duration,
    check_int,
    check_learning_rates,
    check_optional_int,
    check_output_folder,
    check_text,
    check_texts,
)

if TYPE_CHECKING:
    from hfselect.core.cluster_summary import ClusterSummary
    from hfselect.training.bench import BenchConfig, BenchSummary
    from hfselect.training.distributed import RayResources
    from hfselect.training.selection import SelectConfig, SelectionResult

__all__ = ["RepositoryLike", "bench", "cluster", "opened_repository", "recall", "select"]

RepositoryLike = ModelRepository | str | os.PathLike[str] | None
EventHandler = Callable[[str], None]


def _ignore(_: str) -> None:
    """The default event handler: a library call prints nothing."""


@contextlib.contextmanager
def opened_repository(
    repository: RepositoryLike = None, *, create: bool = False
) -> Iterator[ModelRepository]:
    """``repository`` as an open :class:`ModelRepository`, closed afterwards unless it was given open.

    ``create=False`` makes a missing file an error (a mistyped path is not a new empty repository).
    """
    if isinstance(repository, ModelRepository):
        yield repository
        return
    path = None
    if repository is not None:
        # An empty path is refused, not read as "the default": that wrote into $HFSELECT_REPOSITORY.
        text = check_text("repository", repository, "a repository file or hf://datasets/USER/NAME", path=True)
        from hfselect.cards.snapshot import resolve_repository_path

        path = resolve_repository_path(text)  # hf://datasets/USER/NAME -> its local mirror
    with ModelRepository(path, create=create) as opened:
        yield opened


def bench(
    models: Sequence[str],
    datasets: Sequence[str],
    repository: RepositoryLike = None,
    *,
    config: BenchConfig | None = None,
    shard: tuple[int, int] = (0, 1),
    progress: bool = True,
    ray_address: str | None = None,
    ray_resources: RayResources | None = None,
    reclaim: bool = False,
) -> BenchSummary:
    """Fine-tune every model on every dataset and record results and learning curves (the offline phase).

    Args:
        models: Hub ids, model folders, or folders of model folders.
        datasets: Hub ids, dataset folders, or folders of dataset folders.
        repository: where results go (created when missing).
        config: the fine-tuning protocol (:class:`~hfselect.training.bench.BenchConfig`; defaults
            from :mod:`hfselect.config`).
        shard: ``(i, n)``: this worker trains every n-th pair of the sorted job list, from the i-th.
        ray_address: train each pair as a Ray task on this cluster (``"local"``: ``$RAY_ADDRESS``
            or a new local Ray) with ``ray_resources`` per pair; ``None`` trains here.
        reclaim: take over other workers' unexpired claims on pairs (a worker known to be dead:
            see :func:`~hfselect.training.bench.run_bench`); the Ray driver claims nothing.

    Pairs already recorded under the same protocol are skipped, so a rerun resumes.
    """
    from hfselect.training.bench import BenchConfig, bench_jobs, run_bench

    config = config if config is not None else BenchConfig()
    with opened_repository(repository, create=True) as opened:
        if ray_address is None:
            return run_bench(
                opened, models, datasets, config, shard=shard, progress=progress, reclaim=reclaim
            )
        from hfselect.training.distributed import bench_on_ray

        jobs = bench_jobs(models, datasets, config, shard)
        return bench_on_ray(
            opened, jobs, config, address=ray_address, resources=ray_resources, progress=progress
        )


def cluster(
    repository: RepositoryLike = None,
    *,
    threshold: float | str = DEFAULT_THRESHOLD,
    k_largest: int = DEFAULT_K_LARGEST,
    method: str = "agglomerative",
    n_clusters: int | None = None,
) -> ClusterSummary:
    """Cluster the repository's models by their benchmark results, each cluster with the
    representative the recall would proxy (:class:`~hfselect.core.cluster_summary.ClusterSummary`).

    The parameters are :class:`~hfselect.core.clustering.ModelClustering`'s.
    """
    from hfselect.core.cluster_summary import summarize_clusters
    from hfselect.core.clustering import ModelClustering

    if n_clusters is not None and method != "kmeans":
        raise HfSelectError("--n-clusters is for --method kmeans; the agglomerative method uses --threshold")
    with opened_repository(repository) as opened:
        performance = opened.performance_matrix()
    if performance.empty or len(performance) < 2:
        raise HfSelectError(
            "the repository has benchmark results for fewer than 2 models: run `hfselect bench` "
            "or `hfselect repo import-matrix` first"
        )
    clustering = ModelClustering(
        threshold=threshold, k_largest=k_largest, method=method, n_clusters=n_clusters
    )
    return summarize_clusters(performance, clustering.fit(performance))


def recall(
    target: str,
    repository: RepositoryLike = None,
    *,
    top_k: int | None = DEFAULT_TOP_K,
    proxy: str = DEFAULT_PROXY,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    scope: RecallScope = DEFAULT_SCOPE,
    threshold: float | str = DEFAULT_THRESHOLD,
    k_largest: int = DEFAULT_K_LARGEST,
    proxy_scores: Mapping[str, float] | None = None,
    max_download: int | None = None,
    text_columns: Sequence[str] | None = None,
    label_column: str | None = None,
    split: str | None = None,
    seed: int = DEFAULT_SEED,
    include_new: bool = True,
    allow_pickle: bool = False,
    progress: bool = True,
    on_event: EventHandler | None = None,
) -> RecallResult:
    """Rank the repository's models for ``target``, computing only the proxy scores the rule needs.

    Models with benchmark results are clustered and ranked by
    :func:`~hfselect.core.recall.coarse_recall` under ``scope``; crawled models without results are
    ranked by their own proxy (``include_new``). With no benchmark results at all, every stored model
    is ranked by its own proxy, and ``fallback`` says so. A model that cannot be loaded is skipped with
    its reason (a representative's cluster then takes its next best member). A headless model gives
    no LEEP/NCE: the recall then uses LogME for every model, and its notes say so.

    Args:
        target: the target dataset: a Hub id (``ID`` or ``ID:CONFIG``) or a local path.
        repository: the model repository (see the module docs).
        top_k: how many models to recall (``None``: all).
        proxy: ``"logme"``, ``"leep"``, ``"nce"``, ``"hscore"`` or ``"knn"``.
        sample_size: target examples each proxy sees.
        scope: the recall rule (:data:`~hfselect.core.scopes.SCOPES`).
        threshold: the clustering threshold (or ``"silhouette"``).
        k_largest: the clustering distance's ``k_largest``.
        proxy_scores: precomputed proxy scores (model id -> score); nothing is then loaded, and a
            model the rule needs but missing here is an error.
        max_download: bytes the proxies may download from the Hub; over it the paper's
            representatives rule (one proxy per cluster) is used, and said.
        text_columns: the target's text column(s), when they cannot be inferred.
        label_column: the target's label column, when it cannot be inferred.
        split: use only this split of the target (validation and test are carved from it).
        seed: the seed of the target's sample.
        include_new: also rank crawled models that have no benchmark results.
        allow_pickle: allow loading non-safetensors weights you trust.
        progress: show progress bars.
        on_event: called with each line worth telling (``print`` in the CLI). With it (or with
            ``max_download``) the proxies' downloads are sized first and the plan is told.

    Raises:
        ValueError: an invalid option (checked before any proxy is computed).
        TypeError: an option of the wrong type (e.g. a number as ``target``).
        HfSelectError: an empty repository, no model could be scored, or over ``max_download``.
    """
    target, proxy_scores = check_recall_options(
        target, top_k=top_k, proxy=proxy, sample_size=sample_size, scope=scope, threshold=threshold,
        k_largest=k_largest, proxy_scores=proxy_scores, max_download=max_download,
        text_columns=text_columns, label_column=label_column, split=split, seed=seed,
    )  # fmt: skip
    with opened_repository(repository) as opened:
        return _recall(
            opened, target, top_k=top_k, proxy=proxy, sample_size=sample_size, scope=scope,
            threshold=threshold, k_largest=k_largest, proxy_scores=proxy_scores, max_download=max_download,
            text_columns=text_columns, label_column=label_column, split=split, seed=seed,
            include_new=include_new, allow_pickle=allow_pickle, progress=progress, on_event=on_event,
        )  # fmt: skip


def _recall(
    repository: ModelRepository,
    target: str,
    *,
    top_k: int | None,
    proxy: str,
    sample_size: int,
    scope: RecallScope,
    threshold: float | str,
    k_largest: int,
    proxy_scores: Mapping[str, float] | None,
    max_download: int | None,
    text_columns: Sequence[str] | None,
    label_column: str | None,
    split: str | None,
    seed: int,
    include_new: bool,
    allow_pickle: bool,
    progress: bool,
    on_event: EventHandler | None,
) -> RecallResult:
    # The options were checked by recall() or select() (check_recall_options), before any work.
    if proxy_scores is None and (on_event is not None or max_download is not None):
        scope = _download_scope(repository, scope, threshold, k_largest, max_download, allow_pickle, on_event)
    performance, new_models = repository_candidates(repository, include_new=include_new)
    fallback = performance.empty
    if fallback and not new_models and not proxy_scores:
        raise HfSelectError(
            "the model repository is empty: start with published results, `hfselect repo init --starter "
            "paper-nlp` (or paper-vision), or fill it with `hfselect crawl` or `hfselect bench` first"
        )
    notes: list[str] = []
    if fallback:
        notes.append(
            "no benchmark results in the repository: models are ranked by their own proxy score only"
        )
    skipped: dict[str, str] = {}
    scores: dict[str, float] = dict(proxy_scores or {})
    used_proxy = proxy
    proxied: list[str] = []
    seconds = 0.0
    throughput: dict[str, float] = {}
    while True:
        needed = (
            models_needing_proxy(performance, threshold, k_largest, scope, extra_models=new_models)
            if not performance.empty
            else list(new_models)
        )
        missing = [model for model in needed if model not in scores]
        if not missing:
            break
        if proxy_scores is not None:
            raise HfSelectError(
                f"the given proxy scores lack {len(missing)} model(s) the recall needs, e.g. {missing[0]}"
            )
        from hfselect.training.proxy_scoring import score_models

        specs = [repository.model_location(model) for model in missing]
        run = score_models(
            repository, specs, target, proxy=used_proxy, sample_size=sample_size, seed=seed,
            text_columns=text_columns, label_column=label_column, split=split,
            allow_pickle=allow_pickle, progress=progress,
        )  # fmt: skip
        cache_note = f"proxy scores were computed but not cached: {run.cache_error}"
        if run.cache_error and cache_note not in notes:
            notes.append(cache_note)
        mixed = {record.proxy_used for record in run.records} - {used_proxy}
        if mixed:
            # Headless models cannot give LEEP/NCE; scores on two scales cannot be ranked together.
            fallback_proxy = sorted(mixed)[0]
            notes.append(
                f"{proxy} needs a trained classification head, which some models lack: "
                f"{fallback_proxy} is used for every model instead"
            )
            used_proxy, scores, proxied = fallback_proxy, {}, []
            continue
        for record in run.records:
            seconds += record.seconds
            if record.score is not None:
                scores[record.model_id] = record.score
                proxied.append(record.model_id)
                if record.examples_per_second:
                    throughput[record.model_id] = record.examples_per_second
        skipped.update(run.failures)
        dropped = set(run.failures) | {m for m in missing if m not in scores and m not in run.failures}
        if not dropped:
            break
        for model in dropped:
            skipped.setdefault(model, "no proxy score")
        performance = performance.drop(index=[m for m in dropped if m in performance.index])
        new_models = [m for m in new_models if m not in dropped]
        if performance.empty and not new_models:
            raise HfSelectError(f"no model could be scored on {target}: " + "; ".join(skipped.values()))
    result = coarse_recall(
        performance if not performance.empty else pd.DataFrame(index=pd.Index([], name="model_id")),
        scores,
        top_k,
        threshold,
        k_largest,
        scope,
        extra_models=new_models,
        proxy_transform=proxy_weight(used_proxy),
    )
    result.target, result.proxy, result.proxy_scores = target, used_proxy, scores
    result.proxied_models, result.skipped, result.notes = proxied, skipped, notes
    result.fallback, result.proxy_seconds, result.examples_per_second = fallback, seconds, throughput
    return result


def _download_scope(
    repository: ModelRepository,
    scope: RecallScope,
    threshold: float | str,
    k_largest: int,
    max_download: int | None,
    allow_pickle: bool,
    on_event: EventHandler | None,
) -> RecallScope:
    """Tell what the proxies will download from the Hub; return the recall scope that fits ``max_download``."""
    from hfselect.hub.download_budget import DownloadBudgetError, plan_proxy_downloads

    tell = on_event or _ignore
    try:
        plan = plan_proxy_downloads(
            repository, scope=scope, threshold=threshold, k_largest=k_largest,
            max_download=max_download, allow_pickle=allow_pickle,
        )  # fmt: skip
    except DownloadBudgetError as error:
        tell("\n".join(error.plan.lines()))
        raise
    for line in plan.lines():
        tell(line)
    return plan.scope  # type: ignore[return-value]


def select(
    target: str,
    repository: RepositoryLike = None,
    *,
    candidates: int | None = None,
    budget: str | float | None = None,
    budget_epochs: int | None = None,
    learning_rates: Sequence[float] | str | None = None,
    proxy: str = DEFAULT_PROXY,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    scope: RecallScope = DEFAULT_SCOPE,
    threshold: float | str = DEFAULT_THRESHOLD,
    k_largest: int = DEFAULT_K_LARGEST,
    max_download: int | None = None,
    proxy_scores: Mapping[str, float] | None = None,
    split: str | None = None,
    output_dir: str | os.PathLike[str] = DEFAULT_OUTPUT_DIR,
    exclude_datasets: Sequence[str] = (),
    ray_address: str | None = None,
    ray_resources: RayResources | None = None,
    ray_storage: str | None = None,
    command: str | None = None,
    progress: bool = True,
    on_event: EventHandler | None = None,
    on_recall: Callable[[RecallResult], None] | None = None,
    **options: Any,
) -> SelectionReport:
    """Recall ``candidates`` models for ``target``, fine-select the best, and write the report.

    The recall is :func:`recall` with ``top_k=candidates``; fine selection trains the recalled
    models by successive halving guided by their convergence trends
    (:class:`~hfselect.training.selection.FineSelection`, or on a Ray cluster with ``ray_address``).
    ``output_dir`` receives ``report.json``, the card ``README.md``, the learning-curves plot, and
    (under ``run/``) the runs' checkpoints and the selected model (``run/selected-model``); a rerun with the same
    target, candidates and protocol resumes the stored study.

    With ``budget`` (or ``budget_epochs``) the selection is budget-first
    (:class:`~hfselect.training.budget_selection.BudgetSelection`): a plan, printed before training,
    decides how many of recall's top ``candidates`` to start and when to halve, so that everything
    the call spends (recall's proxies included) and the winner's full run fit the budget.

    Args:
        target: the target dataset: a Hub id (``ID`` or ``ID:CONFIG``) or a local path.
        repository: the model repository (see the module docs).
        candidates: how many recalled models fine selection trains (default
            :data:`~hfselect.config.DEFAULT_CANDIDATES`); with a budget, the most the plan may start
            (default :data:`~hfselect.config.DEFAULT_TOP_K`).
        budget: the compute budget: seconds, or a duration such as ``"4h"``, ``"90m"``, ``"2.5h"``.
        budget_epochs: a budget in candidate-epochs instead (every epoch of every candidate counts 1).
        learning_rates: with a budget, each recalled model is tried at each of these learning rates
            (``[1e-5, 3e-5]`` or ``"1e-5,3e-5"``); default: the protocol's ``learning_rate`` alone.
        proxy, sample_size, scope, threshold, k_largest, max_download, proxy_scores, split: the
            recall's, see :func:`recall`.
        output_dir: the report folder.
        exclude_datasets: benchmark datasets held out of the repository, for the report (the demo's target).
        ray_address: run each round's trainings as Ray tasks on this cluster (``"local"``: a local Ray).
        ray_resources: what each Ray task asks for.
        ray_storage: with ``ray_address``, a checkpoint folder every Ray worker can read.
        command: how the selection was run, for the report's reproduction section.
        progress: show progress bars.
        on_event: called with each line worth telling (steps, decisions; ``print`` in the CLI).
        on_recall: called with the recall once it is done, before fine selection starts.
        **options: the fine-tuning protocol and selection options, fields of
            :class:`~hfselect.training.selection.SelectConfig` (``epochs``, ``learning_rate``,
            ``batch_size``, ``max_length``, ``metric``, ``schedule``, ``margin``, ``halving_order``,
            ``reduction_factor``, ``predictor``, ``text_columns``, ``label_column``,
            ``allow_pickle``, ...).

    Returns:
        The :class:`~hfselect.cards.SelectionReport` written to ``output_dir/report.json``.
    """
    from hfselect.training.selection import SelectConfig

    started = time.perf_counter()  # a budget counts everything the call spends
    budget_seconds = None if budget is None else check_duration("budget", budget)
    budget_epochs = check_optional_int("budget_epochs", budget_epochs, minimum=1)
    if budget_seconds is not None and budget_epochs is not None:
        raise InvalidValueError("give budget or budget_epochs, not both")
    budgeted = budget_seconds is not None or budget_epochs is not None
    rates = None if learning_rates is None else check_learning_rates("learning_rates", learning_rates)
    if rates is not None and not budgeted:
        raise InvalidValueError("learning_rates needs a budget: give budget or budget_epochs too")
    if candidates is None:
        candidates = DEFAULT_TOP_K if budgeted else DEFAULT_CANDIDATES
    # Every argument is checked before any work: a bad one must cost no proxy and leave no study.
    output = check_output_folder("output_dir", output_dir)
    check_output_folder("output_dir", output / "run")
    config = SelectConfig(**options, output_dir=str(output / "run"))
    target, proxy_scores = check_recall_options(
        target, top_k=check_int("candidates", candidates, minimum=1), proxy=proxy, sample_size=sample_size,
        scope=scope, threshold=threshold, k_largest=k_largest, proxy_scores=proxy_scores,
        max_download=max_download, text_columns=config.text_columns, label_column=config.label_column,
        split=split,
    )  # fmt: skip
    exclude_datasets = check_texts("exclude_datasets", exclude_datasets, "dataset names")
    tell = on_event or _ignore
    with opened_repository(repository) as opened:
        tell(f"== coarse recall: {candidates} candidates for {target} ==")
        recalled = _recall(
            opened, target, top_k=candidates, proxy=proxy, sample_size=sample_size, scope=scope,
            threshold=threshold, k_largest=k_largest, proxy_scores=proxy_scores, max_download=max_download,
            text_columns=config.text_columns, label_column=config.label_column, split=split,
            seed=DEFAULT_SEED, include_new=True, allow_pickle=config.allow_pickle, progress=progress,
            on_event=on_event,
        )  # fmt: skip
        if on_recall is not None:
            on_recall(recalled)
        for note in _trend_notes(opened, recalled.models, config):
            tell(f"note: {note}")
        if budgeted:
            tell(f"== budget-first selection ({config.epochs} epochs for the winner) ==")
            from hfselect.training.budget_selection import select_within_budget

            selection = select_within_budget(
                opened, target, recalled.models, config, learning_rates=rates, budget_seconds=budget_seconds,
                budget_epochs=budget_epochs, started=started, on_event=tell,
            )  # fmt: skip
        else:
            tell(
                f"== fine selection ({config.schedule} successive halving, {config.epochs} epochs budget) =="
            )
            selection = _fine_select(
                opened, target, recalled, config, ray_address, ray_resources, ray_storage, tell
            )
        source = str(repository) if str(repository or "").startswith("hf://") else None
        report = _report(opened, target, recalled, selection, config, exclude_datasets, source, command)
    from hfselect.cards import write_report_folder

    write_report_folder(report, output_dir)
    return report


def _fine_select(
    repository: ModelRepository,
    target: str,
    recalled: RecallResult,
    config: SelectConfig,
    ray_address: str | None,
    ray_resources: RayResources | None,
    ray_storage: str | None,
    tell: EventHandler,
) -> SelectionResult:
    """Successive halving over the recalled models, here or on a Ray cluster."""
    specs = [repository.model_location(model) for model in recalled.models]
    repository_models = len(repository.models())
    if ray_address is not None:
        from hfselect.training.distributed import RayFineSelection

        return RayFineSelection(
            repository, target, specs, config, on_event=tell, repository_models=repository_models,
            address=ray_address, resources=ray_resources, storage=ray_storage,
        ).run()  # fmt: skip
    from hfselect.training.selection import FineSelection

    return FineSelection(
        repository, target, specs, config, on_event=tell, repository_models=repository_models
    ).run()


def _trend_notes(repository: ModelRepository, models: Sequence[str], config: SelectConfig) -> list[str]:
    """Which trend prediction applies to candidates without learning curves, and what it does to the margin."""
    from hfselect.core.trend import curves_by_model, describe_trend_sources

    curves = curves_by_model(repository.curves())
    return describe_trend_sources(models, curves, predictor=config.predictor, margin=config.margin)


def _report(
    repository: ModelRepository,
    target: str,
    recalled: RecallResult,
    selection: SelectionResult,
    config: SelectConfig,
    exclude_datasets: Sequence[str],
    source: str | None,
    command: str | None,
) -> SelectionReport:
    """The report of a selection: what was selected, how, at what cost, from which repository."""
    from hfselect._version import __version__
    from hfselect.cards import environment_versions, repository_snapshot

    protocol = config.protocol
    return SelectionReport(
        target=target,
        selected_model=selection.selected_model,
        selected_score=selection.selected_score,
        metric=protocol.metric,
        selection=selection.to_dict(),
        test_score=selection.test_score,
        saved_to=selection.saved_to,
        protocol={"key": protocol.key, **vars(protocol)},
        schedule=config.schedule,
        recall=recalled,
        excluded_benchmark_datasets=list(exclude_datasets),
        repository=repository_snapshot(repository, source=source),
        versions=environment_versions(),
        hfselect_version=__version__,
        command=command,
    )
