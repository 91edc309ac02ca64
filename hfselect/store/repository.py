"""The model repository: one SQLite file holding everything hfselect learns offline.

It stores the crawled Hub models, the benchmark datasets, each (model, dataset) benchmark result
with its protocol, the learning curves (validation score per epoch), cached proxy scores and the
selection studies. Several processes may write to one file at once (benchmark workers do): the
file is in WAL mode, every write is a short ``BEGIN IMMEDIATE`` transaction, and a busy file is
waited for rather than failed on. SQLite must not be shared over a network file system; workers on
different machines each write their own file and ``ModelRepository.import_parquet`` merges them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from hfselect.errors import RepositoryError, RepositoryReadOnlyError

ENV_REPOSITORY = "HFSELECT_REPOSITORY"

# How long a writer waits for another process's transaction before giving up. Benchmark workers
# hold the write lock for milliseconds, so a minute means something is really wrong.
BUSY_TIMEOUT_S = 60.0

# How long a pair's claim lasts unless its worker renews it (bench renews it every CLAIM_TTL_S / 4):
# a crashed worker's pair is free again after this long.
CLAIM_TTL_S = 600.0

# Columns stored as JSON text in SQLite and exported as JSON strings (Parquet stays flat and the
# Hub's dataset viewer shows it as is).
JSON_COLUMNS = {"id2label", "tags", "card_data", "label_names", "config", "details"}


def hfselect_cache() -> Path:
    """hfselect's cache folder: ``$XDG_CACHE_HOME/hfselect``, else ``~/.cache/hfselect``."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hfselect"


def default_repository_path() -> Path:
    """Return the repository file used when neither ``--repository`` nor ``HFSELECT_REPOSITORY`` is set."""
    if os.environ.get(ENV_REPOSITORY):
        return Path(os.environ[ENV_REPOSITORY]).expanduser()
    return hfselect_cache() / "repository.sqlite"


def utcnow() -> str:
    """Current UTC time as an ISO-8601 string, the timestamp format of every table."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclasses.dataclass(frozen=True)
class Protocol:
    """How a benchmark result was obtained; results are only comparable under one protocol.

    ``key`` identifies the protocol in the results and curves tables, so a pair benchmarked again
    under a different protocol gets a row of its own and resuming can tell what is already done.
    """

    epochs: int | None = None
    learning_rate: float | None = None
    batch_size: int | None = None
    seed: int | None = None
    train_samples: int | None = None
    eval_samples: int | None = None
    max_length: int | None = None
    metric: str = "accuracy"

    @property
    def key(self) -> str:
        """A short stable identifier of this protocol ("imported" when nothing is known)."""
        fields = dataclasses.asdict(self)
        if all(value is None for name, value in fields.items() if name != "metric"):
            return "imported" if self.metric == "accuracy" else f"imported-{self.metric}"
        text = json.dumps(fields, sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:12]


IMPORTED = Protocol()

MODEL_COLUMNS = (
    "model_id",
    "sha",
    "architecture",
    "model_type",
    "pipeline_tag",
    "library",
    "num_parameters",
    "num_labels",
    "id2label",
    "hidden_size",
    "license",
    "downloads",
    "likes",
    "gated",
    "has_safetensors",
    "tags",
    "card_data",
    "last_modified",
    "created_at",
    "crawled_at",
    "source",
    "location",
)

# Forward migrations: entry i brings a file from schema version i to i + 1. Never edit a released
# entry; append a new one. ``PRAGMA user_version`` holds the file's version.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE models (
        model_id TEXT PRIMARY KEY,
        sha TEXT,
        architecture TEXT,
        model_type TEXT,
        pipeline_tag TEXT,
        library TEXT,
        num_parameters INTEGER,
        num_labels INTEGER,
        id2label TEXT,
        hidden_size INTEGER,
        license TEXT,
        downloads INTEGER,
        likes INTEGER,
        gated TEXT,
        has_safetensors INTEGER,
        tags TEXT,
        card_data TEXT,
        last_modified TEXT,
        created_at TEXT,
        crawled_at TEXT,
        source TEXT NOT NULL DEFAULT 'hub'
    );
    CREATE TABLE datasets (
        name TEXT PRIMARY KEY,
        num_labels INTEGER,
        label_names TEXT,
        modality TEXT,
        fingerprint TEXT,
        train_size INTEGER,
        validation_size INTEGER,
        test_size INTEGER,
        added_at TEXT
    );
    CREATE TABLE results (
        model_id TEXT NOT NULL REFERENCES models(model_id) ON DELETE CASCADE,
        dataset TEXT NOT NULL REFERENCES datasets(name) ON DELETE CASCADE,
        protocol TEXT NOT NULL,
        metric TEXT NOT NULL,
        score REAL,
        status TEXT NOT NULL DEFAULT 'ok',
        error TEXT,
        epochs INTEGER,
        learning_rate REAL,
        batch_size INTEGER,
        seed INTEGER,
        train_samples INTEGER,
        eval_samples INTEGER,
        max_length INTEGER,
        duration_s REAL,
        created_at TEXT,
        PRIMARY KEY (model_id, dataset, protocol)
    );
    CREATE TABLE curves (
        model_id TEXT NOT NULL REFERENCES models(model_id) ON DELETE CASCADE,
        dataset TEXT NOT NULL REFERENCES datasets(name) ON DELETE CASCADE,
        protocol TEXT NOT NULL,
        epoch INTEGER NOT NULL,
        score REAL,
        PRIMARY KEY (model_id, dataset, protocol, epoch)
    );
    CREATE TABLE proxy_scores (
        model_id TEXT NOT NULL,
        model_sha TEXT NOT NULL DEFAULT '',
        dataset TEXT NOT NULL,
        dataset_fingerprint TEXT NOT NULL,
        proxy TEXT NOT NULL,
        sample_size INTEGER NOT NULL,
        seed INTEGER NOT NULL DEFAULT 0,
        score REAL,
        seconds REAL,
        computed_at TEXT,
        PRIMARY KEY (model_id, model_sha, dataset_fingerprint, proxy, sample_size, seed)
    );
    CREATE TABLE studies (
        study_id TEXT PRIMARY KEY,
        target TEXT,
        config TEXT,
        status TEXT,
        created_at TEXT,
        updated_at TEXT
    );
    CREATE TABLE study_trials (
        study_id TEXT NOT NULL REFERENCES studies(study_id) ON DELETE CASCADE,
        model_id TEXT NOT NULL,
        state TEXT NOT NULL,
        epochs_trained INTEGER,
        final_score REAL,
        predicted_final REAL,
        wall_time_s REAL,
        reason TEXT,
        details TEXT,
        updated_at TEXT,
        PRIMARY KEY (study_id, model_id)
    );
    CREATE TABLE study_curves (
        study_id TEXT NOT NULL REFERENCES studies(study_id) ON DELETE CASCADE,
        model_id TEXT NOT NULL,
        epoch REAL NOT NULL,
        score REAL,
        predicted_final REAL,
        recorded_at TEXT,
        PRIMARY KEY (study_id, model_id, epoch)
    );
    CREATE TABLE crawl_log (
        model_id TEXT PRIMARY KEY,
        sha TEXT,
        status TEXT NOT NULL,
        reason TEXT,
        crawled_at TEXT
    );
    CREATE INDEX results_dataset ON results(dataset);
    CREATE INDEX curves_pair ON curves(model_id, dataset);
    """,
    # v2: where a model benchmarked from a local folder lives, so recall and select can load it.
    """
    ALTER TABLE models ADD COLUMN location TEXT;
    """,
    # v3: claims, so concurrent bench workers never train one pair twice (a claim expires unless
    # its worker renews it, so a crashed worker's pairs are taken over); a study's total wall time.
    """
    CREATE TABLE claims (
        model_id TEXT NOT NULL,
        dataset TEXT NOT NULL,
        protocol TEXT NOT NULL,
        owner TEXT NOT NULL,
        claimed_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        PRIMARY KEY (model_id, dataset, protocol)
    );
    ALTER TABLE studies ADD COLUMN wall_time_s REAL;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)

# Export order: parents before children, so an import never breaks a foreign key.
TABLES: tuple[str, ...] = (
    "models",
    "datasets",
    "results",
    "curves",
    "proxy_scores",
    "studies",
    "study_trials",
    "study_curves",
    "crawl_log",
)


class ModelRepository:
    """The SQLite store of models, benchmark results, learning curves, proxy scores and studies.

    Args:
        path: the SQLite file; created with its folder when missing. ``None`` uses
            :func:`default_repository_path`.
        create: with ``False``, a missing file is an error instead of a new empty repository
            (for commands that only read: a mistyped path must not look like an empty store).

    Each instance holds one connection; it may be shared between threads (calls are serialised)
    and any number of processes may open the same file.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, create: bool = True) -> None:
        self.path = Path(path).expanduser() if path is not None else default_repository_path()
        self._lock = threading.RLock()
        if not create and not self.path.is_file():
            raise RepositoryError(
                f"there is no repository at {self.path}: check the path, or fill a new one with "
                "`hfselect crawl`, `hfselect bench` or `hfselect repo import`"
            )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._connection = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as error:
            raise RepositoryError(f"cannot open the model repository at {self.path}: {error}") from error
        self._connection.row_factory = sqlite3.Row
        try:
            self._connection.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            self._connection.execute("PRAGMA journal_mode = WAL")
            self._connection.execute("PRAGMA foreign_keys = ON")
            self._connection.execute("PRAGMA synchronous = NORMAL")
            self._migrate()
        except sqlite3.DatabaseError as error:
            self._connection.close()
            translated = self._sqlite_error(error)
            if not isinstance(translated, RepositoryReadOnlyError):
                translated = RepositoryError(
                    f"{self.path} is not a usable hfselect repository ({error}); "
                    "pass another file with --repository"
                )
            raise translated from error
        except RepositoryError:  # already one line (a newer schema, a read-only file, ...)
            self._connection.close()
            raise

    # -- plumbing -------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection; the instance cannot be used afterwards."""
        with self._lock:
            self._connection.close()

    def __enter__(self) -> ModelRepository:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that takes the file's write lock up front.

        ``BEGIN IMMEDIATE`` makes a second writer wait in ``busy_timeout`` instead of failing
        later with "database is locked" when it tries to upgrade a read lock.
        """
        with self._lock, self._translated_errors():
            self._execute_with_retry("BEGIN IMMEDIATE")
            try:
                yield self._connection
            except BaseException:
                # SQLite has already rolled back after some errors (a corrupt page, a full disk).
                if self._connection.in_transaction:
                    self._connection.execute("ROLLBACK")
                raise
            else:
                self._connection.execute("COMMIT")

    @contextlib.contextmanager
    def _translated_errors(self) -> Iterator[None]:
        """Turn SQLite's errors about the file itself (read-only, damaged) into one-line repository errors.

        Other errors pass through: a constraint error's caller knows which row caused it, and a
        mistake in hfselect's own SQL must stay a traceback, not pose as a broken file.
        """
        try:
            yield
        except sqlite3.DatabaseError as error:
            translated = self._sqlite_error(error)
            if translated is None:
                raise
            raise translated from error

    def _sqlite_error(self, error: sqlite3.DatabaseError) -> RepositoryError | None:
        """The repository error that says what an SQLite error means for the user, if it is about the file."""
        text = str(error)
        if "readonly" in text or "read-only" in text:
            return RepositoryReadOnlyError(
                f"the repository {self.path} is read-only ({text}): make the file and its folder "
                "writable, or pass a writable copy with --repository"
            )
        if "malformed" in text or "not a database" in text:
            return RepositoryError(
                f"the repository {self.path} is damaged ({text}): restore it from a copy or an export "
                "(`hfselect repo import`), or pass another file with --repository"
            )
        if any(cause in text for cause in ("disk I/O error", "disk is full", "unable to open")):
            return RepositoryError(f"cannot use the repository {self.path}: {text}")
        return None

    def _execute_with_retry(self, sql: str) -> None:
        # busy_timeout covers nearly every wait; WAL checkpoints can still report SQLITE_BUSY
        # straight away, so retry briefly rather than lose a worker's rows.
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                self._connection.execute(sql)
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) and "busy" not in str(error):
                    raise
                if time.monotonic() > deadline:
                    raise RepositoryError(f"the repository {self.path} stayed locked: {error}") from error
                time.sleep(0.05)

    def _migrate(self) -> None:
        with self._lock:
            version = self._connection.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise RepositoryError(
                    f"{self.path} has schema version {version}, newer than this hfselect "
                    f"understands ({SCHEMA_VERSION}); upgrade hfselect"
                )
            if version == SCHEMA_VERSION:
                return
            with self.transaction() as connection:
                # Re-read under the write lock: another process may have migrated meanwhile.
                version = connection.execute("PRAGMA user_version").fetchone()[0]
                for index in range(version, SCHEMA_VERSION):
                    for statement in MIGRATIONS[index].split(";"):
                        if statement.strip():
                            connection.execute(statement)
                connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @property
    def schema_version(self) -> int:
        """The schema version of the open file."""
        with self._lock:
            return int(self._connection.execute("PRAGMA user_version").fetchone()[0])

    def query(self, sql: str, parameters: Sequence[Any] | Mapping[str, Any] = ()) -> list[sqlite3.Row]:
        """Run a read-only SQL query and return its rows."""
        with self._lock, self._translated_errors():
            return self._connection.execute(sql, parameters).fetchall()

    # -- models ---------------------------------------------------------------------------------

    def upsert_model(self, model_id: str, **fields: Any) -> None:
        """Insert a model or update the given fields of an existing one.

        JSON-valued fields (``id2label``, ``tags``, ``card_data``) may be given as Python objects.
        """
        unknown = set(fields) - set(MODEL_COLUMNS)
        if unknown:
            raise ValueError(f"unknown model fields: {sorted(unknown)}")
        with self.transaction() as connection:
            _upsert(connection, "models", {"model_id": model_id, **fields}, ("model_id",))

    def get_model(self, model_id: str) -> dict[str, Any] | None:
        """The stored fields of one model, JSON fields decoded, or ``None``."""
        rows = self.query("SELECT * FROM models WHERE model_id = ?", (model_id,))
        return _decode(rows[0]) if rows else None

    def models(self) -> list[dict[str, Any]]:
        """Every stored model, ordered by id."""
        return [_decode(row) for row in self.query("SELECT * FROM models ORDER BY model_id")]

    def model_location(self, model_id: str) -> str:
        """What to load for ``model_id``: its local folder when it was benchmarked from one, else the id."""
        rows = self.query("SELECT location FROM models WHERE model_id = ?", (model_id,))
        location = rows[0]["location"] if rows else None
        return location if location and Path(location).is_dir() else model_id

    def model_shas(self) -> dict[str, str | None]:
        """``model_id -> sha`` for every stored model (what an incremental crawl compares)."""
        return {row["model_id"]: row["sha"] for row in self.query("SELECT model_id, sha FROM models")}

    # -- crawl log ------------------------------------------------------------------------------

    def log_crawl(self, model_id: str, sha: str | None, status: str, reason: str | None = None) -> None:
        """Record what the crawler decided for a model (``stored``, ``skipped`` or ``failed``)."""
        with self.transaction() as connection:
            _upsert(
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
        return {row["model_id"]: dict(row) for row in self.query("SELECT * FROM crawl_log")}

    # -- datasets -------------------------------------------------------------------------------

    def upsert_dataset(self, name: str, **fields: Any) -> None:
        """Insert or update a benchmark dataset's description."""
        with self.transaction() as connection:
            _upsert(connection, "datasets", {"name": name, "added_at": utcnow(), **fields}, ("name",))

    def datasets(self) -> list[dict[str, Any]]:
        """Every stored benchmark dataset, ordered by name."""
        return [_decode(row) for row in self.query("SELECT * FROM datasets ORDER BY name")]

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
        with self.transaction() as connection:
            _ensure_parents(connection, model_id, dataset, "local")
            _upsert(connection, "results", row, ("model_id", "dataset", "protocol"))
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
        count = 0
        with self.transaction() as connection:
            for model_id, dataset, score in rows:
                _ensure_parents(connection, model_id, dataset, "imported")
                _upsert(
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
        return {(row[0], row[1]) for row in self.query(sql, (protocol.key,))}

    # -- claims: which worker is training which pair ------------------------------------------

    def claim_pair(
        self,
        model_id: str,
        dataset: str,
        protocol: Protocol,
        owner: str,
        *,
        ttl_s: float = CLAIM_TTL_S,
        failed_since: str | None = None,
        now: float | None = None,
    ) -> str:
        """Claim a pair for ``owner`` before training it: ``"claimed"``, ``"done"`` or ``"held"``.

        In one write transaction, so two workers can never both get ``"claimed"``. ``"done"``: the
        pair already has a finished result under ``protocol``, or a failed one recorded at or after
        ``failed_since`` (an ISO time such as the worker's start: concurrent workers do not retry
        each other's failures, a later run does). ``"held"``: another owner holds an unexpired
        claim. An expired claim (its worker crashed) is taken over. The owner renews its claim
        (the heartbeat of a long training) by claiming the pair again: ``"claimed"`` while it still
        holds it. ``now`` is the clock (``time.time()``), for tests.
        """
        clock = time.time() if now is None else now
        with self.transaction() as connection:
            result = connection.execute(
                "SELECT status, created_at FROM results WHERE model_id = ? AND dataset = ? AND protocol = ?",
                (model_id, dataset, protocol.key),
            ).fetchone()
            if result is not None and (
                result["status"] == "ok"
                or (failed_since is not None and (result["created_at"] or "") >= failed_since)
            ):
                return "done"
            held = connection.execute(
                "SELECT owner, expires_at FROM claims WHERE model_id = ? AND dataset = ? AND protocol = ?",
                (model_id, dataset, protocol.key),
            ).fetchone()
            if held is not None and held["owner"] != owner and held["expires_at"] > clock:
                return "held"
            _upsert(
                connection,
                "claims",
                {
                    "model_id": model_id,
                    "dataset": dataset,
                    "protocol": protocol.key,
                    "owner": owner,
                    "claimed_at": clock,
                    "expires_at": clock + ttl_s,
                },
                ("model_id", "dataset", "protocol"),
            )
            return "claimed"

    def release_claim(self, model_id: str, dataset: str, protocol: Protocol, owner: str) -> None:
        """Drop ``owner``'s claim on a pair (after its result is recorded, or when giving up)."""
        with self.transaction() as connection:
            connection.execute(
                "DELETE FROM claims WHERE model_id = ? AND dataset = ? AND protocol = ? AND owner = ?",
                (model_id, dataset, protocol.key, owner),
            )

    def claims(self) -> list[dict[str, Any]]:
        """Every current claim: model_id, dataset, protocol, owner, claimed_at, expires_at."""
        return [dict(row) for row in self.query("SELECT * FROM claims ORDER BY model_id, dataset, protocol")]

    def results(self, *, protocol: str | None = None, status: str | None = "ok") -> pd.DataFrame:
        """Benchmark results as a long DataFrame (one row per model, dataset and protocol)."""
        where, parameters = _where(protocol=protocol, status=status)
        return self._frame(f"SELECT * FROM results{where} ORDER BY model_id, dataset", parameters)

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
        where, parameters = _where(model_id=model_id, protocol=protocol)
        return self._frame(
            f"SELECT * FROM curves{where} ORDER BY model_id, dataset, protocol, epoch", parameters
        )

    # -- counts, export, import -----------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Number of rows in every table."""
        return {table: int(self.query(f"SELECT COUNT(*) FROM {table}")[0][0]) for table in TABLES}

    def table(self, name: str) -> pd.DataFrame:
        """One whole table as a DataFrame (JSON columns stay JSON text)."""
        if name not in TABLES:
            raise RepositoryError(f"no table named {name!r}; tables: {', '.join(TABLES)}")
        return self._frame(f"SELECT * FROM {name}")

    def export_parquet(
        self, directory: str | os.PathLike[str], *, include_local_paths: bool = False
    ) -> dict[str, Path]:
        """Write one Parquet file per table (``models.parquet``, ``results.parquet``, ...) into ``directory``.

        Exports are made to be shared, so local paths (where a local model's folder is, a local
        target's path) are left out unless ``include_local_paths`` (see :mod:`hfselect.store.local_paths`).
        """
        from hfselect.store.local_paths import public_table

        target = Path(directory)
        target.mkdir(parents=True, exist_ok=True)
        written = {}
        for name in TABLES:
            frame = self.table(name) if include_local_paths else public_table(name, self.table(name))
            path = target / f"{name}.parquet"
            # Write to a temporary name first: an interrupted export never leaves half a table.
            partial = path.with_suffix(".parquet.partial")
            frame.to_parquet(partial, index=False)
            partial.replace(path)
            written[name] = path
        return written

    def import_parquet(self, directory: str | os.PathLike[str]) -> dict[str, int]:
        """Merge the Parquet tables of ``directory`` (the ``export_parquet`` layout) into this store.

        Rows are matched by primary key; an imported row replaces the stored one with the same key
        (for ``models``, only when it was crawled at least as recently). Tables absent from the
        folder are left alone. Returns the number of rows read per table.

        The snapshot is imported in one transaction: when a file cannot be read, lacks a required
        column or holds a row the store refuses (e.g. a result whose model is in neither the
        snapshot nor the store), nothing of it is imported and the error names the file and row.
        """
        source = Path(directory)
        if not source.is_dir():
            raise RepositoryError(f"{source} is not a folder of exported repository tables")
        found = [name for name in TABLES if (source / f"{name}.parquet").exists()]
        if not found:
            raise RepositoryError(f"{source} holds none of the tables {', '.join(TABLES)} as .parquet files")
        frames = {name: _read_table_file(source / f"{name}.parquet") for name in found}
        imported: dict[str, int] = {}
        with self.transaction() as connection:
            for name, frame in frames.items():
                path = source / f"{name}.parquet"
                columns = _table_columns(connection, name)
                missing = sorted(_required_columns(connection, name) - set(frame.columns))
                if missing:
                    raise RepositoryError(
                        f"{path} lacks the column(s) {', '.join(missing)}, which the {name} table "
                        "requires; nothing was imported"
                    )
                frame = frame[[column for column in frame.columns if column in columns]]
                keys = _primary_key(connection, name)
                records = [_to_sql_values(record) for record in frame.to_dict(orient="records")]
                for row, record in enumerate(records, start=1):
                    try:
                        if name == "models":
                            _upsert_model_if_newer(connection, record)
                        else:
                            _upsert(connection, name, record, keys)
                    except sqlite3.IntegrityError as error:
                        raise RepositoryError(
                            f"{path} row {row}: {_describe_refused_row(connection, name, record, error)}; "
                            "nothing was imported"
                        ) from error
                imported[name] = len(records)
        return imported

    def copy_benchmarks(self, source: ModelRepository, *, exclude_datasets: Sequence[str] = ()) -> int:
        """Copy ``source``'s models, datasets, benchmark results and curves into this store.

        The rows of ``exclude_datasets`` are left out (a held-out target must not be a benchmark);
        rows already here with the same key are replaced. Returns the number of results copied.
        """
        excluded = list(exclude_datasets)
        marks = ", ".join("?" for _ in excluded)
        with self._lock:
            self._connection.execute("ATTACH DATABASE ? AS source", (str(source.path),))
            try:
                with self.transaction() as connection:
                    for table, column in (
                        ("models", None),
                        ("datasets", "name"),
                        ("results", "dataset"),
                        ("curves", "dataset"),
                    ):
                        columns = _table_columns(connection, table) & {
                            row[1] for row in connection.execute(f"PRAGMA source.table_info({table})")
                        }
                        names = ", ".join(sorted(columns))
                        keys = _primary_key(connection, table)
                        updates = ", ".join(f"{c} = excluded.{c}" for c in sorted(columns) if c not in keys)
                        where = f"{column} NOT IN ({marks})" if column and excluded else "true"
                        connection.execute(
                            f"INSERT INTO main.{table} ({names}) SELECT {names} FROM source.{table} "
                            f"WHERE {where} ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}",
                            excluded if column else [],
                        )
                    copied = connection.execute(
                        f"SELECT COUNT(*) FROM source.results WHERE dataset NOT IN ({marks})", excluded
                    ).fetchone()[0]
            finally:
                self._connection.execute("DETACH DATABASE source")
        return int(copied)

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
        try:
            frame = pd.read_csv(csv_path)
        except (OSError, ValueError) as error:
            raise RepositoryError(f"cannot read results CSV {csv_path}: {error}") from error
        missing = {"model_id", "dataset", "score"} - set(frame.columns)
        if missing:
            raise RepositoryError(f"{csv_path} lacks the column(s) {', '.join(sorted(missing))}")
        return self.record_results(_csv_results(frame, csv_path), Protocol(metric=metric))

    # -- helpers --------------------------------------------------------------------------------

    def _frame(self, sql: str, parameters: Sequence[Any] = ()) -> pd.DataFrame:
        with self._lock, self._translated_errors():
            cursor = self._connection.execute(sql, parameters)
            columns = [description[0] for description in cursor.description]
            return pd.DataFrame(cursor.fetchall(), columns=columns)


def parse_matrix(
    matrix_path: str | os.PathLike[str], datasets_path: str | os.PathLike[str]
) -> dict[str, dict[str, float]]:
    """Read a paper-layout performance matrix into ``{dataset: {model_id: score}}``."""
    try:
        lines = [line.rstrip("\n") for line in Path(matrix_path).read_text().splitlines() if line.strip()]
        names = [line.strip() for line in Path(datasets_path).read_text().splitlines() if line.strip()]
    except OSError as error:
        raise RepositoryError(f"cannot read the matrix: {error}") from error
    if not lines:
        raise RepositoryError(f"{matrix_path} is empty")
    model_ids = [model_id.strip().replace("--", "/") for model_id in lines[0].split("\t")]
    if len(lines) - 1 != len(names):
        raise RepositoryError(
            f"{matrix_path} has {len(lines) - 1} score lines but {datasets_path} names {len(names)} datasets"
        )
    matrix: dict[str, dict[str, float]] = {}
    for line_number, (dataset, line) in enumerate(zip(names, lines[1:], strict=True), start=2):
        cells = line.split("\t")
        if len(cells) != len(model_ids):
            raise RepositoryError(
                f"{matrix_path} line {line_number} has {len(cells)} scores for {len(model_ids)} models"
            )
        try:
            matrix[dataset] = {
                model_id: float(cell) if cell.strip() else float("nan")
                for model_id, cell in zip(model_ids, cells, strict=True)
            }
        except ValueError as error:
            raise RepositoryError(f"{matrix_path} line {line_number}: {error}") from error
    return matrix


def _csv_results(frame: pd.DataFrame, csv_path: str | os.PathLike[str]) -> list[tuple[str, str, float]]:
    """``(model_id, dataset, score)`` rows of a results CSV; an empty score is skipped.

    A score that is not a finite number, or a row without a model id or dataset, is an error naming
    the line (the header is line 1), so that nothing of a broken file is stored.
    """
    rows = []
    for index, (model_id, dataset, score) in enumerate(
        zip(frame["model_id"], frame["dataset"], frame["score"], strict=True)
    ):
        line = f"{csv_path} line {index + 2}"
        if pd.isna(score) or (isinstance(score, str) and not score.strip()):
            continue
        if pd.isna(model_id) or pd.isna(dataset) or not str(model_id).strip() or not str(dataset).strip():
            raise RepositoryError(f"{line}: the model_id and dataset must not be empty")
        number = float(pd.to_numeric(score, errors="coerce"))  # NaN for text such as "abc"
        if not math.isfinite(number):
            raise RepositoryError(f"{line}: the score {score!r} is not a finite number")
        rows.append((str(model_id), str(dataset), number))
    return rows


def _read_table_file(path: Path) -> pd.DataFrame:
    """One exported table; a file that is not readable Parquet is a one-line error naming it."""
    import pyarrow

    try:
        return pd.read_parquet(path)
    except (OSError, ValueError, pyarrow.ArrowException) as error:
        reason = " ".join(str(error).split())[:200] or type(error).__name__
        raise RepositoryError(
            f"cannot read {path} as a Parquet table ({reason}); nothing was imported"
        ) from error


def _required_columns(connection: sqlite3.Connection, table: str) -> set[str]:
    """The columns a row of ``table`` must give: primary-key and NOT NULL columns without a default."""
    # PRAGMA table_info rows: (cid, name, type, notnull, default, pk)
    return {
        row[1]
        for row in connection.execute(f"PRAGMA table_info({table})")
        if (row[5] or row[3]) and row[4] is None
    }


def _describe_refused_row(
    connection: sqlite3.Connection, table: str, record: Mapping[str, Any], error: sqlite3.IntegrityError
) -> str:
    """Why SQLite refused an imported row, naming the reference it lacks when a foreign key failed."""
    for reference in connection.execute(f"PRAGMA foreign_key_list({table})"):
        parent, column, parent_column = reference[2], reference[3], reference[4]
        value = record.get(column)
        found = connection.execute(
            f"SELECT 1 FROM {parent} WHERE {parent_column} = ? LIMIT 1", (value,)
        ).fetchone()
        if value is not None and found is None:
            return (
                f"{column} {value!r} is in neither the snapshot's {parent}.parquet nor the repository "
                f"({error})"
            )
    return str(error)


def _where(**equal: Any) -> tuple[str, list[Any]]:
    """A ``WHERE`` clause requiring each given column to equal its value (``None`` values are ignored)."""
    given = {column: value for column, value in equal.items() if value is not None}
    where = f" WHERE {' AND '.join(f'{column} = ?' for column in given)}" if given else ""
    return where, list(given.values())


def _ensure_parents(connection: sqlite3.Connection, model_id: str, dataset: str, source: str) -> None:
    """Insert the model and dataset rows a result references, when they are missing."""
    connection.execute("INSERT OR IGNORE INTO models (model_id, source) VALUES (?, ?)", (model_id, source))
    connection.execute("INSERT OR IGNORE INTO datasets (name, added_at) VALUES (?, ?)", (dataset, utcnow()))


def _encode(value: Any) -> Any:
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, bool):
        return int(value)
    return value


def _decode(row: sqlite3.Row) -> dict[str, Any]:
    record = dict(row)
    for column in JSON_COLUMNS & record.keys():
        if isinstance(record[column], str):
            with contextlib.suppress(ValueError):
                record[column] = json.loads(record[column])
    return record


def _to_sql_values(record: dict[str, Any]) -> dict[str, Any]:
    # Parquet brings numpy scalars and NaN for missing values; SQLite wants Python values and NULL.
    clean = {}
    for key, value in record.items():
        if hasattr(value, "item"):
            value = value.item()
        if isinstance(value, float) and value != value:
            value = None
        clean[key] = value
    return clean


def _upsert(
    connection: sqlite3.Connection, table: str, record: Mapping[str, Any], keys: Sequence[str]
) -> None:
    columns = list(record)
    updates = [column for column in columns if column not in keys]
    action = (
        f"DO UPDATE SET {', '.join(f'{column} = excluded.{column}' for column in updates)}"
        if updates
        else "DO NOTHING"
    )
    connection.execute(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)}) "
        f"ON CONFLICT ({', '.join(keys)}) {action}",
        [_encode(record[column]) for column in columns],
    )


def _upsert_model_if_newer(connection: sqlite3.Connection, record: dict[str, Any]) -> None:
    stored = connection.execute(
        "SELECT crawled_at FROM models WHERE model_id = ?", (record["model_id"],)
    ).fetchone()
    if stored is not None and stored[0] and (record.get("crawled_at") or "") < stored[0]:
        return
    _upsert(connection, "models", record, ("model_id",))


def _table_columns(connection: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}


def _primary_key(connection: sqlite3.Connection, table: str) -> tuple[str, ...]:
    rows = sorted((row[5], row[1]) for row in connection.execute(f"PRAGMA table_info({table})") if row[5])
    return tuple(name for _, name in rows)
