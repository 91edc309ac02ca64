"""Small SQL helpers shared by the store's modules (internal to :mod:`hfselect.store`).

Rows go in through :func:`upsert` (JSON-valued fields encoded) and come out through :func:`decode`.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from hfselect.store.schema import JSON_COLUMNS


def utcnow() -> str:
    """Current UTC time as an ISO-8601 string, the timestamp format of every table."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def where_equal(**equal: Any) -> tuple[str, list[Any]]:
    """A ``WHERE`` clause requiring each given column to equal its value (``None`` values are ignored)."""
    given = {column: value for column, value in equal.items() if value is not None}
    where = f" WHERE {' AND '.join(f'{column} = ?' for column in given)}" if given else ""
    return where, list(given.values())


def ensure_parents(connection: sqlite3.Connection, model_id: str, dataset: str, source: str) -> None:
    """Insert the model and dataset rows a result references, when they are missing."""
    connection.execute("INSERT OR IGNORE INTO models (model_id, source) VALUES (?, ?)", (model_id, source))
    connection.execute("INSERT OR IGNORE INTO datasets (name, added_at) VALUES (?, ?)", (dataset, utcnow()))


def encode(value: Any) -> Any:
    """A Python value as SQLite stores it: containers as JSON text, booleans as 0/1."""
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, bool):
        return int(value)
    return value


def decode(row: sqlite3.Row) -> dict[str, Any]:
    """A row as a dict, its JSON columns decoded (a column that is not valid JSON stays text)."""
    record = dict(row)
    for column in JSON_COLUMNS & record.keys():
        if isinstance(record[column], str):
            with contextlib.suppress(ValueError):
                record[column] = json.loads(record[column])
    return record


def upsert(
    connection: sqlite3.Connection, table: str, record: Mapping[str, Any], keys: Sequence[str]
) -> None:
    """Insert ``record`` into ``table``, or update the row with the same ``keys`` (JSON fields encoded)."""
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
        [encode(record[column]) for column in columns],
    )


def upsert_model_if_newer(connection: sqlite3.Connection, record: dict[str, Any]) -> None:
    """Upsert a model row unless the stored one was crawled more recently."""
    stored = connection.execute(
        "SELECT crawled_at FROM models WHERE model_id = ?", (record["model_id"],)
    ).fetchone()
    if stored is not None and stored[0] and (record.get("crawled_at") or "") < stored[0]:
        return
    upsert(connection, "models", record, ("model_id",))


def table_columns(connection: sqlite3.Connection, table: str) -> set[str]:
    """The column names of ``table``."""
    return {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}


def primary_key(connection: sqlite3.Connection, table: str) -> tuple[str, ...]:
    """The primary-key columns of ``table``, in key order."""
    rows = sorted((row[5], row[1]) for row in connection.execute(f"PRAGMA table_info({table})") if row[5])
    return tuple(name for _, name in rows)
