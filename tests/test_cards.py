"""Selection reports as Hub cards: the typed report, its card, plot and metadata, and token redaction.

No training runs here: the reports are realistic ``report.json`` dicts written by hand
(:func:`make_report`, shared with ``tests/test_card_pushes.py``, which pushes them to the local Hub).
A card's metadata is checked by the local Hub's ``validate-yaml`` endpoint (``hub`` fixture).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from huggingface_hub import DatasetCard

from hfselect.cards import (
    SCHEMA_VERSION,
    SelectionReport,
    environment_versions,
    redact_secrets,
    render_report_card,
    write_report_folder,
)
from hfselect.core.scopes import RULE_SUMMARIES
from hfselect.errors import HfSelectError
from tests.hub.server import LocalHub

FAKE_TOKEN = "hf_FAKEtoken1234567890"
USER = "tester"  # the local Hub's user
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
HOME = str(Path.home())

HUB_MODELS = [
    "prajjwal1/bert-tiny",
    "google/electra-small-discriminator",
    "huawei-noah/TinyBERT_General_4L_312D",
    "tiny-roberta-topic",  # a local zoo model: no namespace, its spec is a folder
]
LOCAL_MODELS = ["tiny-bert-sentiment", "tiny-distil-news", "tiny-roberta-topic", "tiny-bert-mlm"]


def make_report(target: str = "fancyzhx/ag_news", *, hub_models: bool = True) -> dict[str, Any]:
    """A report.json as ``hfselect select`` writes it: 4 candidates, 5-epoch budget, 3 dropped in round 1.

    Round 1 drops one predicted low performer and the worse half; the winner then trains alone to
    the budget: 8 epochs spent against 9 for plain successive halving and 20 for brute force.
    """
    ids = HUB_MODELS if hub_models else LOCAL_MODELS
    specs = [m if "/" in m else f"{HOME}/.cache/hfselect/zoo-small/models/{m}" for m in ids]
    a, b, c, d = ids
    curves = {a: [0.612, 0.701, 0.733, 0.748, 0.752], b: [0.655], c: [0.488], d: [0.402]}
    predicted = {a: [0.741, 0.752, 0.755, 0.756, 0.755], b: [0.702], c: [0.561], d: [0.497]}
    reasons = {
        b: f"predicted low performer at epoch 1: predicted final 0.7020 < 0.7410 of {a}, which scored higher",
        c: "worse half at epoch 1: predicted final 0.5610 (score 0.4880)",
        d: "worse half at epoch 1: predicted final 0.4970 (score 0.4020)",
    }
    candidates = [
        {
            "model_id": m,
            "spec": spec,
            "epochs": len(curves[m]),
            "seconds": 10.0 * len(curves[m]) + 1.5,
            "curve": curves[m],
            "predicted_final": predicted[m],
            "state": "completed" if m == a else "stopped",
            "reason": reasons.get(m),
            "stopped_at_round": None,
        }
        for m, spec in zip(ids, specs, strict=True)
    ]
    rounds = [
        {
            "round": 1,
            "decisions": [
                {
                    "model_id": m,
                    "score": curves[m][0],
                    "predicted_final": predicted[m][0],
                    "decision": "continue" if m == a else "stop",
                    **({"reason": reasons[m]} if m != a else {}),
                }
                for m in ids
            ],
        }
    ] + [
        {
            "round": epoch,
            "decisions": [
                {
                    "model_id": a,
                    "score": curves[a][epoch - 1],
                    "predicted_final": predicted[a][epoch - 1],
                    "decision": "continue",
                }
            ],
        }
        for epoch in range(2, 6)
    ]

    def entry(model: str, rank: int, role: str, cluster: int | None, rep: str | None, proxy: float | None):
        return {
            "model_id": model,
            "rank": rank,
            "score": 0.7 - rank * 0.03,
            "mean_score": 0.8 - rank * 0.01,
            "weight": 0.9,
            "role": role,
            "cluster": cluster,
            "representative": rep,
            "proxy_model": rep,
            "proxy": proxy,
            "has_results": role != "new",
        }

    others = [f"org/model-{i}" for i in range(6)]
    entries = [
        entry(a, 1, "representative", 0, a, -0.61),
        entry(b, 2, "member", 0, a, -0.61),
        entry(c, 3, "singleton", 2, None, None),
        entry(d, 4, "representative", 1, d, -0.95),
    ]
    ranking = entries + [entry(m, 5 + i, "member", 1, d, -0.95) for i, m in enumerate(others)]
    recall = {
        "target": target,
        "proxy": "leep",
        "fallback_to_proxy_only": False,
        "proxied_models": [a, d],
        "proxy_scores": {a: -0.61, d: -0.95},
        "proxy_seconds": 3.2,
        "examples_per_second": {a: 800.0, d: 750.0},
        "skipped": {"org/broken": "no safetensors weights"},
        "notes": [],
        "models": ids,
        "scores": [e["score"] for e in entries],
        "entries": entries,
        "ranking": ranking,
        "clusters": [[a, b], [d, *others], [c]],
        "representatives": {"0": a, "1": d},
        "new_models": [],
        "scope": "representatives",
        "top_k": 4,
        "threshold": 0.09,
        "k_largest": 5,
    }
    protocol = {
        "key": "3f2a9c1d0b7e",
        "epochs": 5,
        "learning_rate": 5e-05,
        "batch_size": 32,
        "seed": 0,
        "train_samples": 2000,
        "eval_samples": 500,
        "max_length": 128,
        "metric": "accuracy",
    }
    saved_to = f"{HOME}/runs/hfselect-selection/run/selected-model"
    return {
        "hfselect_version": "0.1.0",
        "command": f"hfselect select {target} --candidates 4 --epochs 5 --seed 0",
        "target": target,
        "selected_model": a,
        "selected_score": 0.752,
        "test_score": 0.7466,
        "saved_to": saved_to,
        "metric": "accuracy",
        "protocol": protocol,
        "recall": recall,
        "selection": {
            "study": "select-1a2b3c4d5e",
            "target": target,
            "selected_model": a,
            "selected_score": 0.752,
            "test_score": 0.7466,
            "saved_to": saved_to,
            "candidates": candidates,
            "rounds": rounds,
            "epochs_spent": 8,
            "brute_force_epochs": 20,
            "successive_halving_epochs": 9,
            "wall_time_s": 95.3,
        },
        "excluded_benchmark_datasets": [],
        "versions": {"python": "3.12.3", "hfselect": "0.1.0", "transformers": "5.24.0"},
    }


# -- the report and its card ---------------------------------------------------------------------------


def test_report_loads_from_dict_file_and_folder_and_redacts_tokens(tmp_path: Path) -> None:
    data = make_report()
    data["command"] += f" --token {FAKE_TOKEN} --note hf_ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
    report = SelectionReport.from_json(data)
    assert report.selected_model == "prajjwal1/bert-tiny" and report.metric == "accuracy"
    assert FAKE_TOKEN not in report.to_json() and "hf_ABCDEFGH" not in report.to_json()
    assert "--token ***" in (report.command or "")
    assert "hf_transfer" in redact_secrets("pip install hf_transfer")  # not a token

    report.to_json(tmp_path / "report.json")
    for source in (tmp_path, tmp_path / "report.json"):
        again = SelectionReport.from_json(source)
        assert again.to_dict() == report.to_dict()
    assert json.loads(report.to_json(public=True))["saved_to"] == "selected-model"  # no local path

    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(HfSelectError, match="is not JSON"):
        SelectionReport.from_json(tmp_path / "bad.json")
    with pytest.raises(HfSelectError, match="not an hfselect selection report"):
        SelectionReport.from_json({"hello": 1})
    with pytest.raises(HfSelectError, match="cannot read"):
        SelectionReport.from_json(tmp_path / "missing")


def test_card_shows_every_section() -> None:
    card = render_report_card(make_report(), repo_type="dataset")
    data = card.data.to_dict()
    assert data["base_model"] == "prajjwal1/bert-tiny" and data["datasets"] == ["fancyzhx/ag_news"]
    assert {"hfselect", "model-selection"} <= set(data["tags"]) and data["viewer"] is False
    assert data["hfselect"]["selected_model"] == "prajjwal1/bert-tiny"
    assert data["hfselect"]["validation_score"] == 0.752
    text = card.text
    for expected in (
        "**Selected model: [`prajjwal1/bert-tiny`]",
        "validation accuracy **0.7520** after 5 epochs, test accuracy **0.7466**",
        "![Validation accuracy",
        "(learning_curves.png)",
        "## Coarse recall",
        "| 3 | [`huawei-noah/TinyBERT_General_4L_312D`]",
        "alone in its cluster: weighted by its similarity to every representative",
        "-0.6100 (of `prajjwal1/bert-tiny`)",  # a member uses its representative's proxy
        "`org/broken`: no safetensors weights",
        "### Clusters",
        "| 1 | 7 | `tiny-roberta-topic` |",
        "### Round 1",
        "0.612 → 0.701 → 0.733 → 0.748 → 0.752",
        "| **stop** | predicted low performer at epoch 1: predicted final 0.7020 &lt; 0.7410",
        "Epochs 2–5: only [`prajjwal1/bert-tiny`]",  # noqa: RUF001
        "| brute force: every candidate to the full budget | 20 | 2.5× |",  # noqa: RUF001
        "| plain successive halving over the same candidates | 9 | 1.1× |",  # noqa: RUF001
        "hfselect select fancyzhx/ag_news --candidates 4 --epochs 5 --seed 0",
        "- **Seed:** `0`",
        "- **transformers:** `5.24.0`",
    ):
        assert expected in text, expected
    # A local zoo model is named, not linked; a local path never shows.
    assert "`tiny-roberta-topic`" in text and "huggingface.co/tiny-roberta-topic" not in text
    assert HOME not in str(card)


def test_card_says_which_rule_ran_and_what_each_score_came_from() -> None:
    report = make_report()
    recall = report["recall"]
    recall["scope"] = "evidence"
    sources = ["own proxy + evidence from 9 similar datasets", "evidence from 9 similar datasets (no proxy)"]
    for entry, source in zip(recall["entries"], sources + sources, strict=True):
        entry["source"] = source
    text = render_report_card(report, repo_type="dataset").text
    assert "Rule `evidence`: " + RULE_SUMMARIES["evidence"] in text
    assert "| score from |" in text and all(source in text for source in sources)
    assert "represents its cluster" not in text and "similarity to every representative" not in text
    # A report written before entries carried their source, by hfselect's earlier default rule.
    recall["scope"] = "every"
    for entry in recall["entries"]:
        del entry["source"]
    text = render_report_card(report, repo_type="dataset").text
    assert "Rule `every`: " + RULE_SUMMARIES["every"] in text
    assert "| own proxy |" in text and "alone in its cluster" not in text


def test_card_of_a_local_target_names_no_hub_ids_and_no_paths() -> None:
    report = make_report(f"{HOME}/.cache/hfselect/zoo-small/datasets/topic", hub_models=False)
    for repo_type in ("dataset", "model"):
        card = render_report_card(report, repo_type=repo_type)
        data = card.data.to_dict()
        assert "base_model" not in data and "datasets" not in data
        assert data["hfselect"]["target"] == "topic"
        assert HOME not in str(card)
        assert "`topic` (a local dataset)" in card.text
    model_index = data["model-index"][0]["results"]
    assert [r["dataset"]["split"] for r in model_index] == ["validation", "test"]
    assert model_index[0]["metrics"][0] == {"type": "accuracy", "value": 0.752, "name": "validation accuracy"}


def test_card_renders_as_html_with_its_tables_and_plot(tmp_path: Path) -> None:
    markdown_it = pytest.importorskip("markdown_it")
    written = write_report_folder(make_report(), tmp_path)
    assert sorted(written) == ["README.md", "learning_curves.png", "report.json"]
    card = DatasetCard.load(written["README.md"])
    html = markdown_it.MarkdownIt("commonmark").enable("table").render(card.text)
    # Recall, clusters, protocol, candidates, round 1 and cost: every table parsed as a table.
    assert html.count("<table>") == 6
    assert '<img src="learning_curves.png"' in html
    assert "|" not in html.replace("\\|", "")  # no table row left as plain text
    assert "<h2>Fine selection</h2>" in html and "<h3>Round 1</h3>" in html


def test_plot_has_one_line_per_candidate_and_highlights_the_winner(tmp_path: Path) -> None:
    from PIL import Image

    from hfselect.cards.plot import WINNER_COLOR, plot_learning_curves

    path = plot_learning_curves(SelectionReport.from_json(make_report()), tmp_path / "curves.png")
    assert path is not None and path.read_bytes().startswith(PNG_MAGIC)
    image = Image.open(path).convert("RGB")
    assert image.size == (1200, 750)
    red = tuple(int(WINNER_COLOR[i : i + 2], 16) for i in (1, 3, 5))
    pixels = np.asarray(image).reshape(-1, 3)
    assert (pixels == red).all(axis=1).sum() > 2000  # the thick winner line
    empty = make_report()
    for candidate in empty["selection"]["candidates"]:
        candidate["curve"] = []
    assert plot_learning_curves(SelectionReport.from_json(empty), tmp_path / "none.png") is None


def test_card_metadata_passes_hub_validation(hub: LocalHub) -> None:
    for report in (make_report(), make_report("/data/topic", hub_models=False)):
        render_report_card(report, repo_type="dataset").validate()
        render_report_card(report, repo_type="model").validate()
        render_report_card(report, repo_type="model", includes_model=True).validate()


def test_environment_versions() -> None:
    versions = environment_versions()
    assert versions["hfselect"] and versions["python"] and "huggingface_hub" in versions


def test_card_cost_counts_brute_force_over_the_whole_repository_and_the_winners_lead() -> None:
    report = make_report()
    report["selection"].update(repository_models=10, brute_force_repository_epochs=50)
    text = render_report_card(report).text
    assert (
        "against 20 for brute force over the candidates (2.5× more), "  # noqa: RUF001
        "50 for brute force over all 10 models of the repository (6.2× more)"  # noqa: RUF001
    ) in text
    assert "| brute force: every model of the repository (10) to the full budget | 50 | 6.2× |" in text  # noqa: RUF001
    # The worst candidate after epoch 1, when all four were evaluated, is the one at 0.402.
    local = make_report(hub_models=False)
    assert (
        "**Winner against the worst recalled candidate:** after epoch 1, when every candidate had been "
        "evaluated, validation accuracy 0.6120 for `tiny-bert-sentiment` against 0.4020 for `tiny-bert-mlm` "
        "(a gap of 0.210); `tiny-bert-sentiment` ended at 0.7520 after 5 epochs, `tiny-bert-mlm` at 0.4020 "
        "after 1."
    ) in render_report_card(local).text
    # An older report without the repository's size keeps the candidates-only line.
    assert "models of the repository" not in render_report_card(make_report()).text


# -- the typed schema ----------------------------------------------------------------------------------


def test_a_report_in_the_old_untyped_format_loads_and_is_written_back_typed(tmp_path: Path) -> None:
    old = make_report()  # today's report.json: no schema_version, no schedule
    assert "schema_version" not in old
    (tmp_path / "report.json").write_text(json.dumps(old))
    report = SelectionReport.from_json(tmp_path)
    assert report.schema_version == SCHEMA_VERSION and report.schedule is None and report.source == "select"
    assert report.target == old["target"] and report.selected_model == old["selected_model"]
    assert report.recall is not None and report.recall.models == old["recall"]["models"]
    entries = report.recall.to_dict()["entries"]  # with the fields old reports lack, at their defaults
    old_entries = old["recall"]["entries"]
    assert [
        {key: new[key] for key in entry} for new, entry in zip(entries, old_entries, strict=True)
    ] == old_entries
    assert all(new["source"] == "" and new["evidence"] is None for new in entries)
    data = report.to_dict()
    assert data["schema_version"] == SCHEMA_VERSION and data["selection"] == old["selection"]
    assert SelectionReport.from_dict(data).to_dict() == data
    # A study's target lived in its selection section only; the metric in its protocol only.
    del old["target"], old["metric"]
    old["protocol"]["metric"] = "f1"
    again = SelectionReport.from_dict(old)
    assert again.target == old["selection"]["target"] and again.metric == "f1"


def test_the_card_shows_the_schedule_it_ran() -> None:
    data = SelectionReport.from_dict(make_report()).to_dict()
    assert "Fine-selection schedule" not in render_report_card(data).text  # unknown in old reports
    data["schedule"] = "async"
    assert "**Fine-selection schedule:** `async` successive halving" in render_report_card(data).text


def test_one_wording_for_what_a_recall_score_came_from() -> None:
    from hfselect.core.recall_result import RecallEntry, score_source

    entry = RecallEntry("m", 1, 0.5, 0.7, 0.5, "member", 0, "r", "m", -0.7, True)
    assert score_source(entry, "every") == "own proxy"  # the branch the card used to lack
    assert score_source(entry, "representatives") == "member of cluster 0, represented by r"
    new = RecallEntry("n", 2, 0.4, 0.7, 0.4, "new", None, None, "n", -0.9, False)
    assert score_source(new, "every") == "own proxy (no benchmark results)"
    sourced = RecallEntry("m", 1, 0.5, 0.7, 0.5, "member", 0, "r", "m", -0.7, True, source="own proxy")
    assert score_source(sourced, "all") == "own proxy"


def test_report_render_rewrites_an_old_report_in_the_typed_schema(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hfselect.cli import main

    (tmp_path / "report.json").write_text(json.dumps(make_report()))
    assert main(["report", "render", str(tmp_path)]) == 0
    assert capsys.readouterr().out.split() == [str(tmp_path / name) for name in (
        "report.json", "learning_curves.png", "README.md")]  # fmt: skip
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["schema_version"] == SCHEMA_VERSION and data["selected_model"] == "prajjwal1/bert-tiny"
    assert "hfselect model selection for fancyzhx/ag_news" in (tmp_path / "README.md").read_text()
