"""The offline phase: fine-tune repository models on benchmark datasets.

For every (model, dataset) pair, the model is fine-tuned with ``transformers.Trainer`` (so
Accelerate places it on the devices and, under ``accelerate launch``, trains it data-parallel
across processes), evaluated on the validation split after every epoch (the learning curve, the
*convergence trend* fine selection uses) and on the test split at the end (the cell of the
performance matrix that clustering and recall use). Only the main process writes.

Runs are resumable: a pair already recorded under the same :class:`~hfselect.store.Protocol`
is skipped, and every pair is written as soon as it finishes. Before training a pair, a worker
claims it in the repository (a claim renewed while it trains and taken over once it expires), so
workers sharing one repository file never train the same pair twice, with or without ``--shard``;
``shard=(i, n)`` gives worker ``i`` every ``n``-th job of the sorted job list, so they do not even
meet, and sets each worker's torch threads to its share of the machine's cores.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import numpy as np
from tqdm.auto import tqdm

from hfselect.config import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_EPOCHS,
    DEFAULT_LEARNING_RATE,
    DEFAULT_MAX_LENGTH,
    DEFAULT_METRIC,
    DEFAULT_SEED,
)
from hfselect.data import (
    ClassificationData,
    dataset_key,
    expand_dataset_specs,
    load_classification_dataset,
    preprocess_for_model,
)
from hfselect.errors import HfSelectError, InvalidValueError, ModelLoadError
from hfselect.models import expand_model_specs, load_classifier, load_tokenizer_or_processor, model_key
from hfselect.models import hub_model_sha as commit_sha
from hfselect.store import CLAIM_TTL_S, ModelRepository, Protocol, utcnow
from hfselect.training.metrics import canonical_metric, check_metric_allowed, metric_function
from hfselect.validation import check_int, check_optional_int, check_positive_float, check_shard

logger = logging.getLogger(__name__)


@dataclass
class BenchConfig:
    """The fine-tuning protocol and run options of ``hfselect bench``."""

    # The protocol's fields (:class:`Protocol`, whose ``key`` identifies results), with the defaults of
    # hfselect.config; ``protocol`` builds the Protocol from exactly Protocol's fields.
    epochs: int = DEFAULT_EPOCHS
    learning_rate: float = DEFAULT_LEARNING_RATE
    batch_size: int = DEFAULT_BATCH_SIZE
    max_length: int = DEFAULT_MAX_LENGTH
    train_samples: int | None = None
    eval_samples: int | None = None
    seed: int = DEFAULT_SEED
    metric: str = DEFAULT_METRIC
    allow_pickle: bool = False
    text_columns: list[str] | None = None
    label_column: str | None = None
    # evaluate.load(NAME) downloads a metric script from the Hub and runs it: only when asked.
    allow_hub_metric_code: bool = False

    def __post_init__(self) -> None:
        """Reject a protocol that would train nothing or store a wrong result, and unrequested Hub code."""
        check_protocol_numbers(self)
        check_metric_allowed(self.metric, allow_hub_code=self.allow_hub_metric_code)

    @property
    def protocol(self) -> Protocol:
        """The protocol results are recorded under (what makes two results comparable)."""
        fields = {field.name: getattr(self, field.name) for field in dataclasses.fields(Protocol)}
        return Protocol(**{**fields, "metric": canonical_metric(self.metric)})


@dataclass
class PairResult:
    """The outcome of fine-tuning one model on one dataset."""

    model_id: str
    dataset: str
    score: float | None
    curve: list[float]
    seconds: float
    error: str | None = None
    dataset_info: dict[str, Any] = field(default_factory=dict)
    model_info: dict[str, Any] = field(default_factory=dict)


@dataclass
class BenchSummary:
    """What a bench run did."""

    planned: int = 0
    skipped: int = 0
    claimed_elsewhere: int = 0  # pairs another worker was training while this one ran
    # The claims behind claimed_elsewhere (model_id, dataset, owner, expires_at, ...): when each
    # pair is free again, should its worker be dead.
    held_claims: list[dict[str, Any]] = field(default_factory=list)
    done: list[PairResult] = field(default_factory=list)
    failed: list[PairResult] = field(default_factory=list)


def check_protocol_numbers(config: BenchConfig) -> None:
    """Raise :class:`~hfselect.errors.InvalidValueError` (a ``ValueError``) for an out-of-range number."""
    check_int("epochs", config.epochs, minimum=1)
    check_positive_float("learning_rate", config.learning_rate)
    check_int("batch_size", config.batch_size, minimum=1)
    check_int("max_length", config.max_length, minimum=1)
    check_optional_int("train_samples", config.train_samples, minimum=1)
    check_optional_int("eval_samples", config.eval_samples, minimum=1)
    check_int("seed", config.seed, minimum=0)


def plan_jobs(
    models: Sequence[str], datasets: Sequence[str], shard: tuple[int, int] = (0, 1)
) -> list[tuple[str, str]]:
    """The sorted (model, dataset) job list, and this shard's share of it (every n-th job)."""
    index, count = check_shard("shard", shard)
    jobs = sorted((model, dataset) for model in models for dataset in datasets)
    return jobs[index::count]


def bench_jobs(
    models: Sequence[str], datasets: Sequence[str], config: BenchConfig, shard: tuple[int, int] = (0, 1)
) -> list[tuple[str, str]]:
    """This shard's (model spec, dataset spec) jobs, folders expanded; fails before any training
    when the metric cannot be loaded."""
    jobs = plan_jobs(expand_model_specs(models), expand_dataset_specs(datasets), shard)
    metric_function(config.metric, allow_hub_code=config.allow_hub_metric_code)
    return jobs


def parse_shard(text: str) -> tuple[int, int]:
    """Parse ``I/N`` as given to ``--shard`` (``0 <= I < N``); else :class:`~hfselect.errors.InvalidValueError`."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise InvalidValueError(f"--shard {text!r} is not valid: use I/N, e.g. 0/2") from None
    return check_shard("--shard", (index, count))


class _EpochProgress:
    """A Trainer callback that shows the current epoch on the job progress bar."""

    def __new__(cls, bar: Any, label: str) -> Any:
        from transformers import TrainerCallback

        class Callback(TrainerCallback):
            def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                bar.set_postfix_str(f"{label} epoch {int(state.epoch or 0) + 1}/{int(args.num_train_epochs)}")

        return Callback()


def load_data(dataset_spec: str, config: BenchConfig) -> ClassificationData:
    """Load a dataset with the protocol's columns, seed and sample sizes (main process first)."""
    from accelerate import PartialState

    with PartialState().main_process_first():
        return load_classification_dataset(
            dataset_spec,
            text_columns=config.text_columns,
            label_column=config.label_column,
            seed=config.seed,
            train_samples=config.train_samples,
            eval_samples=config.eval_samples,
        )


def build_trainer(
    model_spec: str,
    data: ClassificationData,
    config: BenchConfig,
    *,
    output_dir: str,
    callbacks: Sequence[Any] = (),
    save_checkpoints: bool = False,
) -> tuple[Any, datasets.DatasetDict]:
    """A ``transformers.Trainer`` fine-tuning ``model_spec`` on ``data`` under the protocol.

    It evaluates on the validation split after every epoch (the metric logged as ``eval_score``)
    and, with ``save_checkpoints``, saves a resumable checkpoint (optimizer and scheduler
    included) after every epoch, keeping the latest only. Returns the trainer and the encoded
    splits (``test`` for the final score).
    """
    import torch
    from accelerate import PartialState
    from transformers import DataCollatorWithPadding, PrinterCallback, Trainer, TrainingArguments, set_seed

    with PartialState().main_process_first():
        processor = load_tokenizer_or_processor(model_spec, modality=data.modality)
        encoded = preprocess_for_model(data, processor, max_length=config.max_length)
    set_seed(config.seed)
    model = load_classifier(
        model_spec,
        num_labels=data.num_labels,
        id2label=dict(enumerate(data.label_names)),
        allow_pickle=config.allow_pickle,
    )
    score = metric_function(config.metric, allow_hub_code=config.allow_hub_metric_code)

    def compute_metrics(prediction: Any) -> dict[str, float]:
        logits = (
            prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        )
        return {"score": score(np.argmax(logits, axis=-1), prediction.label_ids)}

    arguments = TrainingArguments(
        output_dir=output_dir,
        num_train_epochs=config.epochs,
        learning_rate=config.learning_rate,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=max(config.batch_size, 64),
        eval_strategy="epoch",
        save_strategy="epoch" if save_checkpoints else "no",
        save_total_limit=1 if save_checkpoints else None,
        logging_strategy="epoch",
        report_to=[],
        seed=config.seed,
        data_seed=config.seed,
        disable_tqdm=True,
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
    )
    trainer = Trainer(
        model=model,
        args=arguments,
        train_dataset=encoded["train"],
        eval_dataset=encoded["validation"],
        data_collator=DataCollatorWithPadding(processor) if data.modality == "text" else None,
        processing_class=processor,
        compute_metrics=compute_metrics,
        callbacks=list(callbacks),
    )
    # The run's numbers go to the repository and the summary table, not to stdout.
    trainer.remove_callback(PrinterCallback)
    return trainer, encoded


def check_finite_loss(output: Any) -> None:
    """Raise ``FloatingPointError`` when a training run's loss became NaN or infinite."""
    if not math.isfinite(output.training_loss):
        raise FloatingPointError("the training loss became NaN")


def dataset_fields(data: ClassificationData) -> dict[str, Any]:
    """The repository's ``datasets`` row for a loaded dataset."""
    return {
        "num_labels": data.num_labels,
        "label_names": list(data.label_names),
        "modality": data.modality,
        "fingerprint": data.fingerprint,
        "train_size": len(data.splits["train"]),
        "validation_size": len(data.splits["validation"]),
        "test_size": len(data.splits["test"]),
    }


def finetune_pair(
    model_spec: str,
    dataset_spec: str,
    config: BenchConfig,
    *,
    callbacks: Sequence[Any] = (),
) -> PairResult:
    """Fine-tune one model on one dataset; return its test score and validation curve.

    Raises :class:`HfSelectError` subclasses for bad input (unloadable model or dataset) and
    ``FloatingPointError`` when the training loss becomes NaN.
    """
    started = time.perf_counter()
    data = load_data(dataset_spec, config)
    with tempfile.TemporaryDirectory(prefix="hfselect-bench-") as scratch:
        trainer, encoded = build_trainer(model_spec, data, config, output_dir=scratch, callbacks=callbacks)
        check_finite_loss(trainer.train())
        curve = [entry["eval_score"] for entry in trainer.state.log_history if "eval_score" in entry]
        test_score = trainer.evaluate(encoded["test"], metric_key_prefix="test")["test_score"]
    return PairResult(
        model_id=model_key(model_spec),
        dataset=data.spec.name,
        score=float(test_score),
        curve=[float(value) for value in curve],
        seconds=time.perf_counter() - started,
        dataset_info=dataset_fields(data),
        model_info=describe_model(model_spec, trainer.model),
    )


def describe_model(spec: str, model: Any) -> dict[str, Any]:
    """Repository fields of a benchmarked model, from its loaded config (and folder, when local)."""
    config = model.config
    folder = Path(spec).expanduser()
    fields: dict[str, Any] = {
        "sha": getattr(config, "_commit_hash", None),
        "architecture": (config.architectures or [type(model).__name__])[0],
        "model_type": config.model_type,
        "num_parameters": int(sum(parameter.numel() for parameter in model.parameters())),
        "hidden_size": getattr(config, "hidden_size", None),
        "library": "transformers",
        "source": "hub",
    }
    if folder.is_dir():
        # The loaded config carries the target's labels; the source head's labels are on disk.
        fields.update(local_model_fields(folder))
    elif fields["sha"] is None:
        fields["sha"] = hub_model_sha(spec)
    return fields


def local_model_fields(folder: Path) -> dict[str, Any]:
    """Repository fields of a local model folder, read from disk without loading the model.

    The folder (``location``) is stored even when its config cannot be read, so that recall and
    select load the model from its folder instead of looking its name up on the Hub.
    """
    import json

    from hfselect.hub.crawler import config_fields
    from hfselect.models import local_model_sha

    fields: dict[str, Any] = {}
    try:
        saved = config_fields(json.loads((folder / "config.json").read_text()))
        fields.update({key: value for key, value in saved.items() if value is not None})
    except (OSError, ValueError):
        logger.debug("cannot read %s/config.json", folder, exc_info=True)
    fields.update(sha=local_model_sha(folder), source="local", location=str(folder.resolve()))
    return fields


def hub_model_sha(model_id: str) -> str | None:
    """The Hub commit sha of a model (None when the Hub cannot tell, e.g. offline)."""
    try:
        return commit_sha(model_id, max_time_s=0)  # one attempt: it is only metadata
    except ModelLoadError:  # the sha is metadata: a benchmark result is worth keeping without it
        logger.debug("no commit sha for %s", model_id, exc_info=True)
        return None


def describe_failure(error: BaseException) -> str:
    """One line saying why a pair failed."""
    if type(error).__name__ == "OutOfMemoryError" or "out of memory" in str(error).lower():
        return "out of memory (try a smaller --batch-size or --max-length)"
    if isinstance(error, FloatingPointError):
        return str(error)
    text = " ".join(str(error).split()) or type(error).__name__
    return text if isinstance(error, HfSelectError) else f"{type(error).__name__}: {text[:200]}"


def machine_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def threads_per_worker(
    workers: int, *, cores: int | None = None, environ: Mapping[str, str] = os.environ
) -> int | None:
    """Torch threads for one of ``workers`` processes sharing a machine, or None to leave torch's default.

    Each process would otherwise start one thread per core, and N workers would oversubscribe the
    machine N times over. ``OMP_NUM_THREADS``, when set, is the user's choice and always wins.
    """
    if environ.get("OMP_NUM_THREADS") or workers <= 1:
        return None
    return max(1, (cores or machine_cores()) // workers)


def worker_name() -> str:
    """A name for this worker's claims, unique across processes and machines."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@contextlib.contextmanager
def claim_heartbeat(
    repository: ModelRepository,
    model_id: str,
    dataset: str,
    protocol: Protocol,
    owner: str,
    *,
    ttl_s: float = CLAIM_TTL_S,
) -> Iterator[None]:
    """Renew a pair's claim every ``ttl_s / 4`` while the block runs, then release it.

    A live worker's claim never expires however long its pair trains; a crashed worker's claim
    expires ``ttl_s`` after its last renewal, and another worker may take the pair over.
    """
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(ttl_s / 4):
            try:
                repository.claim_pair(model_id, dataset, protocol, owner, ttl_s=ttl_s)
            except Exception:  # a missed renewal only shortens the claim; never kill the training
                logger.debug("could not renew the claim on %s/%s", model_id, dataset, exc_info=True)

    thread = threading.Thread(target=renew, name="hfselect-claim-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        repository.release_claim(model_id, dataset, protocol, owner)


def _on_main_process(state: Any, decide: Callable[[], str]) -> str:
    """``decide()`` on the main process, broadcast to the others (they must train the same pairs)."""
    if state.num_processes == 1:
        return decide()
    from accelerate.utils import broadcast_object_list

    box = [decide() if state.is_main_process else None]
    broadcast_object_list(box)
    return str(box[0])


def run_bench(
    repository: ModelRepository,
    models: Sequence[str],
    datasets: Sequence[str],
    config: BenchConfig,
    *,
    shard: tuple[int, int] = (0, 1),
    progress: bool = True,
    reclaim: bool = False,
) -> BenchSummary:
    """Benchmark every model on every dataset (this shard's share), recording each pair as it ends.

    Each pair is claimed in the repository before it is trained: a pair another worker is training
    is passed over, then tried once more at the end, in case that worker died and its claim expired
    (the claims still held are in ``BenchSummary.held_claims``). ``reclaim`` takes over unexpired
    claims too: for a rerun after a worker was killed, when no other worker is alive.
    With ``shard=(i, n)`` and ``OMP_NUM_THREADS`` unset, torch uses ``cores // n`` threads.
    (On a Ray cluster, :func:`hfselect.api.bench` hands the same job list to
    :func:`hfselect.training.distributed.bench_on_ray` instead.)
    """
    from accelerate import PartialState

    state = PartialState()
    jobs = bench_jobs(models, datasets, config, shard)
    protocol = config.protocol
    threads = threads_per_worker(shard[1])
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    owner, started_at = worker_name(), utcnow()
    summary = BenchSummary(planned=len(jobs))
    bar = tqdm(
        total=len(jobs), desc="benchmarking", unit="pair", disable=not progress or not state.is_main_process
    )

    def attempt(model_spec: str, dataset_spec: str) -> str:
        """Train the pair unless it is done or claimed elsewhere; return "done", "held" or "trained"."""
        model_id, dataset_name = model_key(model_spec), dataset_key(dataset_spec)
        # Checked per job, not once: another worker or an earlier run may have finished it.
        decision = _on_main_process(
            state,
            lambda: (
                "done"
                if (model_id, dataset_name) in repository.completed_pairs(protocol, include_failed=False)
                else repository.claim_pair(
                    model_id, dataset_name, protocol, owner, failed_since=started_at, reclaim=reclaim
                )
            ),
        )
        if decision != "claimed":
            return decision
        heartbeat = (
            claim_heartbeat(repository, model_id, dataset_name, protocol, owner)
            if state.is_main_process
            else contextlib.nullcontext()
        )
        with heartbeat:
            result = _train_pair(model_spec, dataset_spec, config, bar)
            if state.is_main_process:
                record_pair_result(repository, result, protocol)
        (summary.failed if result.error else summary.done).append(result)
        state.wait_for_everyone()
        return "trained"

    try:
        held: list[tuple[str, str]] = []
        for model_spec, dataset_spec in jobs:
            outcome = attempt(model_spec, dataset_spec)
            if outcome == "held":
                held.append((model_spec, dataset_spec))
                continue
            summary.skipped += int(outcome == "done")
            bar.update(1)
        still_held = set()
        for model_spec, dataset_spec in held:
            outcome = attempt(model_spec, dataset_spec)
            summary.skipped += int(outcome == "done")
            if outcome == "held":
                still_held.add((model_key(model_spec), dataset_key(dataset_spec)))
            bar.update(1)
    finally:
        bar.close()
    summary.claimed_elsewhere = len(still_held)
    if still_held and state.is_main_process:
        summary.held_claims = [
            claim
            for claim in repository.claims()
            if claim["protocol"] == protocol.key and (claim["model_id"], claim["dataset"]) in still_held
        ]
    return summary


def attempt_pair(
    model_spec: str, dataset_spec: str, config: BenchConfig, *, callbacks: Sequence[Any] = ()
) -> PairResult:
    """:func:`finetune_pair`, with a failure turned into a failed :class:`PairResult` holding its reason."""
    started = time.perf_counter()
    try:
        return finetune_pair(model_spec, dataset_spec, config, callbacks=callbacks)
    except Exception as error:
        return failed_pair(model_spec, dataset_spec, time.perf_counter() - started, describe_failure(error))


def failed_pair(model_spec: str, dataset_spec: str, seconds: float, reason: str) -> PairResult:
    """A failed :class:`PairResult` holding ``reason``, logged; a local model keeps its folder.

    Stored with its folder, a model whose bench failed is loaded from there by a later recall,
    not looked up on the Hub under its folder's name.
    """
    result = PairResult(model_key(model_spec), dataset_key(dataset_spec), None, [], seconds, reason)
    logger.warning("%s on %s failed: %s", result.model_id, result.dataset, reason)
    folder = Path(model_spec).expanduser()
    if folder.is_dir():
        result.model_info = local_model_fields(folder)
    return result


def _train_pair(model_spec: str, dataset_spec: str, config: BenchConfig, bar: Any) -> PairResult:
    """:func:`attempt_pair`, showing the pair and its epoch on the progress bar."""
    label = f"{model_key(model_spec)} on {dataset_key(dataset_spec)}"
    bar.set_postfix_str(label)
    return attempt_pair(model_spec, dataset_spec, config, callbacks=[_EpochProgress(bar, label)])


def record_pair_result(repository: ModelRepository, result: PairResult, protocol: Protocol) -> None:
    """Write a pair's outcome (result or failure, with its model and dataset rows) to the repository."""
    if result.dataset_info:
        repository.upsert_dataset(result.dataset, **result.dataset_info)
    if result.model_info and not (repository.get_model(result.model_id) or {}).get("crawled_at"):
        # A crawled model's row already holds the Hub's own fields; don't overwrite them.
        repository.upsert_model(result.model_id, **result.model_info)
    if result.error is None:
        repository.record_result(
            result.model_id,
            result.dataset,
            result.score,
            protocol,
            curve=result.curve,
            duration_s=result.seconds,
        )
    else:
        repository.record_result(
            result.model_id,
            result.dataset,
            None,
            protocol,
            status="failed",
            error=result.error,
            duration_s=result.seconds,
        )
