"""The proxy-score cache: scores already computed, keyed by model commit and target sample.

A row of ``proxy_scores`` holds one proxy's score of one model (at one commit sha) on one target
sample (its fingerprint, size and seed), with the seconds it took. A NULL score means "this proxy
does not apply to this model" (LEEP or NCE on a model without a trained head), so the next run goes
straight to the fallback. :func:`hfselect.training.proxy_scoring.score_models` reads and writes it
through these functions.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from hfselect.errors import RepositoryReadOnlyError
from hfselect.store.repository import ModelRepository
from hfselect.store.sql import utcnow

__all__ = ["ProxyCacheKey", "cache_proxy_scores", "cached_proxy_score"]

logger = logging.getLogger(__name__)

_CACHE_COLUMNS = (
    "model_id",
    "model_sha",
    "dataset",
    "dataset_fingerprint",
    "proxy",
    "sample_size",
    "seed",
    "score",
    "seconds",
    "computed_at",
)


@dataclass(frozen=True)
class ProxyCacheKey:
    """What a cached score depends on, besides the proxy.

    Attributes:
        model_id: The model's key (Hub id, or local folder name).
        model_sha: Its Hub commit sha, or the local folder's content hash.
        dataset_fingerprint: The target sample's fingerprint.
        sample_size: The sample size asked for.
        seed: The sampling seed.
    """

    model_id: str
    model_sha: str
    dataset_fingerprint: str
    sample_size: int
    seed: int


def cached_proxy_score(repository: ModelRepository, key: ProxyCacheKey, proxy: str) -> tuple[bool, Any, Any]:
    """``(found, score, seconds)``; a found row with a NULL score means "not applicable"."""
    rows = repository._query(
        "SELECT score, seconds FROM proxy_scores WHERE model_id = ? AND model_sha = ? "
        "AND dataset_fingerprint = ? AND proxy = ? AND sample_size = ? AND seed = ?",
        (key.model_id, key.model_sha, key.dataset_fingerprint, proxy, key.sample_size, key.seed),
    )
    if not rows:
        return False, None, None
    return True, rows[0]["score"], rows[0]["seconds"]


def cache_proxy_scores(
    repository: ModelRepository,
    key: ProxyCacheKey,
    dataset: str,
    scores: Iterable[tuple[str, float | None, float | None]],
) -> str | None:
    """Cache a model's computed ``(proxy, score, seconds)``; return why they could not be, else None.

    A proxy score is worth printing even when it cannot be kept, so a read-only store (the reason
    returned) is not a failure of the model.
    """
    try:
        for proxy, score, seconds in scores:
            _store(repository, key, dataset, proxy, score, seconds)
    except RepositoryReadOnlyError as error:
        logger.debug("proxy scores not cached: %s", error)
        return str(error)
    return None


def _store(
    repository: ModelRepository,
    key: ProxyCacheKey,
    dataset: str,
    proxy: str,
    score: float | None,
    seconds: float | None,
) -> None:
    values = (
        key.model_id,
        key.model_sha,
        dataset,
        key.dataset_fingerprint,
        proxy,
        key.sample_size,
        key.seed,
        score,
        seconds,
        utcnow(),
    )
    with repository._transaction() as connection:
        connection.execute(
            f"INSERT INTO proxy_scores ({', '.join(_CACHE_COLUMNS)}) "
            f"VALUES ({', '.join('?' for _ in _CACHE_COLUMNS)}) "
            "ON CONFLICT (model_id, model_sha, dataset_fingerprint, proxy, sample_size, seed) DO UPDATE SET "
            "dataset = excluded.dataset, score = excluded.score, seconds = excluded.seconds, "
            "computed_at = excluded.computed_at",
            values,
        )
