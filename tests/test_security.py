"""No code from the Hub runs unasked, no local path is published unasked, ignored custom code is said."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pytest

from hfselect.errors import HfSelectError
from hfselect.store import ModelRepository, Protocol, Study
from hfselect.training.bench import BenchConfig
from tests.bad_input import run_cli
from tests.hub.server import LocalHub
from tests.test_cards import FAKE_TOKEN, HOME, USER, make_report

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


@pytest.fixture
def with_local_paths(tmp_path: Path) -> Path:
    path = tmp_path / "repo.sqlite"
    with ModelRepository(path) as repository:
        repository.upsert_model("bert-a", source="local", location="/home/alice/zoo/models/bert-a")
        repository.upsert_model("org/hub-model", source="hub")
        repository.record_result("bert-a", "topic", 0.8, Protocol(epochs=1))
        repository.record_result(
            "org/hub-model", "topic", None, Protocol(epochs=1), status="failed",
            error="cannot load model /home/alice/zoo/models/x: see https://huggingface.co/org/hub-model",
        )  # fmt: skip
        Study(repository, "s1", target="/home/alice/data/topic")
        Study(repository, "s2", target="nyu-mll/glue:sst2")
    return path


def test_export_publishes_no_local_path_unless_asked(
    with_local_paths: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _ = run_cli(
        ["repo", "export", str(tmp_path / "public"), "--repository", str(with_local_paths)], capsys
    )
    assert status == 0
    exported = b"".join(path.read_bytes() for path in (tmp_path / "public").glob("*.parquet"))
    assert b"/home/alice" not in exported
    models = pd.read_parquet(tmp_path / "public" / "models.parquet")
    assert "location" not in models.columns
    studies = pd.read_parquet(tmp_path / "public" / "studies.parquet").set_index("study_id")
    assert studies.loc["s1", "target"] == "topic" and studies.loc["s2", "target"] == "nyu-mll/glue:sst2"
    error = pd.read_parquet(tmp_path / "public" / "results.parquet").dropna(subset=["error"])["error"].iloc[0]
    assert error == "cannot load model x: see https://huggingface.co/org/hub-model"

    argv = [
        "repo",
        "export",
        str(tmp_path / "full"),
        "--include-local-paths",
        "--repository",
        str(with_local_paths),
    ]
    assert run_cli(argv, capsys)[0] == 0
    models = pd.read_parquet(tmp_path / "full" / "models.parquet").set_index("model_id")
    assert models.loc["bert-a", "location"] == "/home/alice/zoo/models/bert-a"


def test_importing_a_public_export_keeps_the_local_locations(with_local_paths: Path, tmp_path: Path) -> None:
    with ModelRepository(with_local_paths) as repository:
        repository.export_parquet(tmp_path / "public")
        repository.import_parquet(tmp_path / "public")
        assert repository.get_model("bert-a")["location"] == "/home/alice/zoo/models/bert-a"


def test_custom_code_in_a_built_in_model_type_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from hfselect.models import load_classifier
    from tests.assets import make_model

    folder = make_model(tmp_path / "shipped-custom", "bert")
    plain = make_model(tmp_path / "plain", "bert")
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForSequenceClassification": "modeling_custom.CustomModel"}
    (folder / "config.json").write_text(json.dumps(config))
    with caplog.at_level(logging.WARNING, logger="hfselect.models"):
        model = load_classifier(str(plain), num_labels=2)
        assert not caplog.records
        model = load_classifier(str(folder), num_labels=2)
    assert type(model).__name__ == "BertForSequenceClassification"  # the built-in class; no custom code ran
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1 and str(folder) in warnings[0] and "custom code" in warnings[0]


def test_report_push_publishes_no_local_path(
    hub: LocalHub, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from hfselect.cards import write_report_folder

    hub.require_token = FAKE_TOKEN
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    target = "/srv/alice/data/ag_news"
    data = make_report(target, hub_models=False)  # local models (specs under the home folder)
    data["command"] = f"hfselect select {target} --output=/srv/alice/runs/out --repository ~/zoo/repo.sqlite"
    data["selection"]["candidates"][1]["reason"] = "worse half; its folder was /srv/alice/models/distil"
    written = write_report_folder(data, tmp_path / "report")
    local = written["report.json"].read_bytes()
    assert b"/srv/alice/data/ag_news" in local and HOME.encode() in local  # the local report keeps them

    status, _ = run_cli(["report", "push", str(tmp_path / "report"), "--repo-id", f"{USER}/public"], capsys)
    assert status == 0 and written["report.json"].read_bytes() == local
    files = hub.repo_files(f"{USER}/public", repo_type="dataset")
    for name in ("README.md", "report.json"):
        text = files[name].decode()
        assert "/srv/alice" not in text and HOME not in text and "~/" not in text, name
    pushed = json.loads(files["report.json"])
    assert pushed["target"] == pushed["selection"]["target"] == "./ag_news"  # still reads as local
    assert pushed["saved_to"] == "selected-model"
    assert pushed["selection"]["candidates"][0]["spec"] == "tiny-bert-sentiment"
    assert pushed["command"] == "hfselect select ag_news --output=out --repository repo.sqlite"
    card = files["README.md"].decode()
    assert "`ag_news` (a local dataset)" in card and "huggingface.co/datasets/ag_news" not in card
    assert "\nhfselect select ag_news --output=out --repository repo.sqlite\n" in card
    assert "worse half; its folder was distil" in card
