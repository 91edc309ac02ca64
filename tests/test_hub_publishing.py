"""Reports and repository snapshots on the (local) Hub, through the command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import DatasetCard

from hfselect.api import recall
from hfselect.cards import pull_repository, push_repository
from hfselect.store import ModelRepository

TOKEN = "hf_FAKEtokenForPublishing0987654321"
TRAINING = ["--epochs", "2", "--learning-rate", "1e-2", "--batch-size", "16", "--max-length", "32"]


@pytest.fixture
def repository_copy(tiny_benchmarks: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "repo.sqlite"
    copy.write_bytes(tiny_benchmarks.read_bytes())
    return copy


def test_select_pushes_its_report_card_without_the_token(
    hub, tiny_assets: Path, repository_copy: Path, tmp_path: Path
) -> None:
    hub.require_token = TOKEN
    output = tmp_path / "report"
    result = subprocess.run(
        [sys.executable, "-m", "hfselect", "select", str(tiny_assets / "datasets" / "topic"), "--repository",
         str(repository_copy), "--candidates", "2", "--output", str(output), "--push-to-hub", "tester/selection",
         "--quiet", *TRAINING],
        env={**os.environ, "HF_TOKEN": TOKEN},
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert TOKEN not in result.stdout + result.stderr
    files = hub.repo_files("tester/selection", repo_type="dataset")
    assert {"README.md", "report.json", "learning_curves.png"} <= set(files)
    assert all(TOKEN.encode() not in content for content in files.values())
    assert files["learning_curves.png"].startswith(b"\x89PNG")
    card = DatasetCard.load("tester/selection", repo_type="dataset", token=TOKEN)
    assert "hfselect" in card.data.tags and "model-selection" in card.data.tags
    selected = (
        next(line for line in result.stdout.splitlines() if line.startswith("selected "))
        .split()[1]
        .rstrip(":")
    )
    assert selected in card.text


def test_select_without_a_token_says_what_to_do(
    hub, tiny_assets: Path, repository_copy: Path, tmp_path: Path
) -> None:
    hub.require_token = TOKEN
    result = subprocess.run(
        [sys.executable, "-m", "hfselect", "select", str(tiny_assets / "datasets" / "topic"), "--repository",
         str(repository_copy), "--candidates", "2", "--output", str(tmp_path / "out"), "--push-to-hub",
         "tester/selection", "--quiet", *TRAINING],
        env={key: value for key, value in os.environ.items() if key != "HF_TOKEN"},
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "hf auth login" in result.stderr.splitlines()[-1]
    assert (tmp_path / "out" / "report.json").exists()  # nothing already written is lost


def test_pushed_and_pulled_repository_gives_the_same_recall(
    hub, tiny_assets: Path, repository_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub.require_token = TOKEN
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    target = str(tiny_assets / "datasets" / "topic")
    with ModelRepository(repository_copy) as original:
        # The zoo's models are local folders: the pulled copy needs their locations to load them.
        push_repository(original, "tester/zoo-repository", include_local_paths=True)
        before = recall(target, original, proxy="logme", sample_size=100, progress=False)
    with ModelRepository(tmp_path / "empty.sqlite") as pulled:
        pull_repository("tester/zoo-repository", pulled)
        after = recall(target, pulled, proxy="logme", sample_size=100, progress=False)
        assert pulled.counts()["results"] == 3
    assert after.models == before.models
    assert after.scores == pytest.approx(before.scores)
