"""A damaged, read-only, missing or mistyped repository, and broken files to import: one line, nothing lost.

Each command-line case checks the exit status, the one line printed (no traceback) and that the
repository holds the same rows before and after the failed command.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
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
