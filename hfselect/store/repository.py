"""The model repository: one SQLite file holding everything hfselect learns offline.

It stores the crawled Hub models, the benchmark datasets, each (model, dataset) benchmark result
with its protocol, the learning curves (validation score per epoch), cached proxy scores, crawl
logs and the selection studies. :class:`ModelRepository` is the one class users see; each family
of tables has its methods in a module of its own (see the class comment).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hfselect.errors import RepositoryError
from hfselect.store.claims import ClaimsMixin
from hfselect.store.matrices import csv_results, parse_matrix
from hfselect.store.protocol import IMPORTED, Protocol
from hfselect.store.schema import MODEL_COLUMNS
from hfselect.store.sql import decode, ensure_parents, upsert, utcnow, where_equal
from hfselect.store.transfer import TransferMixin
from hfselect.validation import check_instance, check_name

logger = logging.getLogger(__name__)


# One class for users, several modules for maintainers: the connection plumbing
# (RepositoryConnection), claims and whole-table transfers are mixins that each subclass the
# connection, so they share its one connection and lock, and each module stays small enough to
# read; this class adds the per-row methods (models, crawl log, datasets, results, curves,
# summaries). Composition through an attribute would make users write `repository.claims.claim(...)`
# and break the API every caller uses today.
class ModelRepository(ClaimsMixin, TransferMixin):
    """The SQLite store of models, benchmark results, learning curves, proxy scores and studies.

    Args:
        path: the SQLite file; created with its folder when missing. ``None`` uses
            :func:`default_repository_path`.
        create: with ``False``, a missing or empty file is an error instead of a new empty
            repository (for commands that only read: a mistyped path must not look like an empty
            store). A file that is not an hfselect repository is refused either way, unchanged.

    A file this process cannot write (or whose folder it cannot write) is opened read-only
    (``read_only`` is then true): reads work, writes raise
    :class:`~hfselect.errors.RepositoryReadOnlyError`.

    Each instance holds one connection; it may be shared between threads (calls are serialised)
    and any number of processes may open the same file.
    """

    # -- models ---------------------------------------------------------------------------------

    def upsert_model(self, model_id: str, **fields: Any) -> None:
        """Insert a model or update the given fields of an existing one.

        JSON-valued fields (``id2label``, ``tags``, ``card_data``) may be given as Python objects.
        """
        unknown = set(fields) - set(MODEL_COLUMNS)
        if unknown:
            raise ValueError(f"unknown model fields: {sorted(unknown)}")
        with self._transaction() as connection:
            upsert(connection, "models", {"model_id": model_id, **fields}, ("model_id",))

    def get_model(self, model_id: str) -> dict[str, Any] | None:
        """The stored fields of one model, JSON fields decoded, or ``None``."""
        rows = self._query("SELECT * FROM models WHERE model_id = ?", (model_id,))
        return decode(rows[0]) if rows else None

    def models(self) -> list[dict[str, Any]]:
        """Every stored model, ordered by id."""
        return [decode(row) for row in self._query("SELECT * FROM models ORDER BY model_id")]

    def model_location(self, model_id: str) -> str:
        """What to load for ``model_id``: its local folder when it was benchmarked from one, else the id."""
        rows = self._query("SELECT location FROM models WHERE model_id = ?", (model_id,))
        location = rows[0]["location"] if rows else None
        return location if location and Path(location).is_dir() else model_id

    def model_shas(self) -> dict[str, str | None]:
        """``model_id -> sha`` for every stored model (what an incremental crawl compares)."""
        return {row["model_id"]: row["sha"] for row in self._query("SELECT model_id, sha FROM models")}

    # -- crawl log ------------------------------------------------------------------------------

    def log_crawl(self, model_id: str, sha: str | None, status: str, reason: str | None = None) -> None:
        """Record what the crawler decided for a model (``stored``, ``skipped`` or ``failed``)."""
        with self._transaction() as connection:
            upsert(
                connection,
                "crawl_log",
                {
                    "model_id": model_id,
                    "sha": sha,
                    "status": status,
                    "reason": reason,
                    "crawled_at": utcnow(),
                },
                ("model_id",),
            )

    def crawl_log(self) -> dict[str, dict[str, Any]]:
        """``model_id -> {sha, status, reason, crawled_at}`` for every model the crawler has seen."""
        return {row["model_id"]: dict(row) for row in self._query("SELECT * FROM crawl_log")}

    # -- datasets -------------------------------------------------------------------------------

    def upsert_dataset(self, name: str, **fields: Any) -> None:
        """Insert or update a benchmark dataset's description."""
        with self._transaction() as connection:
            upsert(connection, "datasets", {"name": name, "added_at": utcnow(), **fields}, ("name",))

    def datasets(self) -> list[dict[str, Any]]:
        """Every stored benchmark dataset, ordered by name."""
        return [decode(row) for row in self._query("SELECT * FROM datasets ORDER BY name")]

    # -- results and curves ---------------------------------------------------------------------

    def record_result(
        self,
        model_id: str,
        dataset: str,
        score: float | None,
        protocol: Protocol = IMPORTED,
        *,
        curve: Sequence[float] | Mapping[int, float] | None = None,
        status: str = "ok",
        error: str | None = None,
        duration_s: float | None = None,
    ) -> None:
        """Store one benchmark result and, optionally, its learning curve, in one transaction.

        A row already there for the same (model, dataset, protocol) is replaced, so a result and
        its curve are always written together or not at all. ``curve`` is the validation score
        after each epoch: a sequence (epoch 1, 2, ...) or a mapping ``epoch -> score``.
        """
        check_instance("protocol", protocol, Protocol, "a Protocol (hfselect.store.Protocol)")
        row = {
            "model_id": model_id,
            "dataset": dataset,
            "protocol": protocol.key,
            "metric": protocol.metric,
            "score": None if score is None else float(score),
            "status": status,
            "error": error,
            "epochs": protocol.epochs,
            "learning_rate": protocol.learning_rate,
            "batch_size": protocol.batch_size,
            "seed": protocol.seed,
            "train_samples": protocol.train_samples,
            "eval_samples": protocol.eval_samples,
            "max_length": protocol.max_length,
            "duration_s": duration_s,
            "created_at": utcnow(),
        }
        points = dict(enumerate(curve, start=1)) if isinstance(curve, Sequence) else dict(curve or {})
        with self._transaction() as connection:
            ensure_parents(connection, model_id, dataset, "local")
            upsert(connection, "results", row, ("model_id", "dataset", "protocol"))
            connection.execute(
                "DELETE FROM curves WHERE model_id = ? AND dataset = ? AND protocol = ?",
                (model_id, dataset, protocol.key),
            )
            connection.executemany(
                "INSERT INTO curves (model_id, dataset, protocol, epoch, score) VALUES (?, ?, ?, ?, ?)",
                [(model_id, dataset, protocol.key, int(e), float(s)) for e, s in sorted(points.items())],
            )

    def record_results(self, rows: Iterable[tuple[str, str, float]], protocol: Protocol = IMPORTED) -> int:
        """Store many ``(model_id, dataset, score)`` results in one transaction; return the count."""
        check_instance("protocol", protocol, Protocol, "a Protocol (hfselect.store.Protocol)")
        count = 0
        with self._transaction() as connection:
            for model_id, dataset, score in rows:
                ensure_parents(connection, model_id, dataset, "imported")
                upsert(
                    connection,
                    "results",
                    {
                        "model_id": model_id,
                        "dataset": dataset,
                        "protocol": protocol.key,
                        "metric": protocol.metric,
                        "score": float(score),
                        "status": "ok",
                        "created_at": utcnow(),
                    },
                    ("model_id", "dataset", "protocol"),
                )
                count += 1
        return count

    def completed_pairs(self, protocol: Protocol, *, include_failed: bool = True) -> set[tuple[str, str]]:
        """The (model, dataset) pairs already benchmarked under ``protocol`` (resuming skips them)."""
        sql = "SELECT model_id, dataset FROM results WHERE protocol = ?"
        if not include_failed:
            sql += " AND status = 'ok'"
        return {(row[0], row[1]) for row in self._query(sql, (protocol.key,))}

    def results(self, *, protocol: str | None = None, status: str | None = "ok") -> pd.DataFrame:
        """Benchmark results as a long DataFrame (one row per model, dataset and protocol)."""
        where, parameters = where_equal(protocol=protocol, status=status)
        frame = self._frame(f"SELECT * FROM results{where} ORDER BY model_id, dataset", parameters)
        # SQLite keeps whatever a column was given: a repository filled before imports were
        # checked may hold a text or infinite score, which must not break clustering or recall.
        scores = pd.to_numeric(frame["score"], errors="coerce").astype(float)
        broken = (frame["status"] == "ok") & ~np.isfinite(scores)
        if broken.any():
            first = frame[broken].iloc[0]
            logger.warning(
                "ignoring %d result(s) whose score is not a finite number (e.g. %s on %s: %r); "
                "record them again",
                int(broken.sum()),
                first["model_id"],
                first["dataset"],
                first["score"],
            )
        return frame.assign(score=scores)[~broken].reset_index(drop=True)

    def performance_matrix(self, *, protocol: str | None = None, metric: str | None = None) -> pd.DataFrame:
        """The performance matrix: one row per model, one column per dataset, the final scores.

        Where a pair has results under several protocols, the most recent one is used.
        """
        frame = self.results(protocol=protocol)
        if metric is not None:
            frame = frame[frame["metric"] == metric]
        if frame.empty:
            return pd.DataFrame(dtype=float)
        frame = frame.sort_values("created_at").drop_duplicates(["model_id", "dataset"], keep="last")
        matrix = frame.pivot(index="model_id", columns="dataset", values="score")
        matrix.index.name, matrix.columns.name = "model_id", None
        return matrix.sort_index().sort_index(axis=1)

    def curves(self, *, model_id: str | None = None, protocol: str | None = None) -> pd.DataFrame:
        """Learning curves as a long DataFrame: model_id, dataset, protocol, epoch, score."""
        where, parameters = where_equal(model_id=model_id, protocol=protocol)
        return self._frame(
            f"SELECT * FROM curves{where} ORDER BY model_id, dataset, protocol, epoch", parameters
        )

    def import_matrix(
        self,
        matrix_path: str | os.PathLike[str],
        datasets_path: str | os.PathLike[str],
        *,
        metric: str = "accuracy",
    ) -> int:
        """Import a performance matrix in the layout of the paper's released code.

        Line 1 of ``matrix_path`` holds tab-separated model ids (``--`` stands for ``/``); each
        following line holds one benchmark dataset's scores in the same column order, the dataset
        names being the lines of ``datasets_path``. Returns the number of results stored.
        """
        check_name("metric", metric)
        matrix = parse_matrix(matrix_path, datasets_path)
        rows = [
            (model_id, dataset, score)
            for dataset, scores in matrix.items()
            for model_id, score in scores.items()
            if score == score  # skip NaN cells
        ]
        return self.record_results(rows, Protocol(metric=metric))

    def import_csv(self, csv_path: str | os.PathLike[str], *, metric: str = "accuracy") -> int:
        """Import long-form results: a CSV with columns ``model_id,dataset,score``."""
        check_name("metric", metric)
        try:
            frame = pd.read_csv(csv_path)
        except (OSError, ValueError) as error:
            raise RepositoryError(f"cannot read results CSV {csv_path}: {error}") from error
        missing = {"model_id", "dataset", "score"} - set(frame.columns)
        if missing:
            raise RepositoryError(f"{csv_path} lacks the column(s) {', '.join(sorted(missing))}")
        return self.record_results(csv_results(frame, csv_path), Protocol(metric=metric))

    # -- summaries ------------------------------------------------------------------------------

    def results_by_protocol(self) -> list[dict[str, Any]]:
        """The successful results grouped by protocol, ordered by protocol key.

        Each entry: ``protocol``, ``results``, ``models``, ``datasets`` (counts), ``metrics`` (sorted
        names), ``epochs`` (the most epochs recorded, ``None`` when unknown) and ``curves`` (how many
        (model, dataset) pairs have a learning curve under that protocol).
        """
        rows = self._query(
            "SELECT protocol, COUNT(*) AS results, COUNT(DISTINCT model_id) AS models, "
            "COUNT(DISTINCT dataset) AS datasets, GROUP_CONCAT(DISTINCT metric) AS metrics, "
            "MAX(epochs) AS epochs FROM results WHERE status = 'ok' GROUP BY protocol ORDER BY protocol"
        )
        curves = {
            row["protocol"]: row["n"]
            for row in self._query(
                "SELECT protocol, COUNT(DISTINCT model_id || char(0) || dataset) AS n FROM curves "
                "GROUP BY protocol"
            )
        }
        return [
            {
                "protocol": row["protocol"],
                "results": row["results"],
                "models": row["models"],
                "datasets": row["datasets"],
                "metrics": sorted((row["metrics"] or "").split(",")),
                "epochs": row["epochs"],
                "curves": curves.get(row["protocol"], 0),
            }
            for row in rows
        ]

    def study_ids(self) -> list[str]:
        """The name of every selection study stored, sorted (see :class:`~hfselect.store.Study`)."""
        return [row["study_id"] for row in self._query("SELECT study_id FROM studies ORDER BY study_id")]
