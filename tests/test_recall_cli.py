"""`hfselect recall` end to end: a target served by the local Hub, by its Hub id."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
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


def test_recall_with_no_flags_is_coarse_recall_with_no_rule_argument(
    filled: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`hfselect recall` and `coarse_recall(performance, proxy_scores, top_k=...)` share one rule."""
    from hfselect.cli import main
    from hfselect.config import DEFAULT_TOP_K
    from hfselect.core.recall import coarse_recall
    from hfselect.store import ModelRepository

    scores = {"org/a": -0.2, "org/b": -0.1, "org/c": -0.4}
    (tmp_path / "scores.csv").write_text(
        "model_id,score\n" + "".join(f"{m},{s}\n" for m, s in scores.items())
    )
    out = tmp_path / "recall.json"
    argv = ["recall", "t", "--repository", str(filled), "--proxy-scores", str(tmp_path / "scores.csv")]
    assert main([*argv, "--json", str(out)]) == 0
    from_cli = json.loads(out.read_text())
    with ModelRepository(filled, create=False) as repository:
        performance = repository.performance_matrix()
    direct = coarse_recall(performance, scores, top_k=DEFAULT_TOP_K)
    assert from_cli["scope"] == direct.scope == DEFAULT_SCOPE
    assert from_cli["models"] == direct.models and from_cli["scores"] == pytest.approx(direct.scores)
    assert [entry["source"] for entry in from_cli["entries"]] == [entry.source for entry in direct.entries]


def test_cluster_shows_the_representatives_the_recall_uses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hfselect.cli import main
    from hfselect.core.recall import coarse_recall
    from hfselect.store import ModelRepository

    path = str(tmp_path / "paper.sqlite")
    assert main(["repo", "init", "--starter", "paper-nlp", "--repository", path]) == 0
    capsys.readouterr()
    assert main(["cluster", "--json", "--repository", path]) == 0
    clusters = json.loads(capsys.readouterr().out)["clusters"]
    with ModelRepository(path, create=False) as repository:
        performance = repository.performance_matrix()
    recall = coarse_recall(performance, dict.fromkeys(performance.index, -1.0), scope="representatives")
    shown = {c["cluster"]: c["representative"] for c in clusters if c["size"] > 1}
    assert shown == recall.representatives and len(shown) == 8
    for cluster in clusters:  # the representative first, then the members by mean score
        assert cluster["members"][0] == cluster["representative"]
