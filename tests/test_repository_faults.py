"""A damaged, read-only, missing or mistyped repository, and broken files to import: one line, nothing lost.

Each command-line case checks the exit status, the one line printed (no traceback) and that the
repository holds the same rows before and after the failed command.
"""

from __future__ import annotations

import math
import os
import shutil
import sqlite3
import subprocess
import sys
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hfselect.errors import RepositoryError
from hfselect.store import ModelRepository
from tests.bad_input import run_cli, run_failing, table_rows

# -- the repository file ---------------------------------------------------------------------


def corrupt_page(path: Path, name: str) -> None:
    """Overwrite the root page of table or index ``name`` (a page in the middle of the file)."""
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page_size = connection.execute("PRAGMA page_size").fetchone()[0]
    root = connection.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (name,)).fetchone()[0]
    connection.close()
    with path.open("r+b") as file:
        file.seek((root - 1) * page_size)
        file.write(b"\xff" * page_size)


def test_repo_info_on_a_repository_with_a_corrupt_page_is_one_line(
    filled: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corrupt_page(filled, "results_dataset")
    status, lines = run_cli(["repo", "info", "--repository", str(filled)], capsys)
    assert status == 1 and len(lines) == 1
    assert lines[0].startswith(f"hfselect: error: the repository {filled} is damaged")


@pytest.mark.parametrize(
    "argv", [["repo", "info"], ["cluster"], ["recall", "some/target"], ["repo", "export", "x"]]
)
def test_a_mistyped_repository_path_is_not_created(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    typo = tmp_path / "repositroy.sqlite"
    status, lines = run_cli([*argv, "--repository", str(typo)], capsys)
    assert status == 1 and len(lines) == 1
    assert f"there is no repository at {typo}" in lines[0] and "hfselect crawl" in lines[0]
    assert not typo.exists()


# -- read-only repository ---------------------------------------------------------------------


def read_only_runner(path: Path) -> list[str]:
    """Make ``path`` read-only for a child process; return the command prefix that runs it so.

    As root, file modes do not stop writes: the child then runs in a user namespace
    (``unshare -r``) where the file belongs to an unmapped user. Skips where neither works.
    """
    if os.geteuid() != 0:
        path.chmod(0o444)
        return []
    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "-r", "true"], capture_output=True).returncode != 0:
        pytest.skip("running as root without user namespaces: cannot make a file read-only")
    os.chown(path, 65534, 65534)
    path.chmod(0o444)
    return [unshare, "-r"]


def run_read_only(path: Path, argv: list[str]) -> subprocess.CompletedProcess:
    prefix = read_only_runner(path)
    return subprocess.run(
        [*prefix, sys.executable, "-m", "hfselect", *argv, "--repository", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ.copy(),
    )


def test_import_csv_into_a_read_only_repository_says_so(filled: Path, tmp_path: Path) -> None:
    csv = tmp_path / "results.csv"
    csv.write_text("model_id,dataset,score\nnew/a,data-0,0.5\n")
    before = table_rows(filled)
    result = run_read_only(filled, ["repo", "import-csv", str(csv)])
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"the repository {filled} is read-only" in lines[0], lines
    assert table_rows(filled) == before


def test_recall_on_a_read_only_repository_prints_the_recall_and_says_so_once(
    tiny_assets: Path, tiny_benchmarks: Path, tmp_path: Path
) -> None:
    path = tmp_path / "repo.sqlite"
    shutil.copy(tiny_benchmarks, path)
    before = table_rows(path)
    target = str(tiny_assets / "datasets" / "topic")
    result = run_read_only(path, ["recall", target, "--top-k", "2", "--sample-size", "64", "--quiet"])
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "2 of 3 models recalled" in result.stdout
    output = result.stdout + result.stderr
    assert output.count("read-only") == 1, output
    assert "not cached" in output
    assert table_rows(path) == before


# -- importing results and snapshots -------------------------------------------------------


def test_import_csv_with_a_non_numeric_score_names_the_file_and_line(
    filled: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = tmp_path / "results.csv"
    csv.write_text("model_id,dataset,score\nnew/a,data-0,0.5\nnew/b,data-0,abc\n")
    status, line = run_failing(["repo", "import-csv", str(csv)], capsys, filled)
    assert status == 1
    assert f"{csv} line 3: the score 'abc' is not a finite number" in line


def test_import_csv_with_an_empty_model_id_names_the_line(filled: Path, tmp_path: Path) -> None:
    csv = tmp_path / "results.csv"
    csv.write_text("model_id,dataset,score\n,data-0,0.5\n")
    with ModelRepository(filled) as repository, pytest.raises(RepositoryError, match="line 2"):
        repository.import_csv(csv)


@pytest.fixture
def snapshot(filled: Path, tmp_path: Path) -> Path:
    """An export of a repository holding one model and one result that ``filled`` lacks."""
    source = tmp_path / "source.sqlite"
    with ModelRepository(source) as repository:
        repository.record_results([("new/model", "new-data", 0.7)])
        repository.export_parquet(tmp_path / "snapshot")
    return tmp_path / "snapshot"


def break_results(snapshot: Path, how: str) -> None:
    path = snapshot / "results.parquet"
    if how == "garbage":
        path.write_bytes(b"this is not a parquet file at all")
    elif how == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif how == "missing foreign key":
        frame = pd.read_parquet(path)
        frame.loc[len(frame)] = {**frame.iloc[0].to_dict(), "model_id": "ghost/model"}
        frame.to_parquet(path, index=False)
    elif how == "missing column":
        pd.read_parquet(path).drop(columns=["protocol"]).to_parquet(path, index=False)


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("garbage", "as a Parquet table"),
        ("truncated", "as a Parquet table"),
        ("missing foreign key", "row 2: model_id 'ghost/model' is in neither the snapshot's models.parquet"),
        ("missing column", "lacks the column(s) protocol, which the results table requires"),
    ],
)
def test_a_broken_snapshot_names_the_file_and_imports_nothing(
    how: str, message: str, filled: Path, snapshot: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    break_results(snapshot, how)
    status, line = run_failing(["repo", "import", str(snapshot)], capsys, filled)
    assert status == 1
    assert str(snapshot / "results.parquet") in line and message in line
    assert "nothing was imported" in line
    # models.parquet was fine, but nothing of a failing snapshot is kept: the new model is absent.
    with ModelRepository(filled) as repository:
        assert repository.get_model("new/model") is None


def test_a_good_snapshot_still_imports(
    filled: Path, snapshot: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _ = run_cli(["repo", "import", str(snapshot), "--repository", str(filled)], capsys)
    assert status == 0
    with ModelRepository(filled) as repository:
        assert repository.get_model("new/model") is not None


def test_a_column_with_a_default_may_be_absent_from_a_snapshot(filled: Path, tmp_path: Path) -> None:
    folder = tmp_path / "old-snapshot"
    folder.mkdir()
    # proxy_scores.model_sha (part of the key, default '') came after some exports were written.
    pd.DataFrame(
        {"model_id": ["org/a"], "dataset": ["t"], "dataset_fingerprint": ["fp"], "proxy": ["logme"],
         "sample_size": [100], "seed": [0], "score": [0.5]}
    ).to_parquet(folder / "proxy_scores.parquet", index=False)  # fmt: skip
    with ModelRepository(filled) as repository:
        assert repository.import_parquet(folder) == {"proxy_scores": 1}
        assert repository.table("proxy_scores")["model_sha"].tolist() == [""]


# -- a snapshot whose cells the repository cannot hold (issue 35) -------------------------------


def replace_column(path: Path, column: str, values: pa.Array) -> None:
    """Put ``values`` (one per row) in ``column`` of a Parquet file, whatever their type."""
    data = pq.read_table(path)
    pq.write_table(data.set_column(data.schema.get_field_index(column), column, values), path)


@pytest.mark.parametrize(
    ("table", "column", "values", "message"),
    [
        ("results", "score", pa.array(["high"]), "column score holds string values, but the results table stores numbers"),
        ("results", "epochs", pa.array(["five"]), "column epochs holds string values, but the results table stores integers"),
        ("results", "score", pa.array([math.inf]), "row 1 column score: inf is not a finite number"),
        ("results", "score", pa.array([-math.inf]), "row 1 column score: -inf is not a finite number"),
        ("models", "model_id", pa.array([None], pa.string()), "row 1 column model_id: a value is required"),
        ("models", "model_id", pa.array([" "]), "row 1 column model_id: an empty name"),
        ("results", "score", pa.array([[0.1, 0.2]]), "column score holds list<"),
        ("results", "learning_rate", pa.array([{"a": 1}]), "column learning_rate holds struct<"),
        ("results", "epochs", pa.array([datetime(2026, 1, 1)]), "column epochs holds timestamp["),
        ("results", "score", pa.array([Decimal("0.5")]), "column score holds decimal128("),
        ("results", "model_id", pa.array([5]), "column model_id holds int64 values, but the results table stores text"),
        ("results", "epochs", pa.array([0]), "row 1 column epochs: 0 must be >= 1"),
        ("results", "epochs", pa.array([2.5]), "row 1 column epochs: 2.5 is not a whole number"),
        ("results", "learning_rate", pa.array([-1e-3]), "row 1 column learning_rate: -0.001 must be > 0"),
        ("results", "status", pa.array(["weird"]), "row 1 column status: 'weird' is not one of 'ok', 'failed'"),
        ("results", "score", pa.array([None], pa.float64()), "row 1 column score: a result with status 'ok' needs a score"),
    ],
)  # fmt: skip
def test_a_snapshot_cell_the_repository_cannot_hold_imports_nothing(
    table: str,
    column: str,
    values: pa.Array,
    message: str,
    filled: Path,
    snapshot: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    replace_column(snapshot / f"{table}.parquet", column, values)
    status, line = run_failing(["repo", "import", str(snapshot)], capsys, filled)
    assert status == 1
    assert str(snapshot / f"{table}.parquet") in line and message in line and "nothing was imported" in line
    with ModelRepository(filled) as repository:
        assert repository.get_model("new/model") is None
    # Whatever was there before still clusters and exports.
    assert run_cli(["cluster", "--k-largest", "1", "--repository", str(filled)], capsys)[0] == 0
    assert (
        run_cli(["repo", "export", str(snapshot.parent / "out"), "--repository", str(filled)], capsys)[0] == 0
    )


def test_a_repository_poisoned_before_imports_were_checked_still_clusters_and_exports_nothing_partial(
    filled: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    connection = sqlite3.connect(filled)
    connection.execute("UPDATE results SET score = 'high' WHERE model_id = 'org/a' AND dataset = 'data-0'")
    connection.execute("UPDATE results SET score = 9e999 WHERE model_id = 'org/b' AND dataset = 'data-0'")
    connection.commit()
    connection.close()
    assert run_cli(["cluster", "--k-largest", "1", "--repository", str(filled)], capsys)[0] == 0
    assert "ignoring 2 result(s) whose score is not a finite number (e.g. org/a on data-0" in caplog.text
    # A table that cannot be written as Parquet: one line, and no folder, not even a partial one.
    out = tmp_path / "new" / "export"
    status, line = run_failing(["repo", "export", str(out)], capsys, filled)
    assert status == 1 and f"cannot export the repository to {out}" in line and "nothing was written" in line
    assert not (tmp_path / "new").exists()
    # An export folder already there keeps what it held, and no staging folder is left in it.
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "results.parquet").write_bytes(b"an older export")
    run_failing(["repo", "export", str(kept)], capsys, filled)
    assert [entry.name for entry in kept.iterdir()] == ["results.parquet"]
    assert (kept / "results.parquet").read_bytes() == b"an older export"


# -- import-matrix and import-csv (issue 35) -------------------------------------------------


def test_import_matrix_of_a_latin1_file_is_one_line(
    filled: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    matrix, names = tmp_path / "matrix.tsv", tmp_path / "names.txt"
    matrix.write_bytes("org--a\torg--b\n0.5\t0.6\n# café\n".encode("latin-1"))
    names.write_text("data-0\n")
    status, line = run_failing(
        ["repo", "import-matrix", str(matrix), "--datasets", str(names)], capsys, filled
    )
    assert status == 1
    assert f"{matrix} is not UTF-8 text (line 3 holds the byte 0xe9" in line and "save it as UTF-8" in line


@pytest.mark.parametrize("cell", ["inf", "-inf", "Infinity"])
def test_import_matrix_refuses_an_infinite_cell(
    cell: str, filled: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    matrix, names = tmp_path / "matrix.tsv", tmp_path / "names.txt"
    matrix.write_text(f"org--a\torg--new\n0.5\t{cell}\n")
    names.write_text("data-0\n")
    status, line = run_failing(
        ["repo", "import-matrix", str(matrix), "--datasets", str(names)], capsys, filled
    )
    assert status == 1
    assert f"{matrix} line 2 column 2 (org/new on data-0): the score '{cell}' is not a finite number" in line


@pytest.mark.parametrize("metric", ["", " ", " accuracy"])
@pytest.mark.parametrize("command", ["import-csv", "import-matrix"])
def test_an_empty_metric_name_is_a_usage_error(
    command: str, metric: str, filled: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "r.csv").write_text("model_id,dataset,score\norg/new,data-0,0.5\n")
    (tmp_path / "m.tsv").write_text("org--new\n0.5\n")
    (tmp_path / "names.txt").write_text("data-0\n")
    files = (
        [str(tmp_path / "r.csv")]
        if command == "import-csv"
        else [str(tmp_path / "m.tsv"), "--datasets", str(tmp_path / "names.txt")]
    )
    status, line = run_failing(["repo", command, *files, "--metric", metric], capsys, filled)
    assert status == 2 and f"error: argument --metric: expected a metric name, not {metric!r}" in line
    with (
        ModelRepository(filled) as repository,
        pytest.raises(ValueError, match="metric must be a non-empty name"),
    ):
        repository.import_csv(tmp_path / "r.csv", metric=metric)
