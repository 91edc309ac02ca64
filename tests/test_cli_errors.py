"""The command line's own plumbing: options before the subcommand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hfselect import cli


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
