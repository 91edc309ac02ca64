"""Selection reports as Hub cards, pushing reports and repository snapshots, and token hygiene.

Everything Hub-facing runs against the local Hub of ``tests/hub`` (``hub`` fixture) with a fake token
that the server requires, so a test fails if the token is missing from a request that needs it, and
every pushed file, log line and output is checked for it. No training runs here: the reports are
realistic ``report.json`` dicts written by hand.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from huggingface_hub import DatasetCard, ModelCard

from hfselect.cards import (
    SCHEMA_VERSION,
    SelectionReport,
    environment_versions,
    pull_repository,
    push_report,
    push_repository,
    push_study_report,
    redact_secrets,
    render_report_card,
    repository_snapshot,
    resolve_repository_path,
    write_report_folder,
)
from hfselect.cards.push import push_files
from hfselect.core.scopes import RULE_SUMMARIES
from hfselect.errors import HfSelectError, HubError
from hfselect.store import TABLES, ModelRepository, Protocol
from hfselect.store.studies import COMPLETED, STOPPED, Study, Trial
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


def fill_repository(repository: ModelRepository) -> None:
    """Rows in every table: two models benchmarked on two datasets, a study, a proxy score, a crawl."""
    protocol = Protocol(epochs=3, learning_rate=1e-3, batch_size=32, seed=0, metric="accuracy")
    for model, base in (("org/bert", 0.8), ("org/distil", 0.7)):
        repository.upsert_model(
            model,
            sha="a" * 40,
            architecture="BertForSequenceClassification",
            num_labels=2,
            id2label={"0": "neg", "1": "pos"},
            tags=["transformers", "text-classification"],
            card_data={"license": "mit"},
            has_safetensors=True,
            crawled_at="2026-01-01T00:00:00+00:00",
        )
        repository.log_crawl(model, "a" * 40, "stored")
        for dataset, shift in (("imdb", 0.0), ("sst2", 0.05)):
            repository.upsert_dataset(dataset, num_labels=2, label_names=["neg", "pos"], modality="text")
            curve = [base + shift - 0.1, base + shift - 0.02, base + shift]
            repository.record_result(model, dataset, base + shift, protocol, curve=curve, duration_s=1.5)
    repository.record_results([("org/bert", "ag_news", 0.9)])  # an imported matrix score
    # A cached proxy score, written directly: hfselect.training.proxy_scoring writes the cache while it scores models.
    with contextlib.closing(sqlite3.connect(repository.path)) as connection, connection:
        connection.execute(
            "INSERT INTO proxy_scores (model_id, model_sha, dataset, dataset_fingerprint, proxy, sample_size, "
            "seed, score) VALUES ('org/bert', 'aaa', 'imdb', 'fp', 'leep', 1000, 0, -0.5)"
        )
    study = Study(repository, "s1", target="imdb", config={"protocol": protocol.key})
    study.record_point("org/bert", 1, 0.7, 0.8)
    study.set_trial(Trial("org/bert", "running", epochs_trained=1))


def sorted_table(repository: ModelRepository, name: str) -> pd.DataFrame:
    frame = repository.table(name)
    return frame.sort_values(list(frame.columns[:3])).reset_index(drop=True)


@pytest.fixture
def token(hub: LocalHub, monkeypatch: pytest.MonkeyPatch) -> str:
    """The fake token, required by the local Hub for writes and given the usual way (HF_TOKEN)."""
    hub.require_token = FAKE_TOKEN
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    return FAKE_TOKEN


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
    assert (
        json.loads(report.to_json(public=True))["saved_to"] == "~/runs/hfselect-selection/run/selected-model"
    )

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


# -- pushing reports -----------------------------------------------------------------------------------


def test_push_report_to_the_hub_and_read_it_back(
    token: str, hub: LocalHub, tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    report = make_report()
    report["command"] += f" --token {token}"  # a careless command line
    write_report_folder(report, tmp_path / "report")
    (tmp_path / "report" / "run").mkdir()
    (tmp_path / "report" / "run" / "checkpoint.bin").write_bytes(b"not pushed")

    url = push_report(tmp_path / "report", f"{USER}/ag-news-selection")
    assert url.endswith(f"/datasets/{USER}/ag-news-selection")
    files = hub.repo_files(f"{USER}/ag-news-selection", repo_type="dataset")
    assert sorted(files) == [".gitattributes", "README.md", "learning_curves.png", "report.json"]
    assert hub.count("POST", r"/commit/main$") == 1  # one commit with every file
    assert files["learning_curves.png"].startswith(PNG_MAGIC)
    pushed = json.loads(files["report.json"])
    assert pushed["selected_model"] == "prajjwal1/bert-tiny" and pushed["saved_to"].startswith("~")

    card = DatasetCard.load(f"{USER}/ag-news-selection")
    assert card.data.base_model == "prajjwal1/bert-tiny"
    assert card.data.hfselect["selected_model"] == "prajjwal1/bert-tiny"
    assert "![Validation accuracy" in card.text

    # As a model repository, with a pull request: a model card with a model-index.
    pr_url = push_report(tmp_path / "report", f"{USER}/ag-news-model", repo_type="model", create_pr=True)
    assert pr_url.endswith("/discussions/1")
    model_files = hub.repo_files(f"{USER}/ag-news-model", revision="refs/pr/1")
    model_card = ModelCard(model_files["README.md"].decode())
    assert model_card.data.base_model == "prajjwal1/bert-tiny"
    assert model_card.data.eval_results[0].metric_value == 0.752

    everything = [*files.values(), *model_files.values()]
    assert not any(token.encode() in content for content in everything)
    output = capsys.readouterr()
    assert token not in output.out + output.err + caplog.text


def test_push_report_with_the_selected_model(token: str, hub: LocalHub, tmp_path: Path) -> None:
    model = tmp_path / "selected-model"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "bert"}')
    (model / "model.safetensors").write_bytes(b"\0" * 64)
    (model / "training_args.bin").write_bytes(b"pickle")
    (model / "README.md").write_text("the Trainer's card")
    write_report_folder(make_report(), tmp_path / "report")
    push_report(tmp_path / "report", f"{USER}/bert-tiny-ag-news", repo_type="model", model_dir=model)
    files = hub.repo_files(f"{USER}/bert-tiny-ag-news")
    assert {"config.json", "model.safetensors", "README.md", "report.json"} <= set(files)
    assert "training_args.bin" not in files
    card = ModelCard.load(f"{USER}/bert-tiny-ag-news")
    assert card.data.library_name == "transformers" and card.data.base_model == "prajjwal1/bert-tiny"
    with pytest.raises(ValueError, match="model repository"):
        push_report(tmp_path / "report", f"{USER}/x", model_dir=model)


def test_missing_token_gives_one_line(hub: LocalHub, tmp_path: Path) -> None:
    hub.require_token = FAKE_TOKEN  # HF_TOKEN is unset by the conftest, and no login is stored
    write_report_folder(make_report(), tmp_path)
    with pytest.raises(HubError) as error:
        push_report(tmp_path, f"{USER}/selection")
    assert (
        str(error.value) == "no Hugging Face token: run `hf auth login` or set HF_TOKEN (with write access)"
    )
    assert hub.count("*", r"/api/repos/create") == 0


def test_read_only_and_rejected_tokens_give_one_line(
    hub: LocalHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub.require_token = FAKE_TOKEN
    write_report_folder(make_report(), tmp_path)
    readonly = FAKE_TOKEN + "-readonly"
    monkeypatch.setenv("HF_TOKEN", readonly)
    with pytest.raises(HubError) as error:
        push_report(tmp_path, f"{USER}/selection")
    message = str(error.value)
    assert message.startswith(f"your token cannot write to {USER}/selection (403 Forbidden)")
    assert "write access" in message and "\n" not in message and FAKE_TOKEN not in message

    with pytest.raises(HubError, match=r"rejected your Hugging Face token \(401") as error:
        push_repository(tmp_path / "empty.sqlite", f"{USER}/snap", token="hf_wrongToken0000000000")
    assert "hf_wrong" not in str(error.value) and "\n" not in str(error.value)


def test_a_token_in_a_file_is_never_pushed(token: str, hub: LocalHub, tmp_path: Path) -> None:
    odd = "plain-secret-without-pattern"
    hub.require_token = odd
    data = make_report()
    data["notes"] = f"run with {odd}"
    write_report_folder(data, tmp_path)
    push_report(tmp_path, f"{USER}/selection", token=odd)  # redacted on the way
    files = hub.repo_files(f"{USER}/selection", repo_type="dataset")
    assert not any(odd.encode() in content for content in files.values())
    with pytest.raises(HubError, match=r"refusing to push notes\.txt: it contains your Hugging Face token"):
        push_files({"notes.txt": f"token={odd}".encode()}, f"{USER}/selection", token=odd)


def test_push_study_report(token: str, hub: LocalHub, tmp_path: Path) -> None:
    with ModelRepository(tmp_path / "repo.sqlite") as repository:
        study = Study(repository, "my-target")
        local = f"{HOME}/models/tiny-c"  # the callback names a local model by its folder
        for model, scores in (("org/a", [0.5, 0.62, 0.7, 0.74]), ("org/b", [0.55, 0.58]), (local, [0.3])):
            for i, score in enumerate(scores):
                study.record_point(model, 0.5 * (i + 1), score, score + 0.05)
        study.set_trial(Trial("org/a", COMPLETED, epochs_trained=2.0, final_score=0.74, wall_time_s=12.0))
        study.set_trial(
            Trial("org/b", STOPPED, epochs_trained=1.0, reason="predicted final 0.63 is below 0.75")
        )
        study.set_trial(
            Trial(local, STOPPED, epochs_trained=0.5, reason="predicted final 0.35 is below 0.55")
        )

        report = SelectionReport.from_study(repository, "my-target", metric="eval_accuracy")
        assert report.recall is None and report.selected_model == "org/a" and report.selected_score == 0.74
        by_id = {c.model_id: c for c in report.candidates}
        assert by_id["org/a"].epochs == [0.5, 1.0, 1.5, 2.0] and by_id[local].state == "stopped"
        card = render_report_card(report)
        assert card.data.pretty_name == "hfselect model-selection study my-target"
        assert "datasets" not in card.data.to_dict()  # the callback records no target
        text = card.text
        assert "## Coarse recall" not in text and "Evaluations at epoch 0.50" in text
        assert "| `tiny-c` | 0.3000 |" in text and HOME not in text
        assert "predicted final 0.35 is below 0.55" in text

        url = push_study_report(repository, "my-target", f"{USER}/my-target-study", metric="eval_accuracy")
        with pytest.raises(HfSelectError, match="no study 'nope'"):
            push_study_report(repository, "nope", f"{USER}/x")
    assert url.endswith(f"{USER}/my-target-study")
    card = DatasetCard.load(f"{USER}/my-target-study")
    assert card.data.hfselect["selected_model"] == "org/a"
    assert "learning_curves.png" in hub.repo_files(f"{USER}/my-target-study", repo_type="dataset")


# -- repository snapshots ------------------------------------------------------------------------------


def test_push_and_pull_repository_round_trip(token: str, hub: LocalHub, tmp_path: Path) -> None:
    repo_id = f"{USER}/model-repository"
    with ModelRepository(tmp_path / "source.sqlite") as source:
        fill_repository(source)
        url = push_repository(source, repo_id)
        snapshot = repository_snapshot(source)
    assert url.endswith(f"/datasets/{repo_id}")
    files = hub.repo_files(repo_id, repo_type="dataset")
    assert sorted(files) == sorted([".gitattributes", "README.md", *(f"data/{t}.parquet" for t in TABLES)])

    card = DatasetCard.load(repo_id)
    card.validate()
    configs = {c["config_name"]: c for c in card.data.configs}
    assert set(configs) == {t for t in TABLES if snapshot["counts"][t]}
    assert configs["results"]["data_files"] == [{"split": "train", "path": "data/results.parquet"}]
    assert configs["results"]["default"] is True
    assert "hfselect repo pull tester/model-repository" in card.text
    assert "--repository hf://datasets/tester/model-repository" in card.text
    assert "| `imported` | accuracy |" in card.text  # the protocols found in the results
    assert [p["results"] for p in snapshot["protocols"]] == [4, 1]

    with ModelRepository(tmp_path / "empty.sqlite") as target:
        read = pull_repository(repo_id, target)
        assert read == {name: snapshot["counts"][name] for name in TABLES}
        with ModelRepository(tmp_path / "source.sqlite") as source:
            for name in TABLES:
                pd.testing.assert_frame_equal(sorted_table(target, name), sorted_table(source, name))

    # The Hub's dataset loader reads a table as a configuration.
    from datasets import load_dataset

    results = load_dataset(repo_id, "results", split="train")
    assert results.num_rows == 5 and "protocol" in results.column_names


def test_repository_push_replaces_the_snapshot_in_one_commit(
    token: str, hub: LocalHub, tmp_path: Path
) -> None:
    repo_id = f"{USER}/snap"
    hub.add_dataset(repo_id, {"data/old_table.parquet": b"stale", "notes.md": b"kept"})
    with ModelRepository(tmp_path / "repo.sqlite") as repository:
        fill_repository(repository)
        push_repository(repository, repo_id)
    files = hub.repo_files(repo_id, repo_type="dataset")
    assert "data/old_table.parquet" not in files and files["notes.md"] == b"kept"
    assert hub.count("POST", r"/commit/main$") == 1


def test_pull_errors_say_what_is_wrong(hub: LocalHub, tmp_path: Path) -> None:
    with pytest.raises(HubError, match="was not found"):
        pull_repository(f"{USER}/missing", tmp_path / "repo.sqlite")
    hub.add_dataset(f"{USER}/not-hfselect", {"README.md": b"# hi\n"})
    with pytest.raises(HfSelectError, match="holds no hfselect tables"):
        pull_repository(f"{USER}/not-hfselect", tmp_path / "repo.sqlite")


def test_resolve_repository_path_mirrors_and_follows_the_hub(
    token: str, hub: LocalHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert resolve_repository_path("/some/file.sqlite") == "/some/file.sqlite"
    assert resolve_repository_path("repo.sqlite") == "repo.sqlite"
    with pytest.raises(HubError, match="hf://datasets/USER/NAME"):
        resolve_repository_path("hf://models/tester/x")

    repo_id = f"{USER}/shared"
    with ModelRepository(tmp_path / "source.sqlite") as source:
        fill_repository(source)
        push_repository(source, repo_id)
    path = resolve_repository_path(f"hf://datasets/{repo_id}")
    assert path == str(tmp_path / "cache" / "hfselect" / "hub" / "tester--shared.sqlite")
    with ModelRepository(path) as mirror:
        assert mirror.counts()["results"] == 5

    downloads = hub.count("GET", r"/resolve/")
    assert resolve_repository_path(f"hf://datasets/{repo_id}") == path  # unchanged on the Hub
    assert hub.count("GET", r"/resolve/") == downloads

    with ModelRepository(tmp_path / "source.sqlite") as source:
        source.record_results([("org/distil", "ag_news", 0.85)])
        push_repository(source, repo_id)
    assert resolve_repository_path(f"hf://datasets/{repo_id}") == path  # pulled again
    with ModelRepository(path) as mirror:
        assert mirror.counts()["results"] == 6

    # A pinned revision gets its own mirror; offline, the existing mirror is used as it is.
    first = hub.repo_sha(repo_id, repo_type="dataset")
    pinned = resolve_repository_path(f"hf://datasets/{repo_id}@{first}")
    assert pinned.endswith(f"tester--shared@{first}.sqlite")
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert resolve_repository_path(f"hf://datasets/{repo_id}") == path
    with pytest.raises(HubError, match="offline"):
        resolve_repository_path(f"hf://datasets/{USER}/never-pulled")


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
