"""Scoring candidate models with a transferability proxy, with a cache.

:func:`score_models` loads the target sample once and scores every model, reading and writing the
repository's proxy-score cache (:mod:`hfselect.store.proxy_cache`) so that a model already scored
on the same sample is never loaded again. The maths is :mod:`hfselect.core.proxies`, the model
outputs :mod:`hfselect.training.features`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import datasets
import numpy as np
from tqdm.auto import tqdm

from hfselect.config import DEFAULT_MAX_LENGTH, DEFAULT_PROXY, DEFAULT_SAMPLE_SIZE
from hfselect.core.proxies import DEFAULT_FALLBACK, ProxyInfo, proxy_info, run_proxy
from hfselect.data import ColumnInfo, DatasetSpec, dataset_key, hash_rows, load_target_sample
from hfselect.errors import DatasetError, HfSelectError
from hfselect.models import model_key, resolve_model_sha
from hfselect.store import ModelRepository
from hfselect.store.proxy_cache import ProxyCacheKey, cache_proxy_scores, cached_proxy_score
from hfselect.training.features import OUTPUTS_VERSION, compute_model_outputs
from hfselect.validation import check_int

if TYPE_CHECKING:
    from accelerate import Accelerator

__all__ = ["ProxyRecord", "ProxyRun", "sample_fingerprint", "score_models"]

logger = logging.getLogger(__name__)


@dataclass
class ProxyRecord:
    """One model's proxy score on the target sample.

    Attributes:
        model_id: The model's key (Hub id, or local folder name).
        proxy_requested: The proxy asked for.
        proxy_used: The proxy that produced ``score`` (the fallback for a headless model).
        score: The score (higher is better).
        seconds: Time spent computing it (loading, inference, proxy), as stored in the cache.
        cached: Whether it came from the repository's cache (nothing was loaded or run).
        examples_per_second: Inference throughput (preprocessing + forward passes) measured for
            this record, ``None`` when cached.
        model_sha: The Hub commit sha, or the local folder's content hash.
        note: Why ``proxy_used`` differs from ``proxy_requested``, when it does.
    """

    model_id: str
    proxy_requested: str
    proxy_used: str
    score: float
    seconds: float | None
    cached: bool
    examples_per_second: float | None
    model_sha: str
    note: str | None = None


@dataclass
class ProxyRun:
    """The result of :func:`score_models`.

    Attributes:
        dataset: The target's key (see :func:`hfselect.data.dataset_key`).
        dataset_fingerprint: The sample's fingerprint (see :func:`sample_fingerprint`).
        proxy: The proxy asked for.
        sample_size: The sample size asked for.
        num_examples: The examples actually in the sample (fewer when the split is smaller).
        seed: The sampling seed.
        records: One record per scored model, in the order given.
        failures: ``model_id -> reason`` (one line) for each model that could not be scored.
        cache_error: Why computed scores could not be cached (a read-only repository), or None.
            The scores are still returned; the cache is not tried again in this run.
    """

    dataset: str
    dataset_fingerprint: str
    proxy: str
    sample_size: int
    num_examples: int
    seed: int
    records: list[ProxyRecord] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    cache_error: str | None = None

    def scores(self, proxy: str | None = None) -> dict[str, float]:
        """``model_id -> score``; only records whose ``proxy_used`` is ``proxy`` when given.

        Without ``proxy``, a headless model's fallback score sits next to the others' requested
        proxy scores; scores of different proxies are on different scales.
        """
        return {r.model_id: r.score for r in self.records if proxy is None or r.proxy_used == proxy}

    @property
    def notes(self) -> dict[str, str]:
        """``model_id -> note`` for the records that carry one (e.g. a proxy fallback)."""
        return {r.model_id: r.note for r in self.records if r.note}

    def ranking(self, proxy: str | None = None) -> list[tuple[str, float]]:
        """``(model_id, score)`` best first (every proxy here is higher-better); ties by id."""
        return sorted(self.scores(proxy).items(), key=lambda item: (-item[1], item[0]))


def sample_fingerprint(
    sample: datasets.Dataset, columns: ColumnInfo, *, max_length: int | None = None
) -> str:
    """A stable hash of a target sample's content, keying cached proxy scores.

    Covers the sample's Arrow table (its rows in order, serialised without schema metadata), the
    input columns and class names, the text truncation length (it changes what models see) and
    :data:`OUTPUTS_VERSION`. The same rows give the same fingerprint in any process or session.
    """
    digest = hashlib.sha256()
    header = {
        "text_columns": list(columns.text_columns),
        "image_column": columns.image_column,
        "label_names": list(columns.label_names or []),
        "max_length": max_length,
        "outputs": OUTPUTS_VERSION,
        "rows": sample.num_rows,
    }
    digest.update(json.dumps(header, sort_keys=True).encode())
    hash_rows(digest, sample)
    return digest.hexdigest()[:32]


def _one_line(error: BaseException) -> str:
    # Our own errors are already one clear line; others get their type for context.
    text = str(error) if isinstance(error, HfSelectError) else f"{type(error).__name__}: {error}"
    text = " ".join(text.split()) or type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _fallback_note(proxy: str, fallback: str, reason: str | None) -> str:
    why = f" ({reason})" if reason else ""
    return f"no trained classification head{why}, which {proxy} needs: scored with {fallback} instead"


def score_models(
    repository: ModelRepository,
    model_specs: Sequence[str],
    target_spec: str | DatasetSpec,
    *,
    proxy: str = DEFAULT_PROXY,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    seed: int = 0,
    text_columns: Sequence[str] | None = None,
    label_column: str | None = None,
    split: str | None = None,
    batch_size: int = 64,
    max_length: int = DEFAULT_MAX_LENGTH,
    token: str | bool | None = None,
    allow_pickle: bool = False,
    progress: bool = True,
    fallback: str = DEFAULT_FALLBACK,
) -> ProxyRun:
    """Score candidate models on a sample of the target with a transferability proxy, with a cache.

    The target sample (``sample_size`` labelled examples of ``split``, drawn with ``seed``) is
    loaded once with :func:`hfselect.data.load_target_sample`. For each model, the repository's
    ``proxy_scores`` table is looked up first, *before* the model is loaded, by (model id, model
    sha (:func:`hfselect.models.resolve_model_sha`: one ``model_info`` call for a Hub id), sample fingerprint
    (:func:`sample_fingerprint`), proxy, sample size, seed); on a miss the model's outputs are
    computed (:func:`hfselect.training.features.compute_model_outputs`), scored and stored with the time taken.

    LEEP and NCE need a trained classification head. A model without one is scored with
    ``fallback`` (LogME by default) instead: its record says so (``proxy_used`` and ``note``), the
    fallback score is stored under the fallback's name, and a NULL score is stored under the
    requested proxy, meaning "not applicable", so the next run goes straight to the fallback.

    A model that cannot be resolved, loaded or run is skipped: ``failures`` gives its reason in
    one line. Failures are not cached (they may be transient). Under ``accelerate launch`` every
    process computes the same scores and only the main process writes to the repository.

    Args:
        repository: The model repository holding the cache.
        model_specs: Hub ids or local model folders.
        target_spec: The target dataset (Hub id, ``ID:CONFIG`` or local path).
        proxy: A name in :data:`hfselect.core.proxies.PROXIES` (default
            :data:`hfselect.config.DEFAULT_PROXY`, the proxy of ``hfselect recall``).
        sample_size: Examples to sample from the target.
        seed: Sampling seed.
        text_columns: Override of the target's text column(s).
        label_column: Override of the target's label column.
        split: The split to sample (default: train).
        batch_size: Examples per forward pass.
        max_length: Text truncation length in tokens.
        token: Hub token.
        allow_pickle: Allow pickle weights.
        progress: Show a progress bar over the models.
        fallback: A feature-based proxy for models without a trained head.

    Returns:
        A :class:`ProxyRun`.

    Raises:
        HfSelectError: An unknown proxy or fallback, or the target cannot be loaded
            (:class:`~hfselect.errors.DatasetError`).
    """
    check_int("sample_size", sample_size, minimum=1)
    check_int("batch_size", batch_size, minimum=1)
    check_int("max_length", max_length, minimum=1)
    requested = proxy_info(proxy)
    fallback_info = proxy_info(fallback)
    if fallback_info.needs_head:
        raise HfSelectError(
            f"the fallback proxy must work on features; {fallback} needs a classification head"
        )
    from accelerate import Accelerator

    sample, columns = load_target_sample(
        target_spec,
        sample_size,
        text_columns=text_columns,
        label_column=label_column,
        split=split,
        seed=seed,
        token=token,
    )
    labels = np.asarray(sample["label"], dtype=np.int64)
    dataset = dataset_key(target_spec)
    _check_several_classes(dataset, labels, columns, label_column)
    fingerprint = sample_fingerprint(sample, columns, max_length=max_length)
    run = ProxyRun(
        dataset=dataset,
        dataset_fingerprint=fingerprint,
        proxy=proxy,
        sample_size=sample_size,
        num_examples=sample.num_rows,
        seed=seed,
    )
    # One accelerator for all models; under ``accelerate launch`` only the main process shows
    # progress and writes to the repository.
    accelerator = Accelerator()
    is_main = accelerator.is_main_process
    bar = tqdm(
        list(model_specs), desc=f"Scoring models ({proxy})", unit="model", disable=not progress or not is_main
    )
    for spec in bar:
        model_id = model_key(spec)
        bar.set_postfix_str(model_id, refresh=False)
        record: ProxyRecord | None = None
        try:
            sha, revision = resolve_model_sha(spec, token=token)
            key = ProxyCacheKey(model_id, sha, fingerprint, sample_size, seed)
            record = _cached_record(repository, key, requested, fallback_info)
            if record is None:
                record, stores = _compute_record(
                    spec,
                    key,
                    requested,
                    fallback_info,
                    sample,
                    columns,
                    labels,
                    batch_size=batch_size,
                    max_length=max_length,
                    token=token,
                    allow_pickle=allow_pickle,
                    revision=revision,
                    accelerator=accelerator,
                )
                if is_main and run.cache_error is None:
                    run.cache_error = cache_proxy_scores(repository, key, dataset, stores)
        except Exception as error:
            reason = _one_line(error)
            run.failures[model_id] = reason
            logger.warning("skipping model %s: %s", model_id, reason)
            continue
        finally:
            if record is None or not record.cached:
                # Collect the model just run (and free accelerator memory) before loading the next.
                accelerator.free_memory()
        if record.note:
            logger.info("%s: %s", model_id, record.note)
        run.records.append(record)
    bar.close()
    return run


def _check_several_classes(
    dataset: str, labels: np.ndarray, columns: ColumnInfo, label_column: str | None
) -> None:
    """Refuse a target sample of one class, before any model is loaded.

    Every proxy then measures nothing (every model "classifies" it perfectly), so a ranking would
    be noise presented as a result, and fine selection after it would train every candidate to the
    same perfect score. It nearly always means the wrong label column or split.
    """
    present = np.unique(labels)
    if present.size >= 2:
        return
    names = columns.label_names or []
    only = names[int(present[0])] if present.size and int(present[0]) < len(names) else "?"
    column = f"'{label_column}'" if label_column else "the label column"
    raise DatasetError(
        f"target '{dataset}' has one class only ({only!r}) in {column} of its {labels.size} sampled rows: "
        "proxy scores cannot rank models on it; choose the label column (--label-column), a split "
        "with several classes (--split), or a larger --sample-size"
    )


def _cached_record(
    repository: ModelRepository, key: ProxyCacheKey, requested: ProxyInfo, fallback: ProxyInfo
) -> ProxyRecord | None:
    found, score, seconds = cached_proxy_score(repository, key, requested.name)
    used, note = requested.name, None
    if found and score is None:
        # NULL: the requested proxy does not apply to this model (no trained head); try the fallback.
        found, score, seconds = cached_proxy_score(repository, key, fallback.name)
        used, note = fallback.name, _fallback_note(requested.name, fallback.name, None)
    if not found or score is None:
        return None
    return ProxyRecord(
        model_id=key.model_id,
        proxy_requested=requested.name,
        proxy_used=used,
        score=float(score),
        seconds=seconds,
        cached=True,
        examples_per_second=None,
        model_sha=key.model_sha,
        note=note,
    )


def _compute_record(
    spec: str,
    key: ProxyCacheKey,
    requested: ProxyInfo,
    fallback: ProxyInfo,
    sample: datasets.Dataset,
    columns: ColumnInfo,
    labels: np.ndarray,
    *,
    batch_size: int,
    max_length: int,
    token: str | bool | None,
    allow_pickle: bool,
    revision: str | None,
    accelerator: Accelerator,
) -> tuple[ProxyRecord, list[tuple[str, float | None, float | None]]]:
    """Compute one model's score; also return the cache rows ``(proxy, score, seconds)`` to store."""
    started = time.perf_counter()
    outputs = compute_model_outputs(
        spec,
        sample,
        columns,
        batch_size=batch_size,
        max_length=max_length,
        token=token,
        allow_pickle=allow_pickle,
        revision=revision,
        accelerator=accelerator,
    )
    used, note = requested, None
    stores: list[tuple[str, float | None, float | None]] = []
    if requested.needs_head and outputs.source_probs is None:
        used = fallback
        note = _fallback_note(requested.name, fallback.name, outputs.note)
        stores.append((requested.name, None, None))
    score = run_proxy(used.name, outputs, labels)
    if not math.isfinite(score):
        raise HfSelectError(f"{used.name} gave a non-finite score ({score})")
    seconds = time.perf_counter() - started
    stores.append((used.name, score, seconds))
    record = ProxyRecord(
        model_id=key.model_id,
        proxy_requested=requested.name,
        proxy_used=used.name,
        score=score,
        seconds=seconds,
        cached=False,
        examples_per_second=outputs.examples_per_second,
        model_sha=key.model_sha,
        note=note,
    )
    return record, stores
