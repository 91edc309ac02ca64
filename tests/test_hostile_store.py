"""Files that are not hfselect repositories, and repositories that cannot be written (issue 35).

A read command must leave any file it is pointed at byte for byte as it was: another
application's SQLite database, an empty file, a repository in a folder it cannot write.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from hfselect.errors import RepositoryError, RepositoryReadOnlyError
from hfselect.store import SCHEMA_VERSION, ModelRepository
from tests.bad_input import run_cli, table_rows


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def foreign_database(path: Path, *, user_version: int = 0) -> Path:
    """Another application's SQLite file: a table of its own, rollback journal, its own user_version."""
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    connection.execute("INSERT INTO notes (body) VALUES ('hello')")
    connection.execute(f"PRAGMA user_version = {user_version}")
    connection.commit()
    connection.close()
    return path


def siblings(path: Path) -> list[str]:
    return sorted(entry.name for entry in path.parent.iterdir())


READ_COMMANDS = [["repo", "info"], ["cluster"], ["recall", "some/target"], ["repo", "export", "out"]]


@pytest.mark.parametrize("argv", [*READ_COMMANDS, ["repo", "import-csv", "results.csv"]])
@pytest.mark.parametrize("user_version", [0, SCHEMA_VERSION])
def test_another_applications_database_is_refused_and_left_untouched(
    argv: list[str], user_version: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "results.csv").write_text("model_id,dataset,score\norg/a,d,0.5\n")
    path = foreign_database(tmp_path / "other.db", user_version=user_version)
    before, files = digest(path), siblings(path)
    argv = [str(tmp_path / arg) if arg in ("out", "results.csv") else arg for arg in argv]
    status, lines = run_cli([*argv, "--repository", str(path)], capsys)
    assert status == 1 and len(lines) == 1, lines
    assert f"{path} is not an hfselect repository" in lines[0] and "notes" in lines[0]
    assert digest(path) == before and siblings(path) == files  # no WAL, no -shm, no export folder
    connection = sqlite3.connect(path)
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    connection.close()


@pytest.mark.parametrize("argv", READ_COMMANDS)
def test_a_zero_byte_file_is_not_a_repository_to_read_commands(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "empty.sqlite"
    path.touch()
    argv = [str(tmp_path / arg) if arg == "out" else arg for arg in argv]
    status, lines = run_cli([*argv, "--repository", str(path)], capsys)
    assert status == 1 and len(lines) == 1, lines
    assert f"{path} is empty, not an hfselect repository" in lines[0]
    assert path.stat().st_size == 0 and siblings(path) == ["empty.sqlite"]


def test_a_command_that_creates_a_repository_may_initialise_a_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.sqlite"
    path.touch()
    with ModelRepository(path) as repository:
        repository.record_results([("org/a", "d", 0.5)])
    with ModelRepository(path, create=False) as repository:
        assert repository.schema_version == SCHEMA_VERSION and len(repository.results()) == 1


def test_a_file_without_the_tables_of_its_schema_version_is_not_migrated(tmp_path: Path) -> None:
    path = tmp_path / "half.sqlite"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE models (model_id TEXT PRIMARY KEY)")  # but no results, curves, ...
    connection.execute("PRAGMA user_version = 1")
    connection.close()
    before = digest(path)
    with pytest.raises(RepositoryError, match="is not an hfselect repository"):
        ModelRepository(path)
    assert digest(path) == before


# -- a repository this process cannot write --------------------------------------------------


def test_a_file_that_cannot_be_written_is_opened_read_only_without_files_beside_it(
    filled: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As root every file is writable: make os.access say what it says to an ordinary user for a
    # read-only file in a read-only folder, then check SQLite really got a read-only connection.
    connection = sqlite3.connect(filled)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    before, rows = digest(filled), table_rows(filled)
    monkeypatch.setattr(os, "access", lambda path, mode, **_: not mode & os.W_OK)
    with ModelRepository(filled, create=False) as repository:
        assert repository.read_only
        assert repository.performance_matrix().shape == (3, 3)
        with pytest.raises(RepositoryReadOnlyError, match="is read-only"):
            repository.record_results([("org/new", "data-0", 0.5)])
        assert siblings(filled) == ["repo.sqlite"]  # opened immutable: no -wal or -shm needed
    assert digest(filled) == before and table_rows(filled) == rows


def read_only_folder_runner(folder: Path) -> list[str]:
    """Make ``folder`` and its files read-only for a child process; return the command prefix.

    As root, file modes do not stop writes: the child then runs in a user namespace (``unshare
    -r``) where the folder belongs to an unmapped user. Skips where neither works.
    """
    prefix: list[str] = []
    if os.geteuid() == 0:
        unshare = shutil.which("unshare")
        if unshare is None or subprocess.run([unshare, "-r", "true"], capture_output=True).returncode:
            pytest.skip("running as root without user namespaces: cannot make a folder read-only")
        for entry in [folder, *folder.iterdir()]:
            os.chown(entry, 65534, 65534)
        prefix = [unshare, "-r"]
    for entry in folder.iterdir():
        entry.chmod(0o444)
    folder.chmod(0o555)
    return prefix


def test_recall_on_a_read_only_repository_in_a_read_only_folder_prints_the_recall(
    tiny_assets: Path, tiny_benchmarks: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    path = folder / "repo.sqlite"
    shutil.copy(tiny_benchmarks, path)
    before = digest(path)
    prefix = read_only_folder_runner(folder)
    target = str(tiny_assets / "datasets" / "topic")
    try:
        result = subprocess.run(
            [*prefix, sys.executable, "-m", "hfselect", "recall", target, "--top-k", "2",
             "--sample-size", "64", "--quiet", "--repository", str(path)],
            capture_output=True, text=True, timeout=300, env=os.environ.copy(),
        )  # fmt: skip
    finally:
        folder.chmod(0o755)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "2 of 3 models recalled" in result.stdout
    output = result.stdout + result.stderr
    assert output.count("read-only") == 1 and "not cached" in output, output
    assert digest(path) == before and siblings(path) == ["repo.sqlite"]
