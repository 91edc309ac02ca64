"""Helpers for the bad-input tests: run a command, and check that it left the repository as it was.

The rule those tests check (issue 15): bad input gets one clear line and a non-zero exit status,
never a traceback, and loses nothing already written.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from hfselect import cli
from hfselect.store import TABLES


def table_rows(path: Path) -> dict[str, list[tuple]]:
    """Every row of every table, sorted: what "the repository is unchanged" compares."""
    connection = sqlite3.connect(path)
    try:
        return {
            table: sorted(map(tuple, connection.execute(f"SELECT * FROM {table}")), key=repr)
            for table in TABLES
        }
    finally:
        connection.close()


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    """``hfselect ARGV`` in this process: its exit status and its stderr lines."""
    try:
        status = cli.main(argv)
    except SystemExit as exit_:  # argparse's usage errors
        status = exit_.code
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return status, err.strip().splitlines()


def run_failing(argv: list[str], capsys: pytest.CaptureFixture[str], repository: Path) -> tuple[int, str]:
    """Run a command that must fail without touching ``repository``; return its status and error line."""
    before = table_rows(repository)
    status, lines = run_cli([*argv, "--repository", str(repository)], capsys)
    assert status != 0 and lines, lines
    assert table_rows(repository) == before
    errors = [line for line in lines if "error:" in line]
    assert len(errors) == 1, lines
    return status, errors[0]
