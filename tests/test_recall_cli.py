"""`hfselect recall` end to end: a target served by the local Hub, by its Hub id."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from huggingface_hub import HfApi

from hfselect.core.scopes import DEFAULT_SCOPE


def test_recall_on_a_hub_dataset_id(hub, tiny_assets: Path, tiny_benchmarks: Path, tmp_path: Path) -> None:
    api = HfApi(token="hf_test_token")
    api.create_repo("zoo/topic", repo_type="dataset", exist_ok=True)
    api.upload_folder(
        folder_path=tiny_assets / "datasets" / "topic", repo_id="zoo/topic", repo_type="dataset"
    )
    repository = tmp_path / "repo.sqlite"
    repository.write_bytes(tiny_benchmarks.read_bytes())
    result = subprocess.run(
        [sys.executable, "-m", "hfselect", "recall", "zoo/topic", "--repository", str(repository),
         "--top-k", "2", "--sample-size", "64", "--json", str(tmp_path / "recall.json"), "--quiet"],
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "recall.json").read_text())
    assert report["target"] == "zoo/topic" and len(report["models"]) == 2
    assert set(report["models"]) <= {"bert-a", "distil-b", "bert-headless"}
    # bert-headless has no trained head: LEEP is replaced by LogME for every model, and the output says so.
    assert report["proxy"] == "logme" and "LogME" in result.stdout.replace("logme", "LogME")
    assert "rank" in result.stdout and "score from" in result.stdout
    # hfselect's default rule, and per model what its score came from.
    assert report["scope"] == DEFAULT_SCOPE == "evidence" and "own proxy" in result.stdout
    assert all(entry["source"] in result.stdout for entry in report["entries"])
    assert hub.count("GET", r"^/datasets/zoo/topic/resolve/") > 0


def test_recall_on_an_empty_repository_says_what_to_do(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "hfselect",
            "recall",
            str(tmp_path),
            "--repository",
            str(tmp_path / "empty.sqlite"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "hfselect crawl" in result.stderr
