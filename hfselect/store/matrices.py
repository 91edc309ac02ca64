"""Reading results files: the paper's performance-matrix layout and long-form CSVs.

Pure parsing: :meth:`~hfselect.store.ModelRepository.import_matrix` and
:meth:`~hfselect.store.ModelRepository.import_csv` store what these functions read.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pandas as pd

from hfselect.errors import RepositoryError


def parse_matrix(
    matrix_path: str | os.PathLike[str], datasets_path: str | os.PathLike[str]
) -> dict[str, dict[str, float]]:
    """Read a paper-layout performance matrix into ``{dataset: {model_id: score}}``."""
    lines = [line.rstrip("\n") for line in _read_text(matrix_path).splitlines() if line.strip()]
    names = [line.strip() for line in _read_text(datasets_path).splitlines() if line.strip()]
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
        # An empty (or nan) cell is a missing score; an infinite one is no score at all.
        for column, (model_id, score) in enumerate(matrix[dataset].items(), start=1):
            if math.isinf(score):
                raise RepositoryError(
                    f"{matrix_path} line {line_number} column {column} ({model_id} on {dataset}): "
                    f"the score {cells[column - 1].strip()!r} is not a finite number"
                )
    return matrix


def _read_text(path: str | os.PathLike[str]) -> str:
    """A matrix or dataset-names file as text: UTF-8 (a byte-order mark allowed), else one line saying so."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise RepositoryError(f"cannot read the matrix: {error}") from error
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise RepositoryError(
            f"{path} is not UTF-8 text (line {line} holds the byte 0x{data[error.start]:02x}, as "
            "Latin-1 or Windows-1252 text would): save it as UTF-8 and import it again"
        ) from None


def csv_results(frame: pd.DataFrame, csv_path: str | os.PathLike[str]) -> list[tuple[str, str, float]]:
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
