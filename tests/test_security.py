"""No code from the Hub runs unasked."""

from __future__ import annotations

from pathlib import Path

import pytest

from hfselect.bench import BenchConfig
from hfselect.errors import HfSelectError
from tests.bad_input import run_cli

BENCH = ["bench", "--models", "m", "--datasets", "d"]


def test_a_hub_metric_needs_an_explicit_opt_in(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repository = tmp_path / "repo.sqlite"
    status, lines = run_cli([*BENCH, "--metric", "squad", "--repository", str(repository)], capsys)
    assert status == 1 and len(lines) == 1
    assert "--allow-hub-metric-code" in lines[0] and "squad" in lines[0]
    assert not repository.exists()
    with pytest.raises(HfSelectError, match="allow-hub-metric-code"):
        BenchConfig(metric="squad")
    assert BenchConfig(metric="squad", allow_hub_metric_code=True).metric == "squad"
    script = tmp_path / "my_metric.py"
    script.write_text("# a local evaluate metric script\n")
    assert BenchConfig(metric=str(script)).metric == str(script)  # local code is the user's own
    assert BenchConfig(metric="f1").metric == "f1"
