"""Scaling out on Ray: the offline phase's (model, dataset) pairs, and fine selection's rounds, as Ray tasks.

The only module of hfselect that imports Ray (the ``ray`` extra: ``pip install "hfselect[ray]"``),
and only when a function here is called.

Bench: every pair to train is one Ray task asking for :class:`RayResources`; the driver, the only
writer, records each outcome in the repository as it arrives (``ray.wait``), so one SQLite file
stays the store and no network file system is needed. A task whose worker dies (killed, out of
memory, node lost) is retried by Ray, then recorded as failed with the reason; Ctrl-C cancels the
tasks still running and keeps every recorded pair, and a rerun skips the pairs already done under
the same protocol. Models and datasets are read through each node's usual Hub cache, so a node
downloads each of them once.

Select: the synchronous schedule trains a round's candidates as parallel tasks, each resuming from
its checkpoint under ``storage`` (a folder every worker can read: a local path on one node, a
shared mount on a cluster); the trend predictions and the decisions stay in the driver's study, so
the result is the sequential run's with the same seeds.

Inside a task, training goes through ``transformers.Trainer`` as without Ray: a task given several
GPUs of its node trains on all of them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from tqdm.auto import tqdm

from hfselect.data import dataset_key
from hfselect.errors import HfSelectError
from hfselect.models import model_key
from hfselect.store import ModelRepository
from hfselect.training.bench import (
    BenchConfig,
    BenchSummary,
    PairResult,
    attempt_pair,
    failed_pair,
    load_data,
    record_pair_result,
)
from hfselect.training.selection import FineSelection, SelectConfig, train_candidate
from hfselect.validation import check_int, check_non_negative_float, check_positive_float

logger = logging.getLogger(__name__)

RAY_EXTRA = 'pip install "hfselect[ray]"'
LOCAL_RAY = "local"
"""``ray_address`` meaning "``$RAY_ADDRESS`` (or a cluster started on this machine), else a new local Ray"."""


@dataclass
class RayResources:
    """What each Ray task asks for, and how often a task whose worker died is retried."""

    cpus: float = 1.0
    gpus: float | None = None  # None: one GPU per task when the cluster has GPUs, else none
    max_retries: int = 2

    def __post_init__(self) -> None:
        """Reject a request Ray would fail on later, with a traceback from inside Ray."""
        check_positive_float("cpus", self.cpus)
        if self.gpus is not None:
            check_non_negative_float("gpus", self.gpus)
        check_int("max_retries", self.max_retries, minimum=0)

    def task_options(self, ray: ModuleType) -> dict[str, Any]:
        """``.options(...)`` of a task under these resources."""
        gpus = self.gpus
        if gpus is None:
            gpus = 1 if ray.cluster_resources().get("GPU", 0) > 0 else 0
        return {"num_cpus": self.cpus, "num_gpus": gpus, "max_retries": self.max_retries}


def import_ray() -> ModuleType:
    """The ``ray`` module, or an error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise HfSelectError(f"--ray needs Ray, which is not installed: {RAY_EXTRA}") from None
    return ray


@contextmanager
def ray_session(address: str = LOCAL_RAY) -> Iterator[ModuleType]:
    """Ray, connected for the duration of the block.

    A session this process already holds (``ray.init`` called by the caller) is used as it is and
    left open; otherwise ``address`` is connected to (:data:`LOCAL_RAY`: ``$RAY_ADDRESS``, a
    cluster started with ``ray start`` on this machine, else a new local Ray) and shut down after.
    """
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    try:
        # Worker output (Trainer warnings) stays in Ray's logs: the driver prints the progress bar.
        ray.init(address=None if address == LOCAL_RAY else address, log_to_driver=False)
    except (ConnectionError, ValueError, RuntimeError) as error:
        raise HfSelectError(
            f"cannot connect to Ray at {address!r} ({' '.join(str(error).split())[:160]}); start a "
            "cluster with `ray start --head` (one with token authentication also needs "
            "RAY_AUTH_MODE=token and its ~/.ray/auth_token here), or give --ray no address for a local Ray"
        ) from error
    try:
        yield ray
    finally:
        ray.shutdown()


def describe_task_failure(error: BaseException, retries: int) -> str:
    """One line saying why a Ray task gave no result."""
    text = " ".join(str(error).split())
    cause = getattr(error, "cause", None)
    if cause is not None:  # the task's own exception, raised in the worker
        return f"{type(cause).__name__}: {' '.join(str(cause).split())[:200]}"
    return f"the Ray worker died on all {retries + 1} attempts: {type(error).__name__}: {text[:200]}"


def _cancel(ray: ModuleType, refs: Sequence[Any]) -> None:
    for ref in refs:
        ray.cancel(ref, force=True)


def bench_on_ray(
    repository: ModelRepository,
    jobs: Sequence[tuple[str, str]],
    config: BenchConfig,
    *,
    address: str = LOCAL_RAY,
    resources: RayResources | None = None,
    progress: bool = True,
    pair_function: Callable[[str, str, BenchConfig], PairResult] = attempt_pair,
) -> BenchSummary:
    """Fine-tune the (model spec, dataset spec) ``jobs`` as Ray tasks, recording each outcome as it arrives.

    Pairs already done under the protocol are skipped. ``pair_function`` runs in the task (the
    default fine-tunes the pair and turns a failure into a result holding its reason). A task
    whose worker died ``resources.max_retries + 1`` times is recorded as failed. On Ctrl-C the
    finished tasks are recorded, the others cancelled, and ``KeyboardInterrupt`` is raised again.
    """
    resources = resources or RayResources()
    protocol = config.protocol
    summary = BenchSummary(planned=len(jobs))
    done = repository.completed_pairs(protocol, include_failed=False)
    todo = [job for job in jobs if (model_key(job[0]), dataset_key(job[1])) not in done]
    summary.skipped = len(jobs) - len(todo)
    bar = tqdm(
        total=len(jobs),
        initial=summary.skipped,
        desc="benchmarking on Ray",
        unit="pair",
        disable=not progress,
    )
    with ray_session(address) as ray:
        task = ray.remote(pair_function).options(**resources.task_options(ray))
        submitted = time.perf_counter()
        pending = {
            task.remote(model_spec, dataset_spec, config): (model_spec, dataset_spec)
            for model_spec, dataset_spec in todo
        }

        def record(ref: Any) -> None:
            model_spec, dataset_spec = pending.pop(ref)
            try:
                result = ray.get(ref)
            except ray.exceptions.RayError as error:
                reason = describe_task_failure(error, resources.max_retries)
                result = failed_pair(model_spec, dataset_spec, time.perf_counter() - submitted, reason)
            record_pair_result(repository, result, protocol)
            (summary.failed if result.error else summary.done).append(result)
            bar.set_postfix_str(f"{result.model_id} on {result.dataset}")
            bar.update(1)

        try:
            while pending:
                # A timeout, so that Ctrl-C is seen while every task is still running.
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
                for ref in ready:
                    record(ref)
        except KeyboardInterrupt:
            ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=0)
            for ref in ready:
                record(ref)
            _cancel(ray, list(pending))
            raise
        finally:
            bar.close()
    order = {(model_key(m), dataset_key(d)): index for index, (m, d) in enumerate(jobs)}
    summary.done.sort(key=lambda result: order.get((result.model_id, result.dataset), len(order)))
    return summary


def _train_candidate_task(
    spec: str, target: str, config: SelectConfig, directory: str, until_epoch: int
) -> tuple[list[tuple[int, float]], float]:
    """A Ray task: train one candidate to ``until_epoch`` from its checkpoint; its epoch scores and seconds."""
    started = time.perf_counter()
    scores = train_candidate(spec, load_data(target, config), config, Path(directory), until_epoch)
    return scores, time.perf_counter() - started


def storage_path(storage: str) -> Path:
    """The folder ``--storage`` names: a path, or a ``file://`` URI of one."""
    if storage.startswith("file://"):
        return Path(storage.removeprefix("file://"))
    if "://" in storage:
        raise HfSelectError(
            f"--storage {storage!r}: only folders are supported; mount the bucket on every node "
            "(e.g. with s3fs or gcsfuse) and give its path"
        )
    return Path(storage).expanduser()


class RayFineSelection(FineSelection):
    """:class:`~hfselect.training.selection.FineSelection` whose rounds train their candidates as parallel Ray tasks.

    Args:
        address: the Ray cluster (:data:`LOCAL_RAY`: ``$RAY_ADDRESS``, else a local Ray).
        resources: what each candidate's task asks for.
        storage: the checkpoint folder every worker can read (default: the run's own folder,
            fine on one node).
        Others: as :class:`~hfselect.training.selection.FineSelection`.
    """

    def __init__(
        self,
        repository: ModelRepository,
        target: str,
        candidates: Sequence[str],
        config: SelectConfig,
        *,
        address: str = LOCAL_RAY,
        resources: RayResources | None = None,
        storage: str | None = None,
        on_event: Callable[[str], None] | None = None,
        repository_models: int | None = None,
    ) -> None:
        if config.schedule != "sync":
            raise HfSelectError(
                "--ray trains each round's candidates in parallel, which is the sync schedule: "
                "drop --schedule async"
            )
        # Before FineSelection's checks, which look at the checkpoint folders under it.
        self.storage = storage_path(storage) if storage else None
        super().__init__(
            repository, target, candidates, config, on_event=on_event, repository_models=repository_models
        )
        self.address = address
        self.resources = resources or RayResources()
        self._ray: ModuleType | None = None

    def checkpoint_root(self) -> Path:
        """Where every study's checkpoints live: ``storage`` when given (``STORAGE/STUDY/MODEL``)."""
        return super().checkpoint_root() if self.storage is None else self.storage

    def run(self) -> Any:
        """Run (or resume) the selection with one Ray session for all its rounds."""
        with ray_session(self.address) as ray:
            self._ray = ray
            try:
                return super().run()
            finally:
                self._ray = None

    def _train_round(self, round_number: int, alive: list[str]) -> None:
        behind = [model_id for model_id in alive if self._epochs_done(model_id) < round_number]
        for model_id in behind:
            self.on_event(f"round {round_number}: training {model_id} to epoch {round_number}")
        self._train_in_tasks(behind, round_number)

    def _train(self, model_id: str, until_epoch: int, callbacks: Sequence[Any] = ()) -> None:
        # Only the async schedule passes callbacks, and this class runs the sync one.
        self._train_in_tasks([model_id], until_epoch)

    def _train_in_tasks(self, model_ids: Sequence[str], until_epoch: int) -> None:
        """Train candidates to ``until_epoch`` as parallel tasks; record them in ``model_ids`` order.

        Recording in the order the sequential schedule trains them keeps the study identical to
        its. A candidate whose task failed is reported after the others are recorded (its
        checkpoints stay, so a rerun resumes it).
        """
        ray = self._ray
        assert ray is not None, "RayFineSelection trains inside run()"
        task = ray.remote(_train_candidate_task).options(**self.resources.task_options(ray))
        refs = [
            task.remote(
                self.specs[model_id],
                self.target,
                self.config,
                str(self.checkpoint_dir(model_id)),
                until_epoch,
            )
            for model_id in model_ids
        ]
        try:
            while ray.wait(refs, num_returns=len(refs), timeout=1.0)[1]:
                pass  # a timeout, so that Ctrl-C is seen while the tasks run
        except KeyboardInterrupt:
            _cancel(ray, refs)
            raise
        failures = []
        for model_id, ref in zip(model_ids, refs, strict=True):
            try:
                epoch_scores, seconds = ray.get(ref)
            except ray.exceptions.RayError as error:
                failures.append(f"{model_id}: {describe_task_failure(error, self.resources.max_retries)}")
                continue
            self._record_training(model_id, epoch_scores, seconds)
        if failures:
            raise HfSelectError(
                f"training on Ray failed ({'; '.join(failures)}); rerun to resume from the last checkpoints"
            )
