"""The command line's own plumbing: options before the subcommand, and a closed output pipe."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hfselect import cli
from hfselect.store import ModelRepository


def test_global_options_before_the_subcommand_are_kept(
    filled: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["--repository", str(filled), "repo", "info", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["path"] == str(filled)
    before = cli.build_parser().parse_args(["--quiet", "--debug", "--repository", "x", "repo", "info"])
    after = cli.build_parser().parse_args(["repo", "info", "--quiet", "--debug", "--repository", "x"])
    neither = cli.build_parser().parse_args(["repo", "info"])
    assert (before.quiet, before.debug, before.repository) == (after.quiet, after.debug, after.repository)
    assert (before.quiet, before.debug, before.repository) == (True, True, "x")
    assert (neither.quiet, neither.debug, neither.repository) == (False, False, None)


def test_cluster_output_into_a_closed_pipe_is_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "repo.sqlite"
    with ModelRepository(path) as repository:
        repository.record_results(
            [(f"org/m{i}", f"d{j}", (i * 7 + j) % 10 / 10) for i in range(30) for j in range(3)]
        )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hfselect",
            "cluster",
            "--json",
            "--k-largest",
            "1",
            "--repository",
            str(path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    process.stdout.close()  # the reader is gone before hfselect writes (as `| head` after its lines)
    stderr = process.stderr.read()
    process.wait(timeout=120)
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr
