"""Numeric options are checked before anything runs: a usage error at the command line, ValueError in the API.

A wrong number must never become a stored result (``bench --epochs 0`` used to store an untrained
model's score as a finished benchmark), so each case also checks the repository is unchanged.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from hfselect.core.clustering import ModelClustering
from hfselect.hub.crawler import CrawlOptions
from hfselect.store import ModelRepository
from hfselect.training.bench import BenchConfig
from hfselect.training.selection import SelectConfig
from tests.bad_input import run_cli, run_failing

BENCH = ["bench", "--models", "m", "--datasets", "d"]


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        ([*BENCH, "--epochs", "0"], "--epochs"),
        ([*BENCH, "--epochs", "-1"], "--epochs"),
        ([*BENCH, "--learning-rate", "0"], "--learning-rate"),
        ([*BENCH, "--learning-rate", "nan"], "--learning-rate"),
        ([*BENCH, "--batch-size", "0"], "--batch-size"),
        ([*BENCH, "--max-length", "0"], "--max-length"),
        ([*BENCH, "--train-samples", "0"], "--train-samples"),
        ([*BENCH, "--eval-samples", "-5"], "--eval-samples"),
        ([*BENCH, "--seed", "-1"], "--seed"),
        ([*BENCH, "--ray", "--cpus-per-pair", "-5"], "--cpus-per-pair"),
        ([*BENCH, "--ray", "--cpus-per-pair", "0"], "--cpus-per-pair"),
        ([*BENCH, "--ray", "--gpus-per-pair", "-1"], "--gpus-per-pair"),
        ([*BENCH, "--ray", "--gpus-per-pair", "nan"], "--gpus-per-pair"),
        (["select", "target", "--ray", "--cpus-per-pair", "inf"], "--cpus-per-pair"),
        ([*BENCH, "--shard", "3/2"], "--shard"),
        ([*BENCH, "--shard", "a/b"], "--shard"),
        ([*BENCH, "--shard", "1/0"], "--shard"),
        ([*BENCH, "--shard", "-1/2"], "--shard"),
        ([*BENCH, "--shard", "0/1/2"], "--shard"),
        (["select", "target", "--candidates", "0"], "--candidates"),
        (["select", "target", "--epochs", "-1"], "--epochs"),
        (["recall", "target", "--top-k", "0"], "--top-k"),
        (["recall", "target", "--sample-size", "0"], "--sample-size"),
        (["recall", "target", "--threshold", "-0.1"], "--threshold"),
        (["cluster", "--threshold", "abc"], "--threshold"),
        (["cluster", "--k-largest", "0"], "--k-largest"),
        (["cluster", "--method", "kmeans", "--n-clusters", "0"], "--n-clusters"),
        (["crawl", "--limit", "0"], "--limit"),
        (["crawl", "--min-downloads", "-1"], "--min-downloads"),
        (["zoo", "build", "zoo", "--seed", "-2"], "--seed"),
    ],
)
def test_out_of_range_numbers_are_usage_errors(
    argv: list[str], option: str, filled: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, line = run_failing(argv, capsys, filled)
    assert status == 2  # like every argparse usage error
    assert f"error: argument {option}: expected" in line


def test_a_cluster_threshold_of_silhouette_is_still_accepted(filled: Path, capsys) -> None:
    status, _ = run_cli(
        ["cluster", "--threshold", "silhouette", "--k-largest", "1", "--repository", str(filled)], capsys
    )
    assert status == 0


@pytest.mark.parametrize(
    "fields",
    [
        {"epochs": 0},
        {"epochs": -1},
        {"epochs": 1.5},
        {"learning_rate": 0},
        {"learning_rate": float("inf")},
        {"batch_size": 0},
        {"max_length": 0},
        {"train_samples": 0},
        {"eval_samples": 0},
        {"seed": -1},
    ],
)
def test_the_api_refuses_the_same_numbers_with_value_error(fields: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(fields))):
        BenchConfig(**fields)
    with pytest.raises(ValueError, match=next(iter(fields))):
        SelectConfig(**fields)


def test_other_api_numbers_are_checked() -> None:
    from hfselect.training.bench import parse_shard, plan_jobs
    from hfselect.training.distributed import RayResources

    for resources in ({"cpus": -5}, {"cpus": 0}, {"gpus": -1}, {"gpus": float("nan")}, {"max_retries": -1}):
        with pytest.raises(ValueError, match=next(iter(resources))):
            RayResources(**resources)
    for shard in ((3, 2), (0, 0), (-1, 2)):
        with pytest.raises(ValueError, match="shard"):
            plan_jobs(["m"], ["d"], shard)
    with pytest.raises(ValueError, match="shard"):
        parse_shard("a/b")
    with pytest.raises(ValueError, match="limit"):
        CrawlOptions(limit=0)
    with pytest.raises(ValueError, match="min_downloads"):
        CrawlOptions(min_downloads=-1)
    frame = pd.DataFrame({"d1": [0.1, 0.2], "d2": [0.3, 0.4]}, index=["a", "b"])
    for bad in ({"threshold": -1}, {"threshold": "abc"}, {"k_largest": 0}):
        with pytest.raises(ValueError):
            ModelClustering(**bad).fit(frame)
    with pytest.raises(ValueError, match="n_clusters"):
        ModelClustering(method="kmeans", n_clusters=0).fit(frame)


@pytest.mark.parametrize(
    "fields", [{"top_k": 0}, {"sample_size": 0}, {"k_largest": 0}, {"threshold": -1}, {"scope": "most"}]
)
def test_recall_checks_its_numbers_before_any_proxy_is_computed(
    fields: dict, filled: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hfselect.training.proxy_scoring
    from hfselect.api import recall

    def no_proxy(*args: object, **kwargs: object) -> None:
        raise AssertionError("a proxy was computed before the options were checked")

    monkeypatch.setattr(hfselect.training.proxy_scoring, "score_models", no_proxy)
    with ModelRepository(filled) as repository, pytest.raises(ValueError, match=next(iter(fields))):
        recall("some/target", repository, **fields)


def test_score_models_checks_the_sample_size_before_loading_the_target(filled: Path) -> None:
    from hfselect.training.proxy_scoring import score_models

    with ModelRepository(filled) as repository, pytest.raises(ValueError, match="sample_size"):
        score_models(repository, ["org/a"], "no/such/target", sample_size=0)


def test_n_clusters_without_kmeans_is_one_line(filled: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, line = run_failing(["cluster", "--n-clusters", "2"], capsys, filled)
    assert status == 1 and "--n-clusters is for --method kmeans" in line
