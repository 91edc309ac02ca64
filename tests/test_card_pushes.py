"""Pushing selection reports and repository snapshots to the Hub, and token hygiene on the way.

Everything runs against the local Hub of ``tests/hub`` (``hub`` fixture) with a fake token that the
server requires, so a test fails if the token is missing from a request that needs it, and every
pushed file, log line and output is checked for it. The reports are ``tests/test_cards.py``'s
hand-written ``report.json`` dicts.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from huggingface_hub import DatasetCard, ModelCard

from hfselect.cards import (
    SelectionReport,
    pull_repository,
    push_report,
    push_repository,
    push_study_report,
    render_report_card,
    repository_snapshot,
    resolve_repository_path,
    write_report_folder,
)
from hfselect.cards.push import push_files
from hfselect.errors import HfSelectError, HubError
from hfselect.store import TABLES, ModelRepository, Protocol
from hfselect.store.studies import COMPLETED, STOPPED, Study, Trial
from tests.hub.server import LocalHub
from tests.test_cards import FAKE_TOKEN, HOME, PNG_MAGIC, USER, make_report


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
    assert pushed["selected_model"] == "prajjwal1/bert-tiny" and pushed["saved_to"] == "selected-model"

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


def test_a_pushed_report_holds_no_absolute_local_path(token: str, hub: LocalHub, tmp_path: Path) -> None:
    report = make_report()
    local = tmp_path / "private" / "data"
    report["target"] = str(local / "my-target")
    report["saved_to"] = str(local / "run" / "selected-model")
    report["command"] = f"hfselect select {local / 'my-target'} --output {local / 'out'} --study s1"
    write_report_folder(report, tmp_path / "report")
    before = (tmp_path / "report" / "report.json").read_text()
    assert str(local) in before  # the local report keeps them: it is the user's own
    push_report(tmp_path / "report", f"{USER}/paths")
    files = hub.repo_files(f"{USER}/paths", repo_type="dataset")
    for name in ("README.md", "report.json"):
        text = files[name].decode()
        assert str(tmp_path) not in text and str(Path.home()) not in text and "~/" not in text, name
    pushed = json.loads(files["report.json"])
    # A local target keeps reading as local (./NAME), not as the Hub dataset NAME.
    assert pushed["target"] == "./my-target" and pushed["saved_to"] == "selected-model"
    assert pushed["command"] == "hfselect select my-target --output out --study s1"
    assert "hfselect select my-target --output out --study s1" in files["README.md"].decode()
    assert (tmp_path / "report" / "report.json").read_text() == before  # the local copy is unchanged


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


def test_a_poisoned_snapshot_on_the_hub_is_refused_by_pull_and_hf_paths(
    hub: LocalHub,
    filled: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.bad_input import run_cli, run_failing

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with ModelRepository(tmp_path / "source.sqlite") as source:
        source.record_results([("new/model", "new-data", 0.7)])
        source.export_parquet(tmp_path / "snapshot")
    frame = pd.read_parquet(tmp_path / "snapshot" / "results.parquet").assign(score=float("inf"))
    frame.to_parquet(tmp_path / "snapshot" / "results.parquet", index=False)
    files = {f"data/{p.name}": p.read_bytes() for p in (tmp_path / "snapshot").glob("*.parquet")}
    hub.add_dataset(f"{USER}/poisoned", files)

    status, line = run_failing(["repo", "pull", f"{USER}/poisoned"], capsys, filled)
    assert status == 1 and "results.parquet row 1 column score: inf is not a finite number" in line
    status, lines = run_cli(["repo", "info", "--repository", f"hf://datasets/{USER}/poisoned"], capsys)
    assert status == 1 and len(lines) == 1 and "inf is not a finite number" in lines[0]
    assert not list((tmp_path / "cache" / "hfselect" / "hub").iterdir())  # no mirror, not even a partial one


@pytest.mark.parametrize("revision", ["../../../x", "..", "/etc", "a b", "main:x"])
def test_a_malformed_pull_revision_is_a_usage_error_and_creates_no_file(
    revision: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.bad_input import run_cli

    path = tmp_path / "new.sqlite"
    status, lines = run_cli(
        ["repo", "pull", f"{USER}/snap", "--revision", revision, "--repository", str(path)], capsys
    )
    assert (
        status == 2
        and f"error: argument --revision: expected a branch, tag or commit, not {revision!r}" in lines[-1]
    )
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="revision must be a branch, tag or commit"):
        pull_repository(f"{USER}/snap", path, revision=revision)
    with pytest.raises(ValueError, match="revision must be a branch, tag or commit"):
        resolve_repository_path(f"hf://datasets/{USER}/snap@..")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_pull_leaves_no_new_repository_file(
    hub: LocalHub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.bad_input import run_cli

    path = tmp_path / "new.sqlite"
    hub.add_dataset(f"{USER}/broken", {"data/results.parquet": b"not parquet"})
    for argv in (["repo", "pull", f"{USER}/missing"], ["repo", "pull", f"{USER}/broken"],
                 ["repo", "pull", f"{USER}/broken", "--revision", "no-such-branch"]):  # fmt: skip
        status, lines = run_cli([*argv, "--repository", str(path)], capsys)
        assert status == 1 and len(lines) == 1, lines
        assert list(tmp_path.iterdir()) == [], argv
