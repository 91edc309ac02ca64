"""Hostile and malformed reports (issue 35): crafted report.json files, and what a card publishes.

Every bad file gets one ``hfselect: error:`` line naming what is wrong and a non-zero exit, and the
report folder is left byte for byte as it was (report.json above all).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from hfselect.errors import HfSelectError
from tests.bad_input import run_cli
from tests.hub.server import LocalHub
from tests.test_cards import FAKE_TOKEN, USER, make_report


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


# -- item 4: whatever a user or the Hub named something, a card shows it as text --------------------

TARGET_HTML = "<img src=x onerror=alert(1)>"
METRIC_HTML = "<script>alert(2)</script>"
FENCE_BREAK = "hfselect select x --note '```\n<script>alert(3)</script>\n```'"
NEWLINE_ID = "org/evil\n| injected | row |"
TRAILING_NEWLINE_ID = "org/looks-like-a-hub-id\n"  # `$` would accept it as a Hub id, and link it raw


class CardHtml(HTMLParser):
    """The tags of a card rendered to HTML, and the cells of each table row."""

    def __init__(self, markdown: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.tables: list[list[list[str]]] = []  # per table, per row, its cells' text
        self.code: list[str] = []  # the text of each <pre> block
        self._cell: list[str] | None = None
        self._pre: list[str] | None = None
        markdown_it = pytest.importorskip("markdown_it")
        self.html = markdown_it.MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(markdown)
        self.feed(self.html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "pre":
            self._pre = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell))
            self._cell = None
        elif tag == "pre" and self._pre is not None:
            self.code.append("".join(self._pre))
            self._pre = None

    def handle_data(self, data: str) -> None:
        for buffer in (self._cell, self._pre):
            if buffer is not None:
                buffer.append(data)

    def check_inert(self) -> None:
        """No tag came from a value: no script, no image but the plot, links only to the web."""
        names = {tag for tag, _ in self.tags}
        assert not names & {"script", "iframe", "style", "object", "embed", "svg"}, names
        assert [a["src"] for tag, a in self.tags if tag == "img"] in ([], ["learning_curves.png"])
        hrefs = [a.get("href") or "" for tag, a in self.tags if tag == "a"]
        assert all(href.startswith(("http://", "https://", "report.json")) for href in hrefs), hrefs
        assert not any("onerror" in key for _, attrs in self.tags for key in attrs)


def hostile_report() -> dict[str, Any]:
    data = json.loads(
        json.dumps(make_report())
        .replace("huawei-noah/TinyBERT_General_4L_312D", json.dumps(NEWLINE_ID)[1:-1])
        .replace("google/electra-small-discriminator", json.dumps(TRAILING_NEWLINE_ID)[1:-1])
        .replace("org/model-0", "org/pipe|model`tick`")
    )
    data["target"] = data["selection"]["target"] = TARGET_HTML
    data["metric"] = METRIC_HTML
    data["command"] = FENCE_BREAK
    data["selection"]["candidates"][3]["reason"] = "see [this](javascript:alert(4)) <b>now</b>"
    data["recall"]["notes"] = ["a note with ~~strike~~ and $x$ and *stars*"]
    return data


def test_hostile_values_are_shown_as_text_in_the_report_card() -> None:
    from hfselect.cards import render_report_card

    card = render_report_card(hostile_report())
    page = CardHtml(card.text)
    page.check_inert()
    assert "<h1>Model selection for &lt;img src=x onerror=alert(1)&gt;</h1>" in page.html
    assert "validation &lt;script&gt;alert(2)&lt;/script&gt; <strong>0.7520</strong>" in page.html
    assert "see [this](javascript:alert(4)) &lt;b&gt;now&lt;/b&gt;" in page.html
    assert "a note with ~~strike~~ and $x$ and *stars*" in page.html
    # The command is one code block, backticks and all, and the section after it is still a heading.
    assert page.code == [f"# with hfselect 0.1.0 and the same model repository\n{FENCE_BREAK}\n"]
    assert "<h2>Citation</h2>" in page.html
    # Every row of every table has as many cells as its header: no id or reason added a row.
    assert len(page.tables) == 6
    assert all(len({len(row) for row in table}) == 1 for table in page.tables), page.tables
    candidates = next(table for table in page.tables if table[0][0] == "candidate")
    assert len(candidates) == 1 + 4  # the header and the 4 candidates
    assert "org/evil | injected | row |" in page.html  # one line, in its own cell
    assert "org/pipe|model`tick`" in page.html
    # The id that only looked like a Hub id (a trailing newline) is not linked to the Hub.
    assert "huggingface.co/org/looks-like-a-hub-id" not in card.text and "%0A" not in card.text


def test_hostile_metric_and_dataset_names_are_shown_as_text_in_the_pushed_repository_card(
    hub: LocalHub, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    hub.require_token = FAKE_TOKEN
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    repository, results = tmp_path / "repo.sqlite", tmp_path / "results.csv"
    results.write_text(
        "model_id,dataset,score\n"
        "org/a,<script>alert(1)</script>,0.9\n"
        'org/b,"<img src=x onerror=alert(2)>",0.8\n'
        "org/c,data_`x`|y,0.7\n"
    )
    metric = "<img src=x onerror=alert(3)>"
    status, _ = run_cli(
        ["repo", "import-csv", str(results), "--metric", metric, "--repository", str(repository)], capsys
    )
    assert status == 0
    status, _ = run_cli(["repo", "push", f"{USER}/hostile", "--repository", str(repository)], capsys)
    assert status == 0
    card = hub.repo_files(f"{USER}/hostile", repo_type="dataset")["README.md"].decode()
    page = CardHtml(card.split("\n---\n", 1)[1])
    page.check_inert()
    protocols = next(table for table in page.tables if table[0][0] == "protocol")
    assert protocols[1][:2] == [f"imported-{metric}", metric]  # shown as text, in their own cells
    # The benchmark datasets, as code (a `|` keeps its backslash outside a table: GitHub's tables need it).
    shown = ["&lt;img src=x onerror=alert(2)&gt;", "&lt;script&gt;alert(1)&lt;/script&gt;", "data_`x`\\|y"]
    assert ", ".join(f"<code>{name}</code>" for name in shown) in page.html


def test_a_repository_card_needs_a_hub_id(
    filled: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The id is shown in the card's code blocks: one that is not an id is refused before any push.
    for bad in ("tester/x\n```", "a/b/c", "tester/<img>"):
        status, lines = run_cli(["repo", "push", bad, "--repository", str(filled)], capsys)
        assert status == 1 and len(lines) == 1 and "is not a Hub dataset id" in lines[0], lines


def test_one_escaping_for_every_value_a_card_shows() -> None:
    from hfselect.cards.markdown import Markdown, code, code_block, escape

    assert (
        escape("<b>*x*</b> | [a](b) \\ `c`\nrow")
        == "&lt;b&gt;\\*x\\*&lt;/b&gt; \\| \\[a\\](b) \\\\ \\`c\\` row"
    )
    assert escape(Markdown("**kept**")) == "**kept**" and escape(None) == ""
    assert Markdown("**{}**").format("<x>") == "**&lt;x&gt;**"  # parts are escaped, the frame is not
    assert code("a``b") == "```a``b```" and code("`x") == "`` `x ``" and code("") == ""
    assert code_block("x\n````\ny", "bash") == "`````bash\nx\n````\ny\n`````"
