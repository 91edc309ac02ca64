"""Moving rows between repositories: whole tables, Parquet export and import, copies for held-out targets.

Export writes one Parquet file per table in :data:`~hfselect.store.schema.TABLES` order (parents
before children); import merges such a folder in one transaction, so a broken snapshot imports
nothing. SQLite must not be shared over a network file system: workers on different machines each
write their own file and :meth:`TransferMixin.import_parquet` merges them.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from hfselect.errors import RepositoryError
from hfselect.store.connection import RepositoryConnection
from hfselect.store.local_paths import public_table
from hfselect.store.schema import TABLES
from hfselect.store.sql import primary_key, table_columns, upsert, upsert_model_if_newer
from hfselect.store.table_checks import Column, check_column_types, checked_row, table_layout


class TransferMixin(RepositoryConnection):
    """The whole-table methods of :class:`~hfselect.store.ModelRepository`: counts, export, import, copies."""

    def counts(self) -> dict[str, int]:
        """Number of rows in every table."""
        return {table: int(self._query(f"SELECT COUNT(*) FROM {table}")[0][0]) for table in TABLES}

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
        Nothing is left behind when it fails: no new folder, and a folder already there as it was.
        """
        import pyarrow

        target = Path(directory)
        if target.exists() and not target.is_dir():
            raise RepositoryError(f"cannot export the repository to {target}: it is a file, not a folder")
        # Every table is written into a hidden folder first (inside the target when it exists, else
        # beside it), and moved in only when all of them are written: a failed export leaves no
        # new folder, and a folder already there as it was.
        created = [folder for folder in (target, *target.parents) if not folder.exists()]
        staging: Path | None = None
        written = {}
        try:
            home = target if target.is_dir() else target.parent
            home.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=".hfselect-export-", suffix=".partial", dir=home))
            for name in TABLES:
                frame = self.table(name) if include_local_paths else public_table(name, self.table(name))
                frame.to_parquet(staging / f"{name}.parquet", index=False)
            target.mkdir(exist_ok=True)
            for name in TABLES:
                (staging / f"{name}.parquet").replace(target / f"{name}.parquet")
                written[name] = target / f"{name}.parquet"
        except BaseException as error:
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)
            for folder in created:  # only folders this call made, innermost first
                shutil.rmtree(folder, ignore_errors=True)
            if isinstance(error, (OSError, ValueError, TypeError, pyarrow.ArrowException)):
                reason = " ".join(str(error).split())[:200] or type(error).__name__
                raise RepositoryError(
                    f"cannot export the repository to {target}: {reason}; nothing was written"
                ) from error
            raise
        shutil.rmtree(staging, ignore_errors=True)
        return written

    def import_parquet(self, directory: str | os.PathLike[str]) -> dict[str, int]:
        """Merge the Parquet tables of ``directory`` (the ``export_parquet`` layout) into this store.

        Rows are matched by primary key; an imported row replaces the stored one with the same key
        (for ``models``, only when it was crawled at least as recently). Tables absent from the
        folder are left alone. Returns the number of rows read per table.

        The snapshot is imported in one transaction, every file read and checked before it starts
        (:mod:`hfselect.store.table_checks`): when a file cannot be read, lacks a required column,
        has a column of the wrong type, a value out of range, or a row the store refuses (e.g. a
        result whose model is in neither the snapshot nor the store), nothing of it is imported and
        the error names the file, row and column.
        """
        source = Path(directory)
        if not source.is_dir():
            raise RepositoryError(f"{source} is not a folder of exported repository tables")
        found = [name for name in TABLES if (source / f"{name}.parquet").exists()]
        if not found:
            raise RepositoryError(f"{source} holds none of the tables {', '.join(TABLES)} as .parquet files")
        # Everything is read and checked before the transaction starts: a snapshot with one bad
        # cell writes nothing, and the check names the file, row and column.
        with self._lock:
            layouts = {name: table_layout(self._connection, name) for name in found}
            required = {name: _required_columns(self._connection, name) for name in found}
        rows = {
            name: _checked_rows(source / f"{name}.parquet", name, layouts[name], required[name])
            for name in found
        }
        imported: dict[str, int] = {}
        with self._transaction() as connection:
            for name, records in rows.items():
                path = source / f"{name}.parquet"
                keys = primary_key(connection, name)
                for row, record in enumerate(records, start=1):
                    try:
                        if name == "models":
                            upsert_model_if_newer(connection, record)
                        else:
                            upsert(connection, name, record, keys)
                    except sqlite3.IntegrityError as error:
                        raise RepositoryError(
                            f"{path} row {row}: {_describe_refused_row(connection, name, record, error)}; "
                            "nothing was imported"
                        ) from error
                imported[name] = len(records)
        return imported

    def copy_benchmarks(self, source: RepositoryConnection, *, exclude_datasets: Sequence[str] = ()) -> int:
        """Copy ``source``'s models, datasets, benchmark results and curves into this store.

        The rows of ``exclude_datasets`` are left out (a held-out target must not be a benchmark);
        rows already here with the same key are replaced. Returns the number of results copied.
        """
        excluded = list(exclude_datasets)
        marks = ", ".join("?" for _ in excluded)
        with self._lock:
            self._connection.execute("ATTACH DATABASE ? AS source", (str(source.path),))
            try:
                with self._transaction() as connection:
                    for table, column in (
                        ("models", None),
                        ("datasets", "name"),
                        ("results", "dataset"),
                        ("curves", "dataset"),
                    ):
                        columns = table_columns(connection, table) & {
                            row[1] for row in connection.execute(f"PRAGMA source.table_info({table})")
                        }
                        names = ", ".join(sorted(columns))
                        keys = primary_key(connection, table)
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

    def copy_without_dataset(
        self,
        destination: str | os.PathLike[str],
        dataset: str,
        *,
        locations: Mapping[str, str | os.PathLike[str]] | None = None,
    ) -> Path:
        """Copy this repository to ``destination`` without ``dataset``'s benchmark results and curves.

        For evaluating selection on a held-out target, which must be unseen in the copy; every
        other row (models, proxy scores, studies, the dataset's own row) is copied as it is.
        ``locations`` maps model ids to the folder each is loaded from in the copy (where a zoo
        lives now, when the repository was benchmarked from a folder elsewhere); ids that are not
        stored are ignored. A file already at ``destination`` is replaced. Returns the copy's path.
        """
        target = Path(destination).expanduser()
        if target.exists() and target.resolve() == self.path.resolve():
            raise RepositoryError(f"cannot copy the repository {self.path} onto itself")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            copy = sqlite3.connect(target)
        except (OSError, sqlite3.Error) as error:
            raise RepositoryError(f"cannot copy the repository {self.path} to {target}: {error}") from error
        try:
            # SQLite's online backup: a consistent snapshot, WAL contents included, while other
            # processes keep writing.
            with self._lock:
                self._connection.backup(copy)
        except sqlite3.Error as error:
            raise RepositoryError(f"cannot copy the repository {self.path} to {target}: {error}") from error
        finally:
            copy.close()
        with RepositoryConnection(target) as held_out, held_out._transaction() as connection:
            for table in ("curves", "results"):
                connection.execute(f"DELETE FROM {table} WHERE dataset = ?", (dataset,))
            connection.executemany(
                "UPDATE models SET location = ? WHERE model_id = ?",
                [(str(folder), model_id) for model_id, folder in (locations or {}).items()],
            )
        return target


def _read_table_file(path: Path) -> Any:
    """One exported table as a ``pyarrow.Table``; a file that is not readable Parquet is a one-line error naming it."""
    import pyarrow
    import pyarrow.parquet

    try:
        return pyarrow.parquet.read_table(path)
    except (OSError, ValueError, pyarrow.ArrowException) as error:
        reason = " ".join(str(error).split())[:200] or type(error).__name__
        raise RepositoryError(
            f"cannot read {path} as a Parquet table ({reason}); nothing was imported"
        ) from error


def _checked_rows(
    path: Path, table: str, layout: Mapping[str, Column], required: set[str]
) -> list[dict[str, Any]]:
    """The rows of one table file, every column's type and every value checked (see table_checks)."""
    data = _read_table_file(path)
    missing = sorted(required - set(data.column_names))
    if missing:
        raise RepositoryError(
            f"{path} lacks the column(s) {', '.join(missing)}, which the {table} table "
            "requires; nothing was imported"
        )
    check_column_types(path, table, data.schema, layout)
    data = data.select([name for name in data.column_names if name in layout])
    return [
        checked_row(path, table, row, record, layout) for row, record in enumerate(data.to_pylist(), start=1)
    ]


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
