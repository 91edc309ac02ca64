"""Checking an imported table, column by column and row by row, before anything of it is written.

A snapshot (``hfselect repo import``, ``repo pull``, an ``hf://`` mirror) comes from elsewhere, and
SQLite would store whatever it is given: a text score, ``epochs='five'``, an infinite score or a
model without an id all fit in its columns, and then break clustering, recall and export long after
the import. So every column of a table file is checked against what its table stores (text,
integers, finite numbers), and every value against its column's range, and the first problem is
one line naming the file, the row and the column.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hfselect.errors import RepositoryError

# The smallest value of the columns that have one. Protocol numbers match what bench accepts
# (hfselect.validation): a snapshot must not hold a result that bench would have refused to make.
MINIMUM: Mapping[tuple[str, str], float] = {
    **{("results", column): 1 for column in ("epochs", "batch_size", "train_samples", "eval_samples")},
    ("results", "max_length"): 1,
    ("results", "seed"): 0,
    ("results", "duration_s"): 0,
    ("curves", "epoch"): 0,
    **{
        ("models", column): 0
        for column in ("num_parameters", "num_labels", "hidden_size", "downloads", "likes")
    },
    **{("datasets", column): 0 for column in ("num_labels", "train_size", "validation_size", "test_size")},
    ("proxy_scores", "sample_size"): 1,
    ("proxy_scores", "seed"): 0,
    ("proxy_scores", "seconds"): 0,
    ("studies", "wall_time_s"): 0,
    ("study_trials", "epochs_trained"): 0,
    ("study_trials", "wall_time_s"): 0,
    ("study_curves", "epoch"): 0,
}
# Columns that must be greater than their minimum, not equal to it.
POSITIVE: frozenset[tuple[str, str]] = frozenset({("results", "learning_rate")})
CHOICES: Mapping[tuple[str, str], tuple[Any, ...]] = {
    ("results", "status"): ("ok", "failed"),
    ("models", "has_safetensors"): (0, 1),
}
# INTEGER columns that hold fractions too (a run stopped mid-epoch has trained 1.5 epochs).
FRACTIONAL: frozenset[tuple[str, str]] = frozenset({("study_trials", "epochs_trained")})


@dataclass(frozen=True)
class Column:
    """What a table stores in one column: ``text``, ``integer`` or ``real``, and whether NULL is refused."""

    name: str
    kind: str
    not_null: bool
    key: bool


def table_layout(connection: sqlite3.Connection, table: str) -> dict[str, Column]:
    """The columns of ``table`` as the repository declares them."""
    # PRAGMA table_info rows: (cid, name, type, notnull, default, pk)
    return {
        row[1]: Column(row[1], _kind(row[2]), bool(row[3] or row[5]), bool(row[5]))
        for row in connection.execute(f"PRAGMA table_info({table})")
    }


def _kind(declared: str) -> str:
    declared = declared.upper()
    return "integer" if "INT" in declared else "real" if "REAL" in declared else "text"


def check_column_types(path: Path, table: str, schema: Any, layout: Mapping[str, Column]) -> None:
    """Refuse a column whose Parquet type cannot hold what ``table`` stores there (a list, a struct, ...).

    ``schema`` is the file's ``pyarrow.Schema``; columns the table does not have are ignored.
    """
    import pyarrow.types as types

    for field in schema:
        column = layout.get(field.name)
        if column is None:
            continue
        kind = field.type.value_type if types.is_dictionary(field.type) else field.type
        text = types.is_string(kind) or types.is_large_string(kind) or _is_string_view(kind)
        number = types.is_integer(kind) or types.is_floating(kind)
        accepted = types.is_null(kind) or (
            text if column.kind == "text" else number or (column.kind == "integer" and types.is_boolean(kind))
        )
        if not accepted:
            stored = {"text": "text", "integer": "integers", "real": "numbers"}[column.kind]
            raise RepositoryError(
                f"{path}: the column {field.name} holds {field.type} values, but the {table} table "
                f"stores {stored} there; nothing was imported"
            )


def _is_string_view(kind: Any) -> bool:
    import pyarrow.types as types

    check = getattr(types, "is_string_view", None)  # pyarrow >= 16
    return bool(check and check(kind))


def checked_row(
    path: Path, table: str, row: int, record: Mapping[str, Any], layout: Mapping[str, Column]
) -> dict[str, Any]:
    """``record`` (one row of the file, Python values) as the table stores it; refuse a bad value.

    A NaN is a missing value. A value missing where the table requires one, a number that is not
    finite or is out of its column's range, a fractional count, an empty key or an unknown status
    is a :class:`~hfselect.errors.RepositoryError` naming the file, row and column.
    """
    clean: dict[str, Any] = {}
    for name, value in record.items():
        column = layout[name]

        def refuse(problem: str, name: str = name) -> RepositoryError:
            return RepositoryError(f"{path} row {row} column {name}: {problem}; nothing was imported")

        if isinstance(value, float) and math.isnan(value):
            value = None
        if value is None:
            if column.not_null:
                raise refuse(f"a value is required, the {table} table refuses an empty one")
        elif column.kind == "text":
            if column.key and not value.strip():
                raise refuse("an empty name, which cannot identify a row")
        else:
            value = _number(table, column, value, refuse)
        choices = CHOICES.get((table, name))
        if value is not None and choices is not None and value not in choices:
            raise refuse(f"{value!r} is not one of {', '.join(map(repr, choices))}")
        clean[name] = value
    if table == "results" and clean.get("status", "ok") == "ok" and clean.get("score") is None:
        raise RepositoryError(
            f"{path} row {row} column score: a result with status 'ok' needs a score; nothing was imported"
        )
    return clean


def _number(table: str, column: Column, value: Any, refuse: Any) -> float | int:
    """A numeric cell, checked: finite, in range, and whole where the column counts something."""
    number = int(value) if isinstance(value, bool) else value
    if not math.isfinite(number):
        raise refuse(f"{value!r} is not a finite number")
    if column.kind == "integer" and (table, column.name) not in FRACTIONAL:
        if number != int(number):
            raise refuse(f"{value!r} is not a whole number")
        number = int(number)
        if not -(2**63) <= number < 2**63:  # what an SQLite integer holds
            raise refuse(f"{value!r} is too large")
    minimum = MINIMUM.get((table, column.name))
    if (table, column.name) in POSITIVE and number <= 0:
        raise refuse(f"{value!r} must be > 0")
    if minimum is not None and number < minimum:
        raise refuse(f"{value!r} must be >= {minimum:g}")
    return number
