"""The Hub crawler against the local Hub server, over real HTTP with the real huggingface_hub client."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save as save_safetensors

from hfselect.hub.crawler import Crawler, CrawlOptions
from hfselect.store import ModelRepository

TOTAL_MODELS = 600
WEIGHTS = save_safetensors({"weight": np.zeros((3, 4), dtype=np.float32)})


def model_plan(index: int) -> dict:
    """The deterministic shape of fake model number ``index``."""
    return {
        "repo_id": f"org{index % 3}/model-{index:03d}",
        "downloads": 10_000 - index,  # unique, so the expected order is known
        "likes": index % 17,
        "pipeline_tag": "fill-mask" if index % 5 == 4 else "text-classification",
        "gated": "auto" if index % 7 == 3 else False,
        "safetensors": index % 11 != 5,
        "custom_code": index % 29 == 8,
        "config": index % 31 != 9,
        "num_labels": 2 + index % 3,
    }


def model_files(plan: dict) -> dict[str, bytes]:
    files: dict[str, bytes] = {"README.md": b"---\nlicense: mit\n---\n# model\n"}
    if plan["config"]:
        config = {
            "architectures": ["BertForSequenceClassification"],
            "model_type": "bert",
            "hidden_size": 32,
            "id2label": {str(i): f"class_{i}" for i in range(plan["num_labels"])},
        }
        if plan["custom_code"]:
            config["auto_map"] = {"AutoModel": "modeling_custom.CustomModel"}
        files["config.json"] = json.dumps(config).encode()
    files["model.safetensors" if plan["safetensors"] else "pytorch_model.bin"] = WEIGHTS
    return files


@pytest.fixture(scope="module")
def crawl_hub(local_hub):
    """The local Hub holding 600 fake models (gated, pickle-only, custom-code and config-less ones among them)."""
    local_hub.reset()
    for index in range(TOTAL_MODELS):
        plan = model_plan(index)
        local_hub.add_model(
            plan["repo_id"],
            model_files(plan),
            downloads=plan["downloads"],
            likes=plan["likes"],
            gated=plan["gated"],
            pipeline_tag=plan["pipeline_tag"],
            library_name="transformers",
            license="mit",
            card_data={"license": "mit"},
        )
    yield local_hub
    local_hub.reset()


@pytest.fixture
def hub(crawl_hub, hf_cache):
    """The crawl Hub with no pending faults, an empty request log and a fresh client cache."""
    crawl_hub.clear_faults()
    crawl_hub.clear_requests()
    return crawl_hub


def expected_listing(limit: int) -> list[dict]:
    plans = [model_plan(i) for i in range(TOTAL_MODELS)]
    listed = [plan for plan in plans if plan["pipeline_tag"] == "text-classification"]
    listed.sort(key=lambda plan: -plan["downloads"])
    return listed[:limit]


def expected_stored(limit: int) -> set[str]:
    return {
        plan["repo_id"]
        for plan in expected_listing(limit)
        if not plan["gated"] and plan["safetensors"] and plan["config"] and not plan["custom_code"]
    }


def config_downloads(hub) -> int:
    return hub.count("GET", r"/resolve/.*/config\.json")


def run_crawl(repository: ModelRepository, limit: int = 150, **options):
    return Crawler(
        repository,
        CrawlOptions(pipeline_tag="text-classification", limit=limit, max_retry_time_s=20, **options),
    ).crawl(progress=False)


def test_crawl_stores_expected_models_through_faults(hub, tmp_path: Path) -> None:
    # A 429 on the second listing page and a dropped connection on one config download.
    hub.inject_fault(r"^/api/models\?.*cursor=", "429", times=1, retry_after=1)
    victim = sorted(expected_stored(150))[3]
    hub.inject_fault(rf"^/{victim}/resolve/.*/config\.json", "drop", times=1)

    with ModelRepository(tmp_path / "repo.sqlite") as repository:
        summary = run_crawl(repository)
        stored = {model["model_id"]: model for model in repository.models()}

    assert summary.listed == 150
    assert set(stored) == expected_stored(150)
    assert summary.new == len(stored)
    assert summary.failed == {}
    assert summary.skipped["gated"] == sum(1 for plan in expected_listing(150) if plan["gated"])
    listing_pages = hub.count("GET", r"^/api/models(\?|$)")
    assert listing_pages == 3  # page 1, page 2 refused with 429, page 2 again
    assert hub.count("GET", r"/resolve/.*/model\.safetensors") == 0  # only configs are fetched

    model = stored[victim]
    index = int(victim.rsplit("-", 1)[1])
    plan = model_plan(index)
    assert model["sha"] == hub.repo_sha(victim)
    assert model["architecture"] == "BertForSequenceClassification"
    assert model["model_type"] == "bert"
    assert model["num_labels"] == plan["num_labels"]
    assert model["id2label"] == {str(i): f"class_{i}" for i in range(plan["num_labels"])}
    assert model["hidden_size"] == 32
    assert model["downloads"] == plan["downloads"]
    assert model["likes"] == plan["likes"]
    assert model["pipeline_tag"] == "text-classification"
    assert model["library"] == "transformers"
    assert model["license"] == "mit"
    assert model["has_safetensors"] == 1
    assert model["num_parameters"] == 12
    assert model["gated"] is None
    assert "transformers" in model["tags"]
    assert model["crawled_at"]


def test_second_crawl_downloads_no_config_and_updates_changed_models(hub, tmp_path: Path) -> None:
    with ModelRepository(tmp_path / "repo.sqlite") as repository:
        first = run_crawl(repository, limit=60)
        assert config_downloads(hub) > 0
        hub.clear_requests()
        second = run_crawl(repository, limit=60)
        assert config_downloads(hub) == 0
        assert second.unchanged == first.new and second.new == 0

        changed = sorted(expected_stored(60))[0]
        hub.update_file(
            changed, "config.json", json.dumps({"model_type": "roberta", "num_labels": 5}).encode()
        )
        hub.clear_requests()
        third = run_crawl(repository, limit=60)
        assert (third.updated, config_downloads(hub)) == (1, 1)
        assert repository.get_model(changed)["model_type"] == "roberta"
        assert repository.get_model(changed)["num_labels"] == 5


def test_interrupted_crawl_resumes_without_loss_or_duplicates(hub, tmp_path: Path) -> None:
    class Stop(Exception):
        pass

    seen: list[str] = []

    def stop_after_forty(model_id: str, outcome: str) -> None:
        seen.append(model_id)
        if len(seen) == 40:
            raise Stop

    with ModelRepository(tmp_path / "repo.sqlite") as repository:
        crawler = Crawler(repository, CrawlOptions(pipeline_tag="text-classification", limit=150))
        with pytest.raises(Stop):
            crawler.crawl(progress=False, on_model=stop_after_forty)
        stored_before = {model["model_id"] for model in repository.models()}
        assert 0 < len(stored_before) < len(expected_stored(150))
        hub.clear_requests()
        summary = run_crawl(repository)
        assert {model["model_id"] for model in repository.models()} == expected_stored(150)
        assert summary.unchanged == len(stored_before)
        # Only the models not reached before the interruption need their config (custom-code ones too).
        not_reached = [
            plan
            for plan in expected_listing(150)[40:]
            if not plan["gated"] and plan["safetensors"] and plan["config"]
        ]
        assert config_downloads(hub) == len(not_reached)


def test_killed_crawl_process_resumes(hub, tmp_path: Path) -> None:
    # Slow every config download down with a 429 (Retry-After: 1) so the process can be killed midway.
    for repo_id in sorted(expected_stored(150)):
        hub.inject_fault(rf"^/{repo_id}/resolve/.*/config\.json", "429", times=1, retry_after=1)
    path = tmp_path / "repo.sqlite"
    command = [sys.executable, "-m", "hfselect", "crawl", "--pipeline-tag", "text-classification"]
    command += ["--limit", "150", "--repository", str(path), "--quiet"]
    process = subprocess.Popen(
        command, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if path.exists():
                with ModelRepository(path) as repository:
                    if repository.counts()["models"] >= 5:
                        break
            time.sleep(0.2)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    with ModelRepository(path) as repository:
        partial = repository.counts()["models"]
    assert 5 <= partial < len(expected_stored(150))

    hub.clear_faults()
    with ModelRepository(path) as repository:
        summary = run_crawl(repository)
        assert {model["model_id"] for model in repository.models()} == expected_stored(150)
        assert summary.new == len(expected_stored(150)) - partial
        assert repository.counts()["models"] == len(expected_stored(150))


def test_allow_pickle_and_include_gated(hub, tmp_path: Path) -> None:
    with ModelRepository(tmp_path / "no-token.sqlite") as repository:
        summary = run_crawl(repository, limit=20, include_gated=True)
    gated = {plan["repo_id"] for plan in expected_listing(20) if plan["gated"] and plan["safetensors"]}
    assert set(summary.failed) == gated
    assert all("gated" in reason for reason in summary.failed.values())

    with ModelRepository(tmp_path / "repo.sqlite") as repository:
        # Gated files need a token (the local Hub grants access to any).
        summary = run_crawl(
            repository, limit=80, include_gated=True, allow_pickle=True, token="hf_test_token"
        )
        stored = {model["model_id"] for model in repository.models()}
    expected = {
        plan["repo_id"] for plan in expected_listing(80) if plan["config"] and not plan["custom_code"]
    }
    assert stored == expected
    assert summary.skipped["custom code"] == sum(
        1 for plan in expected_listing(80) if plan["custom_code"] and plan["config"]
    )


def test_min_downloads_stops_the_sorted_listing(hub, tmp_path: Path) -> None:
    with ModelRepository(tmp_path / "repo.sqlite") as repository:
        summary = run_crawl(repository, limit=None, min_downloads=10_000 - 40)
    # Models 0..40 have at least that many downloads; the listing stops at the first below it.
    assert summary.listed == sum(
        1 for i in range(42) if model_plan(i)["pipeline_tag"] == "text-classification"
    )


def run_cli_crawl(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """``hfselect crawl --limit 5`` in a subprocess with ``env``."""
    command = [
        sys.executable,
        "-m",
        "hfselect",
        "crawl",
        "--limit",
        "5",
        "--repository",
        str(tmp_path / "r.sqlite"),
    ]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=90)


def test_cli_unreachable_hub_exits_nonzero_without_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "HF_ENDPOINT": "http://127.0.0.1:9"}
    started = time.monotonic()
    result = run_cli_crawl(tmp_path, env)
    assert result.returncode != 0
    assert time.monotonic() - started < 60
    assert "Traceback" not in result.stderr
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert len(lines) <= 4
    assert "cannot reach the Hub at http://127.0.0.1:9" in result.stderr


def test_cli_offline_mode_is_one_clear_error(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = run_cli_crawl(tmp_path, env)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "offline mode" in result.stderr


def test_cli_bad_token_is_one_clear_error(hub, tmp_path: Path) -> None:
    hub.inject_fault(r"^/api/models", "401", times=100)
    env = {**os.environ, "HF_TOKEN": "hf_fake_bad_token_123"}
    result = run_cli_crawl(tmp_path, env)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "rejected the token" in result.stderr
    assert "hf_fake_bad_token_123" not in result.stdout + result.stderr
