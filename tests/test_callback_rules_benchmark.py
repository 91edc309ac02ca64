"""Smoke test of benchmarks/callback_rules.py: the callback's rules replayed as studies on curves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_benchmarks_smoke import _load
from tests.test_real_curves import QUICKTUNE, _write_quicktune_layout


def test_replay_on_a_tiny_layout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("optuna")  # the MedianPruner row: pip install -e ".[bench]"
    module = _load("callback_rules")
    _write_quicktune_layout(tmp_path / "data")
    out = tmp_path / "out.json"
    assert module.main(["--data", str(tmp_path / "data"), "--seeds", "2", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert list(report["methods"]) == list(module.METHODS)
    assert report["data"]["targets"] == ["D0", "D1", "D2", "D3"]
    assert report["data"]["runs"] == dict.fromkeys(["D0", "D1", "D2", "D3"], 11)  # 14 less 3 cut short
    never = report["methods"]["never stop"]
    assert never["epochs_saved"]["mean"] == 0 and never["best_halted"]["mean"] == 0
    for values in report["methods"].values():
        for key in ("epochs_saved", "best_halted", "regret"):
            assert values[key]["low"] <= values[key]["mean"] <= values[key]["high"]
            assert 0 <= values[key]["mean"] <= 1
    assert report["methods"]["study rule alone"]["epochs_saved"]["mean"] > 0
    assert "study rule alone" in capsys.readouterr().out


def test_a_study_replay_stops_a_clear_loser_and_spares_the_first_run() -> None:
    import numpy as np

    module = _load("callback_rules")
    curves = np.array([[0.5, 0.9, 0.95, 0.96], [0.5, 0.5, 0.5, 0.5], [0.1, 0.4, 0.8, 0.99]])
    trained = module.replay_study(curves, [0, 1, 2], study_trend=False)
    # The first run has no rival; the flat one is behind by 0.4 at epoch 2, where run 0 gained only
    # 0.06 later; the late bloomer is behind by 0.5 too, but its rise (0.3 an epoch, 2 epochs left)
    # could close the gap, and it ends best.
    assert trained.tolist() == [4, 2, 4]
    assert module.outcome(curves, trained) == {
        "epochs_saved": pytest.approx(1 - 10 / 12),
        "best_halted": 0.0,
        "regret": 0.0,
    }


def test_unknown_method_and_missing_data_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    module = _load("callback_rules")
    with pytest.raises(SystemExit) as usage:
        module.main(["--data", str(tmp_path), "--methods", "nope"])
    assert usage.value.code == 2 and "unknown method(s) nope" in capsys.readouterr().err
    assert module.main(["--data", str(tmp_path / "absent")]) == 2
    assert capsys.readouterr().err.startswith("error: ")


@pytest.mark.skipif(
    not QUICKTUNE.is_dir(), reason="Quick-Tune's curves (shared/anchors/quicktune) are not here"
)
def test_on_real_curves_the_study_rule_saves_epochs(tmp_path: Path) -> None:
    pytest.importorskip("optuna")
    module = _load("callback_rules")
    report = module.run(QUICKTUNE, "PLK", 1, ["never stop", "study rule alone"])
    assert report["data"]["runs"] == {"PLK": 11}
    assert report["methods"]["study rule alone"]["epochs_saved"]["mean"] > 0.5
