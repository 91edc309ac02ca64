"""Hostile and malformed reports (issue 35): crafted report.json files, and what a card publishes.

Every bad file gets one ``hfselect: error:`` line naming what is wrong and a non-zero exit, and the
report folder is left byte for byte as it was (report.json above all).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hfselect.errors import HfSelectError
from tests.bad_input import run_cli
from tests.test_cards import make_report


def folder_state(folder: Path) -> dict[str, str]:
    """Every file of ``folder`` by name, with its sha256: what "left as it was" compares."""
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(folder.iterdir())}


def write_report(folder: Path, data: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(json.dumps(data, indent=2))
    return folder


def render_fails(folder: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """``hfselect report render FOLDER`` fails with one error line and leaves the folder as it was."""
    before = folder_state(folder)
    status, lines = run_cli(["report", "render", str(folder)], capsys)
    assert status == 1 and len(lines) == 1 and lines[0].startswith("hfselect: error: "), lines
    assert folder_state(folder) == before
    return lines[0]


def edited(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    data = make_report()
    data["schema_version"] = 2
    change(data)
    return data


# -- item 9: the report's shape is checked before anything is written ---------------------------------

CRAFTED = {
    "empty selection": (lambda d: d.clear() or d.update(schema_version=2, selection={}), "it has no target"),
    "candidates as strings": (
        lambda d: d["selection"].update(candidates=["a", "b"]),
        "selection.candidates[0] must be an object, not 'a'",
    ),
    "rounds as an object": (
        lambda d: d["selection"].update(rounds={"1": []}),
        "selection.rounds must be a list or null, not {'1': []}",
    ),
    "string epochs": (
        lambda d: d["selection"]["candidates"][1].update(epochs="five"),
        "selection.candidates[1].epochs must be a number or null, not 'five'",
    ),
    "string curve epochs": (
        lambda d: d["selection"]["candidates"][0].update(curve_epochs=[1, "two"]),
        "selection.candidates[0].curve_epochs[1] must be a number, not 'two'",
    ),
    "a decision that is a number": (
        lambda d: d["selection"]["rounds"][0].update(decisions=[3]),
        "selection.rounds[0].decisions[0] must be an object, not 3",
    ),
    "a metric that is a list": (lambda d: d.update(metric=["accuracy"]), "metric must be a string"),
    "a score that is text": (
        lambda d: d.update(selected_score="high"),
        "selected_score must be a number or null, not 'high'",
    ),
    "a broken recall": (
        lambda d: d["recall"].update(entries=[{"model_id": "x"}]),
        "recall.entries[0] is not what hfselect writes there (",
    ),
    "a version that is text": (
        lambda d: d.update(schema_version="2"),
        "schema_version must be a whole number >= 1, not '2'",
    ),
}


@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_a_crafted_report_gets_one_line_naming_the_field_and_is_not_rewritten(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    change, expected = CRAFTED[case]
    folder = write_report(tmp_path / "report", edited(change))
    line = render_fails(folder, capsys)
    assert "is not a valid hfselect selection report" in line and expected in line, line
    assert str(folder / "report.json") in line


def test_a_report_that_fails_to_render_leaves_the_folder_as_it_was(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import hfselect.cards.report as report_module

    folder = write_report(tmp_path / "report", make_report())  # valid, in the old untyped layout
    (folder / "README.md").write_text("the card as it was\n")

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise HfSelectError("the card cannot be rendered")

    monkeypatch.setattr(report_module, "render_report_card", broken)
    assert render_fails(folder, capsys) == "hfselect: error: the card cannot be rendered"
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "report.json"]  # no scratch left


def test_a_folder_that_cannot_be_written_gets_one_line(tmp_path: Path) -> None:
    from hfselect.cards import write_report_folder

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the report folder should be")
    with pytest.raises(HfSelectError, match="cannot write the report folder"):
        write_report_folder(make_report(), blocker)


# -- item 10: a newer schema is refused, unknown keys are kept --------------------------------------


def test_a_report_from_a_newer_hfselect_is_refused_and_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_report(tmp_path / "report", edited(lambda d: d.update(schema_version=99)))
    line = render_fails(folder, capsys)
    assert "schema version 99, written by a newer hfselect" in line and "upgrade hfselect" in line


def test_rewriting_a_report_keeps_the_keys_it_does_not_know(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def annotate(data: dict[str, Any]) -> None:
        data["notes"] = "rerun with more epochs"
        data["reviewed"] = {"by": "me", "ok": True}
        data["selection"]["comment"] = "kept too"

    folder = write_report(tmp_path / "report", edited(annotate))
    status, _ = run_cli(["report", "render", str(folder)], capsys)
    assert status == 0
    data = json.loads((folder / "report.json").read_text())
    assert data["notes"] == "rerun with more epochs" and data["reviewed"] == {"by": "me", "ok": True}
    assert data["selection"]["comment"] == "kept too" and data["schema_version"] == 2
    status, _ = run_cli(["report", "render", str(folder)], capsys)  # and again: nothing drifts
    assert status == 0 and json.loads((folder / "report.json").read_text()) == data


# -- item 16: a token-shaped name is masked in the card's YAML header too ----------------------------

TOKEN_SHAPED = "hf_ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def test_a_token_shaped_study_name_is_masked_in_the_yaml_header(tmp_path: Path) -> None:
    from hfselect.cards import SelectionReport, report_card_data, write_report_folder

    # As `hfselect select --study hf_...` builds it: in memory, never through from_dict.
    report = SelectionReport.from_dict(make_report())
    report.selection["study"] = TOKEN_SHAPED
    report.command = f"hfselect select fancyzhx/ag_news --study {TOKEN_SHAPED}"
    for repo_type in ("dataset", "model"):
        assert report_card_data(report, repo_type=repo_type).to_dict()["hfselect"]["study"] == "***"
    written = write_report_folder(report, tmp_path / "report")
    card = written["README.md"].read_text()
    header = card.split("\n---\n")[0]
    assert "study: '***'" in header and TOKEN_SHAPED not in card
    assert TOKEN_SHAPED not in written["report.json"].read_text()
    assert report.study == TOKEN_SHAPED  # the caller's report is not changed
