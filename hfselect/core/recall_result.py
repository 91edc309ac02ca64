"""What a coarse recall returns: :class:`RecallResult` (every model's :class:`RecallEntry`), and its JSON form.

:func:`~hfselect.core.recall.coarse_recall` fills the ranking; :func:`hfselect.recall` (the pipeline
that computes the proxies on a target first) also says how the proxies were obtained (``target``,
``proxy``, ``proxied_models``, ``skipped``, ...). ``to_dict``/``from_dict`` round-trip both, and read
the ``recall`` section of every ``report.json`` hfselect has written.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

__all__ = ["RecallEntry", "RecallResult", "score_source"]

_FLOAT_FIELDS = ("score", "mean_score", "weight")


@dataclasses.dataclass(frozen=True)
class RecallEntry:
    """One ranked model and why it got its score (``score = mean_score * weight`` under the paper's rules).

    Attributes:
        model_id: the model.
        rank: 1-based position in the ranking of all models.
        score: the recall score.
        mean_score: its mean benchmark score (for a new model: the mean over all models).
        weight: the proxy factor: ``proxy_transform(proxy)`` for a clustered or new model, the
            similarity-weighted mean over the representatives for a singleton; with scope
            ``"evidence"``, the standardized proxy rank used (NaN when the model has none).
        role: ``"representative"``, ``"member"`` (of a multi-model cluster), ``"singleton"`` or
            ``"new"`` (no benchmark results).
        cluster: its cluster id (``None`` for a new model).
        representative: its cluster's representative (``None`` for singletons and new models).
        proxy_model: the model whose proxy score was used (``None`` for a singleton, which uses
            every representative's).
        proxy: that proxy score (``None`` for a singleton).
        has_results: whether the model has benchmark results.
        source: in words, what the score came from (e.g. "own proxy + evidence from 7 similar datasets").
        evidence: scope ``"evidence"``: the model's standardized benchmark evidence (else ``None``).
        evidence_datasets: scope ``"evidence"``: how many resembling benchmark datasets it draws on.
    """

    model_id: str
    rank: int
    score: float
    mean_score: float
    weight: float
    role: str
    cluster: int | None
    representative: str | None
    proxy_model: str | None
    proxy: float | None
    has_results: bool
    source: str = ""
    evidence: float | None = None
    evidence_datasets: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (NaN becomes ``None``)."""
        record = dataclasses.asdict(self)
        for key in (*_FLOAT_FIELDS, "proxy", "evidence"):
            record[key] = json_float(record[key])
        return record

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RecallEntry:
        """The entry of :meth:`to_dict` (older reports lack ``source`` and the evidence fields)."""
        names = {field.name for field in dataclasses.fields(cls)}
        values = {key: value for key, value in data.items() if key in names}
        for key in _FLOAT_FIELDS:  # written as null when NaN
            values[key] = math.nan if values.get(key) is None else float(values[key])
        values.setdefault("source", "")
        return cls(**values)


def score_source(entry: RecallEntry, scope: str | None) -> str:
    """In words, what a model's recall score came from: the recall table's "score from" column.

    ``hfselect recall`` and the report card both show it. The recall writes it into each entry;
    reports written before entries carried their ``source`` get it from the entry's role under the
    rule (``scope``) that ran.
    """
    if entry.source:
        return entry.source
    if scope == "every":
        return "own proxy (no benchmark results)" if entry.role == "new" else "own proxy"
    if entry.role == "representative":
        return "represents its cluster"
    if entry.role == "member":
        return f"member of cluster {entry.cluster}, represented by {entry.representative}"
    if entry.role == "singleton":
        if entry.proxy_model != entry.model_id:
            return "alone in its cluster: weighted by its similarity to every representative"
        return "no cluster has several models: weighted by its own proxy"
    if entry.role == "new":
        return "no benchmark results: ranked by its own proxy"
    return entry.role


@dataclasses.dataclass
class RecallResult:
    """The outcome of a coarse recall: the ranking and, from :func:`hfselect.recall`, how it was obtained.

    Attributes:
        models: the recalled model ids, best first (at most ``top_k``).
        scores: their recall scores, aligned with ``models``.
        entries: the recalled models' :class:`RecallEntry`, best first.
        ranking: every model's :class:`RecallEntry`, best first (``entries`` is its head).
        clusters: the clusters (lists of model ids), ``clusters[c]`` being cluster ``c``.
        representatives: cluster id -> representative, for the clusters of several models.
        new_models: the models ranked without benchmark results.
        scope: the rule that ranked them: ``"evidence"``, ``"representatives"``, ``"all"`` or ``"every"``.
        top_k: the requested number of models (``None``: all).
        threshold: the clustering threshold used (``None`` for a k-means clustering).
        k_largest: the distance's ``k_largest``.
        target: the target dataset the proxies were computed on (``None`` from :func:`coarse_recall`).
        proxy: the proxy used for every model (after a fallback from LEEP/NCE to LogME, LogME).
        proxy_scores: every proxy score the rule saw, by model.
        proxied_models: the models whose proxy was computed by this recall (not precomputed or cached).
        skipped: models left out, with the reason (e.g. their weights could not be loaded).
        notes: what the user should know about how the ranking was obtained.
        fallback: no benchmark results: models were ranked by their own proxy only.
        proxy_seconds: time spent computing proxies.
        examples_per_second: each proxied model's throughput.
    """

    models: list[str]
    scores: list[float]
    entries: list[RecallEntry]
    ranking: list[RecallEntry]
    clusters: list[list[str]]
    representatives: dict[int, str]
    new_models: list[str]
    scope: str
    top_k: int | None
    threshold: float | None
    k_largest: int
    target: str | None = None
    proxy: str | None = None
    proxy_scores: dict[str, float] = dataclasses.field(default_factory=dict)
    proxied_models: list[str] = dataclasses.field(default_factory=list)
    skipped: dict[str, str] = dataclasses.field(default_factory=dict)
    notes: list[str] = dataclasses.field(default_factory=list)
    fallback: bool = False
    proxy_seconds: float = 0.0
    examples_per_second: dict[str, float] = dataclasses.field(default_factory=dict)

    def to_frame(self, all_models: bool = False) -> pd.DataFrame:
        """The recalled models (every ranked model with ``all_models``) as a DataFrame, best first.

        One row per model, indexed by model id, with the :class:`RecallEntry` fields and a boolean
        ``recalled`` column.
        """
        chosen = self.ranking if all_models else self.entries
        recalled = set(self.models)
        columns = [field.name for field in dataclasses.fields(RecallEntry)]
        frame = pd.DataFrame([dataclasses.asdict(entry) for entry in chosen], columns=columns)
        frame["recalled"] = frame["model_id"].isin(recalled)
        return frame.set_index("model_id")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (plain types; NaN becomes ``None``; cluster ids as string keys).

        What ``hfselect recall --json`` writes and the ``recall`` section of ``report.json``.
        """
        return {
            "target": self.target,
            "proxy": self.proxy,
            "fallback_to_proxy_only": self.fallback,
            "proxied_models": list(self.proxied_models),
            "proxy_scores": {model: json_float(score) for model, score in self.proxy_scores.items()},
            "proxy_seconds": self.proxy_seconds,
            "examples_per_second": dict(self.examples_per_second),
            "skipped": dict(self.skipped),
            "notes": list(self.notes),
            "models": list(self.models),
            "scores": [json_float(score) for score in self.scores],
            "entries": [entry.to_dict() for entry in self.entries],
            "ranking": [entry.to_dict() for entry in self.ranking],
            "clusters": [list(cluster) for cluster in self.clusters],
            "representatives": {str(cluster): model for cluster, model in self.representatives.items()},
            "new_models": list(self.new_models),
            "scope": self.scope,
            "top_k": self.top_k,
            "threshold": json_float(self.threshold),
            "k_largest": self.k_largest,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RecallResult:
        """The result of :meth:`to_dict`, or the ``recall`` section of any ``report.json``."""
        return cls(
            models=[str(model) for model in data.get("models") or []],
            scores=[math.nan if score is None else float(score) for score in data.get("scores") or []],
            entries=[RecallEntry.from_dict(entry) for entry in data.get("entries") or []],
            ranking=[RecallEntry.from_dict(entry) for entry in data.get("ranking") or []],
            clusters=[list(cluster) for cluster in data.get("clusters") or []],
            representatives={
                int(key): str(value) for key, value in (data.get("representatives") or {}).items()
            },
            new_models=list(data.get("new_models") or []),
            scope=str(data.get("scope") or ""),
            top_k=data.get("top_k"),
            threshold=data.get("threshold"),
            k_largest=int(data.get("k_largest") or 0),
            target=data.get("target"),
            proxy=data.get("proxy"),
            proxy_scores={
                model: math.nan if score is None else float(score)
                for model, score in (data.get("proxy_scores") or {}).items()
            },
            proxied_models=list(data.get("proxied_models") or []),
            skipped=dict(data.get("skipped") or {}),
            notes=list(data.get("notes") or []),
            fallback=bool(data.get("fallback_to_proxy_only")),
            proxy_seconds=float(data.get("proxy_seconds") or 0.0),
            examples_per_second=dict(data.get("examples_per_second") or {}),
        )


def json_float(value: float | None) -> float | None:
    """``value`` as a JSON number: ``None`` for a missing or non-finite one."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None
