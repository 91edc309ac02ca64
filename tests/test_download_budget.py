"""What a recall downloads for its proxies, said first and kept under --max-download."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from hfselect.api import recall
from hfselect.core.recall import models_needing_proxy
from hfselect.core.scopes import DEFAULT_SCOPE
from hfselect.hub.download_budget import (
    DownloadBudgetError,
    ModelDownload,
    format_size,
    hub_model_download,
    parse_size,
    plan_proxy_downloads,
)
from hfselect.starters import init_starter, load_starter
from hfselect.store import ModelRepository

MB = 10**6


def test_sizes_parse_and_print() -> None:
    assert (
        parse_size("2GB") == 2 * 10**9
        and parse_size("500 MB") == 500 * MB
        and parse_size("1.5GiB") == 1.5 * 2**30
    )
    assert parse_size("1000") == 1000 and parse_size("10kb") == 10_000
    for bad in ("two GB", "5 parsecs", "", "-1GB"):
        with pytest.raises(ValueError, match="is not a size"):
            parse_size(bad)
    assert [format_size(n) for n in (0, 999, 12_345, 420 * MB, 1_300 * MB, 17 * 10**9)] == [
        "0 B",
        "999 B",
        "12.3 kB",
        "420 MB",
        "1.3 GB",
        "17.0 GB",
    ]


@pytest.fixture
def starter_repository(tmp_path: Path) -> ModelRepository:
    repository = ModelRepository(tmp_path / "starter.sqlite")
    init_starter(repository, "paper-nlp")
    yield repository
    repository.close()


def fake_hub(sizes: dict[str, int], no_weights: frozenset[str] = frozenset()):
    """A stand-in for hub_model_download: every model weighs 100 MB unless ``sizes`` says otherwise."""
    calls: list[str] = []

    def lookup(model_id: str, *, allow_pickle: bool = False, token: object = None) -> ModelDownload:
        calls.append(model_id)
        kind = "none" if model_id in no_weights else "safetensors"
        return ModelDownload(
            model_id, total_bytes=sizes.get(model_id, 100 * MB), weights=kind, pickle_bytes=7
        )

    lookup.calls = calls  # type: ignore[attr-defined]
    return lookup


def test_every_model_is_sized_before_anything_is_downloaded(starter_repository: ModelRepository) -> None:
    plan = plan_proxy_downloads(
        starter_repository, scope="every", threshold=0.09, k_largest=5, lookup=fake_hub({})
    )
    assert plan.scope == "every" and plan.size("every") == 39 * 100 * MB
    assert plan.lines()[0].startswith(
        "proxy downloads: 39 models need a proxy score (scope every), 39 from the Hub: 3.9 GB to download"
    )


def test_over_the_budget_the_representatives_rule_is_used_and_said(
    starter_repository: ModelRepository,
) -> None:
    representatives = models_needing_proxy(
        starter_repository.performance_matrix(), 0.09, 5, "representatives"
    )
    plan = plan_proxy_downloads(
        starter_repository,
        scope="every",
        threshold=0.09,
        k_largest=5,
        max_download=parse_size("1GB"),
        lookup=fake_hub({}),
    )
    assert plan.switched and plan.scope == "representatives"
    assert plan.needed["representatives"] == representatives and plan.size("representatives") == 8 * 100 * MB
    text = "\n".join(plan.lines())
    assert "over --max-download 1.0 GB: using the paper's representatives rule instead" in text
    assert "8 models, 800 MB to download" in text


def test_over_the_budget_even_with_representatives_says_what_to_do(
    starter_repository: ModelRepository,
) -> None:
    with pytest.raises(DownloadBudgetError) as error:
        plan_proxy_downloads(
            starter_repository,
            scope="every",
            threshold=0.09,
            k_largest=5,
            max_download=500 * MB,
            lookup=fake_hub({}),
        )
    assert "raise --max-download to at least 800 MB" in str(error.value) and "--proxy-scores" in str(
        error.value
    )
    assert (
        "and so is the paper's representatives rule (one proxy per cluster): 8 models, 800 MB"
        in "\n".join(error.value.plan.lines())
    )


def test_a_representative_without_safetensors_hands_its_cluster_to_another_member(
    starter_repository: ModelRepository,
) -> None:
    performance = starter_repository.performance_matrix()
    first = models_needing_proxy(performance, 0.09, 5, "representatives")[0]
    plan = plan_proxy_downloads(
        starter_repository,
        scope="representatives",
        threshold=0.09,
        k_largest=5,
        lookup=fake_hub({}, no_weights=frozenset({first})),
    )
    # The recall skips it and proxies the next member of its cluster: the plan sizes that one.
    stand_in = models_needing_proxy(performance.drop(index=[first]), 0.09, 5, "representatives")
    assert set(plan.needed["representatives"]) == {first, *stand_in} and len(stand_in) == 8
    assert plan.size("representatives") == 8 * 100 * MB
    assert "1 has no safetensors weights and will be skipped: " + first in "\n".join(plan.lines())


def test_models_in_local_folders_download_nothing(tiny_benchmarks: Path, tmp_path: Path) -> None:
    shutil.copy(tiny_benchmarks, tmp_path / "repo.sqlite")
    lookup = fake_hub({})
    with ModelRepository(tmp_path / "repo.sqlite") as repository:
        plan = plan_proxy_downloads(
            repository, scope="every", threshold=0.09, k_largest=5, max_download=1, lookup=lookup
        )
    assert plan.lines() == [] and lookup.calls == [] and len(plan.local) == 3


# -- against the local Hub: tiny stand-ins published under the starter's real ids -------------------------


@pytest.fixture
def starter_hub(hub, tiny_assets: Path):
    """Every paper-nlp model id as a tiny BERT (one of them with pickle weights only), and stanfordnlp/imdb."""
    folder = tiny_assets / "models" / "bert-a"
    files = {path.name: path.read_bytes() for path in folder.iterdir() if path.is_file()}
    performance_models = load_starter("paper-nlp").models
    pickle_only = performance_models[0]
    for model_id in performance_models:
        published = dict(files)
        if model_id == pickle_only:
            published["pytorch_model.bin"] = published.pop("model.safetensors")
        hub.add_model(model_id, published, pipeline_tag="text-classification")
    hub.add_dataset("stanfordnlp/imdb", tiny_assets / "datasets" / "sentiment")
    return SimpleNamespace(hub=hub, pickle_only=pickle_only, weights_size=len(files["model.safetensors"]))


def cached_blob_bytes(cache: Path, model_ids: list[str]) -> int:
    """Bytes the Hub cache holds for these models (what was really downloaded)."""
    total = 0
    for model_id in model_ids:
        blobs = cache / "hub" / f"models--{model_id.replace('/', '--')}" / "blobs"
        total += sum(path.stat().st_size for path in blobs.iterdir()) if blobs.is_dir() else 0
    return total


def test_the_estimate_is_what_the_recall_downloads_and_a_rerun_downloads_nothing(
    starter_hub, starter_repository: ModelRepository, hf_cache: Path
) -> None:
    pickle_only = hub_model_download(starter_hub.pickle_only)
    assert pickle_only.weights == "none" and pickle_only.to_download == 0 and pickle_only.pickle_bytes > 0
    assert hub_model_download(starter_hub.pickle_only, allow_pickle=True).weights == "pickle"
    assert "not found" in hub_model_download("nobody/nothing").error

    plan = plan_proxy_downloads(starter_repository, scope="representatives", threshold=0.09, k_largest=5)
    assert starter_hub.hub.count("GET", r"/resolve/") == 0  # nothing downloaded to size it
    needed = plan.needed["representatives"]
    assert len(needed) == 8 and plan.size("representatives") > len(needed) * starter_hub.weights_size

    recalled = recall(
        "stanfordnlp/imdb", starter_repository, scope="representatives", sample_size=32, progress=False
    )
    assert sorted(recalled.proxied_models) == sorted(needed)
    assert cached_blob_bytes(hf_cache, needed) == plan.size("representatives")

    again = plan_proxy_downloads(starter_repository, scope="representatives", threshold=0.09, k_largest=5)
    assert again.size("representatives") == 0
    assert "already in the Hub cache" in again.lines()[0] and "0 B to download" in again.lines()[0]


def test_recall_cli_on_a_hub_dataset_honours_max_download(
    starter_hub, starter_repository: ModelRepository, hf_cache: Path
) -> None:
    every = plan_proxy_downloads(starter_repository, scope="every", threshold=0.09, k_largest=5)
    budget = every.size("every") // 2  # the 8 representatives fit, the 38 loadable models do not
    result = subprocess.run(
        [sys.executable, "-m", "hfselect", "recall", "stanfordnlp/imdb", "--repository", str(starter_repository.path),
         "--max-download", str(budget), "--sample-size", "32", "--top-k", "5", "--quiet"],
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    # The CLI runs the default rule, which proxies every model as "every" does.
    assert f"proxy downloads: 39 models need a proxy score (scope {DEFAULT_SCOPE}), 39 from the Hub" in out
    assert f"1 has no safetensors weights and will be skipped: {starter_hub.pickle_only}" in out
    assert "using the paper's representatives rule instead" in out and "8 models" in out
    assert "representative of cluster" in out and "5 of 39 models recalled for stanfordnlp/imdb" in out
    # Only the representatives' weights came down, each once, into the usual Hub cache.
    assert starter_hub.hub.count("GET", r"/resolve/[0-9a-f]{40}/model\.safetensors$") == 8
    assert cached_blob_bytes(hf_cache, every.needed["every"]) <= budget
