"""Opening a repository file: the connection, its pragmas, migrations, transactions and errors.

Several processes may write to one file at once (benchmark workers do): the file is in WAL mode,
every write is a short ``BEGIN IMMEDIATE`` transaction, and a busy file is waited for rather than
failed on. SQLite errors about the file itself (read-only, damaged, missing) become one-line
:class:`~hfselect.errors.RepositoryError` messages that say what to do.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from hfselect.errors import RepositoryError, RepositoryReadOnlyError
from hfselect.store.schema import MIGRATIONS, SCHEMA_VERSION, tables_at_version

ENV_REPOSITORY = "HFSELECT_REPOSITORY"

# How long a writer waits for another process's transaction before giving up. Benchmark workers
# hold the write lock for milliseconds, so a minute means something is really wrong.
BUSY_TIMEOUT_S = 60.0


def hfselect_cache() -> Path:
    """hfselect's cache folder: ``$XDG_CACHE_HOME/hfselect``, else ``~/.cache/hfselect``."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hfselect"


def default_repository_path() -> Path:
    """Return the repository file used when neither ``--repository`` nor ``HFSELECT_REPOSITORY`` is set."""
    if os.environ.get(ENV_REPOSITORY):
        return Path(os.environ[ENV_REPOSITORY]).expanduser()
    return hfselect_cache() / "repository.sqlite"


def _writable(path: Path) -> bool:
    """Whether this process may write ``path`` and create files beside it (SQLite's -wal and -shm)."""
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK | os.X_OK)


def _connect(path: Path, *, read_only: bool) -> sqlite3.Connection:
    """An SQLite connection to ``path``; read-only (``mode=ro``) when this process cannot write it.

    A WAL file is read through its ``-shm`` index, which SQLite creates beside the file; in a
    folder this process cannot write, and without one there already, the file is opened as
    immutable (it cannot change meanwhile: no writer could create its WAL there either).
    """
    if not read_only:
        return sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    uri = f"file:{urllib.parse.quote(str(path.absolute()))}?mode=ro"
    if not os.access(path.parent, os.W_OK | os.X_OK) and not Path(f"{path}-shm").exists():
        uri += "&immutable=1"
    return sqlite3.connect(
        uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
    )


_Repository = TypeVar("_Repository", bound="RepositoryConnection")


class RepositoryConnection:
    """One open repository file: the plumbing that every part of :class:`ModelRepository` shares.

    Only the store's modules call its private ``_transaction``, ``_query`` and ``_frame``: SQL
    stays inside :mod:`hfselect.store`. See :class:`~hfselect.store.ModelRepository` for the
    arguments.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, create: bool = True) -> None:
        self.path = Path(path).expanduser() if path is not None else default_repository_path()
        self._lock = threading.RLock()
        self._depth = 0  # how deep this thread is in _transaction blocks (the lock serialises threads)
        if not create and not self.path.is_file():
            raise RepositoryError(
                f"there is no repository at {self.path}: check the path, or fill a new one with "
                "`hfselect crawl`, `hfselect bench` or `hfselect repo import`"
            )
        # A file this process cannot write is opened read-only, so reading it needs no write
        # access to the file or its folder (see _connect); writes then fail as read-only.
        self.read_only = self.path.is_file() and not _writable(self.path)
        try:
            if not self.read_only:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._connection = _connect(self.path, read_only=self.read_only)
        except (OSError, sqlite3.Error) as error:
            raise RepositoryError(f"cannot open the model repository at {self.path}: {error}") from error
        self._connection.row_factory = sqlite3.Row
        try:
            self._connection.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            # Identify the file before any pragma or migration writes to it: another application's
            # database must be left exactly as it was.
            self._check_identity(create=create)
            if not self.read_only:
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

    def _check_identity(self, *, create: bool) -> None:
        """Refuse a file that is not an hfselect repository; an empty one only when ``create`` is false.

        Only reads: an empty file or database (no tables, ``user_version`` 0) becomes a repository
        when ``create`` is true, and a file holding other tables, or lacking the tables of the
        schema version it claims, is refused whatever ``create`` says.
        """
        version = int(self._connection.execute("PRAGMA user_version").fetchone()[0])
        tables = {
            row[0]
            for row in self._connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        }
        if version == 0 and not tables:
            if create:
                return
            raise RepositoryError(
                f"{self.path} is empty, not an hfselect repository: fill it with `hfselect crawl`, "
                "`hfselect bench` or `hfselect repo import`, or pass another file with --repository"
            )
        expected = tables_at_version(version if version <= SCHEMA_VERSION else 1)
        if version == 0 or not expected <= tables:
            shown = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
            raise RepositoryError(
                f"{self.path} is not an hfselect repository (an SQLite file with user_version {version} "
                f"and the tables {shown or 'none'}); it was left as it is: pass another file with --repository"
            )

    # -- plumbing -------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection; the instance cannot be used afterwards."""
        with self._lock:
            self._connection.close()

    def __enter__(self: _Repository) -> _Repository:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextlib.contextmanager
    def atomic(self) -> Iterator[None]:
        """Make every write in the block one transaction: all of them are kept, or none.

        For a caller whose several writes mean one thing (a starter's models, datasets and
        results): a failure half way through leaves the repository as it was before the block.
        The block holds the file's write lock throughout, so keep it short.
        """
        with self._transaction():
            yield

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that takes the file's write lock up front.

        ``BEGIN IMMEDIATE`` makes a second writer wait in ``busy_timeout`` instead of failing
        later with "database is locked" when it tries to upgrade a read lock. Inside another
        transaction of this connection (:meth:`atomic`), it joins that one: the outermost block
        commits or rolls back everything.
        """
        with self._lock, self._translated_errors():
            if self._depth:
                self._depth += 1
                try:
                    yield self._connection
                finally:
                    self._depth -= 1
                return
            self._execute_with_retry("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self._connection
            except BaseException:
                # SQLite has already rolled back after some errors (a corrupt page, a full disk).
                if self._connection.in_transaction:
                    self._connection.execute("ROLLBACK")
                raise
            else:
                if not self._connection.in_transaction:  # a failed write inside was caught, and undone
                    raise RepositoryError(
                        f"cannot use the repository {self.path}: a write failed and SQLite undid the "
                        "transaction; nothing of it was kept"
                    )
                self._connection.execute("COMMIT")
            finally:
                self._depth = 0

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
            with self._transaction() as connection:
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

    def _query(self, sql: str, parameters: Sequence[Any] | Mapping[str, Any] = ()) -> list[sqlite3.Row]:
        """Run a read-only SQL query and return its rows."""
        with self._lock, self._translated_errors():
            return self._connection.execute(sql, parameters).fetchall()

    def _frame(self, sql: str, parameters: Sequence[Any] = ()) -> pd.DataFrame:
        """Run a read-only SQL query and return its rows as a DataFrame."""
        with self._lock, self._translated_errors():
            cursor = self._connection.execute(sql, parameters)
            columns = [description[0] for description in cursor.description]
            return pd.DataFrame(cursor.fetchall(), columns=columns)
