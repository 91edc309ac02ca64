"""The "evidence" recall rule: fusion, graceful degradation, scale-freeness, the one default, wording."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pandas as pd
import pytest

from hfselect.api import recall
from hfselect.cli import build_parser, print_recall
from hfselect.core.evidence import dataset_resemblance, fused_scores, standardized_ranks
from hfselect.core.recall import DEFAULT_SCOPE, coarse_recall, models_needing_proxy
from hfselect.core.scopes import RULE_SUMMARIES, SCOPES
from tests.test_recall import PROXY, TOY

# Four models on three benchmark datasets. "near" ranks the models as the target's proxy does,
# "far" in reverse, "half" half agrees.
MATRIX = pd.DataFrame(
    {
        "near": [0.9, 0.8, 0.7, 0.6],
        "far": [0.6, 0.7, 0.8, 0.9],
        "half": [0.9, 0.6, 0.8, 0.7],
    },
    index=["w", "x", "y", "z"],
)
TARGET_PROXY = {"w": -0.1, "x": -0.2, "y": -0.3, "z": -0.4}


def test_standardized_ranks() -> None:
    ranks = standardized_ranks(pd.Series([10.0, 30.0, 20.0, math.nan, 30.0]))
    present = ranks.dropna()
    assert math.isnan(ranks.iloc[3])
    assert present.mean() == pytest.approx(0.0) and present.std(ddof=0) == pytest.approx(1.0)
    assert ranks.iloc[1] == ranks.iloc[4] > ranks.iloc[2] > ranks.iloc[0]  # ties averaged
    assert standardized_ranks(pd.Series([5.0, 5.0])).tolist() == [0.0, 0.0]
    assert standardized_ranks(pd.Series([5.0])).tolist() == [0.0]


def test_datasets_weigh_by_their_rank_correlation_with_the_proxy() -> None:
    weights = dataset_resemblance(MATRIX, TARGET_PROXY)
    assert weights["near"] == pytest.approx(1.0)
    assert weights["far"] == 0.0  # negative correlation counts 0
    assert weights["half"] == pytest.approx(0.4)  # Spearman of (4,3,2,1) with (4,1,3,2)
    # Too few proxied models to correlate: every dataset weighs the same.
    assert dataset_resemblance(MATRIX, {"w": 1.0, "x": 0.0}).tolist() == [1.0, 1.0, 1.0]


def test_score_weighs_proxy_rank_two_thirds_and_evidence_one_third() -> None:
    proxies = {"w": -0.4, "x": -0.1, "y": -0.2, "z": -0.3}  # x best by proxy
    scores = fused_scores(MATRIX, proxies, {m: None for m in MATRIX.index}, [])
    proxy_rank = standardized_ranks(pd.Series(proxies))
    weights = dataset_resemblance(MATRIX, proxies)
    ranks = MATRIX.apply(standardized_ranks)
    raw = (ranks * weights).sum(axis=1) / weights.sum()
    evidence = standardized_ranks(raw)
    for model in MATRIX.index:
        assert scores[model].score == pytest.approx((2 * proxy_rank[model] + evidence[model]) / 3)
        assert scores[model].proxy_model == model
        assert scores[model].evidence_datasets == int((weights > 0).sum())


def test_scale_free_any_increasing_transform_of_the_proxy_changes_nothing() -> None:
    base = coarse_recall(TOY, PROXY, top_k=None, threshold=0.15)
    rescaled = {model: 1000.0 * math.exp(value) - 7.0 for model, value in PROXY.items()}
    other = coarse_recall(TOY, rescaled, top_k=None, threshold=0.15, proxy_transform=lambda v: v)
    assert other.models == base.models and other.scores == pytest.approx(base.scores)


def test_no_benchmark_results_ranks_by_proxy_alone() -> None:
    empty = pd.DataFrame(index=pd.Index([], name="model_id"))
    result = coarse_recall(empty, {"a": -2.0, "b": -0.5, "c": -1.0}, top_k=None)
    assert result.models == ["b", "c", "a"]
    assert {entry.source for entry in result.ranking} == {"own proxy (no benchmark results)"}
    # A crawled model beside benchmarked ones keeps its proxy part alone.
    mixed = coarse_recall(TOY, {**PROXY, "new/n": 0.0}, top_k=None, threshold=0.15)
    entry = next(e for e in mixed.ranking if e.model_id == "new/n")
    assert (
        entry.role == "new" and entry.evidence is None and entry.source == "own proxy (no benchmark results)"
    )
    assert entry.score == pytest.approx(standardized_ranks(pd.Series({**PROXY, "new/n": 0.0}))["new/n"])
    with pytest.raises(ValueError, match="new/m"):
        coarse_recall(TOY, PROXY, threshold=0.15, extra_models=["new/m"])  # a new model needs its proxy


def test_no_resembling_dataset_ranks_by_proxy_alone() -> None:
    reverse = {model: -value for model, value in TARGET_PROXY.items()}  # "far" now agrees: flip it too
    matrix = MATRIX.drop(columns="far")
    result = coarse_recall(matrix, reverse, top_k=None, threshold=0.0)
    assert result.models == ["z", "y", "x", "w"]  # the proxy's order
    for entry in result.ranking:
        assert entry.evidence is None
        assert entry.source == "own proxy (no benchmark dataset resembles the target)"


def test_without_a_proxy_a_member_takes_its_representatives_and_a_singleton_its_evidence() -> None:
    result = coarse_recall(TOY, {"A": -0.5, "C": -0.2, "E": -3.0}, top_k=None, threshold=0.15)
    by_model = {entry.model_id: entry for entry in result.ranking}
    assert by_model["D"].proxy_model == "C" and by_model["B"].proxy_model == "A"
    assert by_model["D"].source.startswith("cluster representative C's proxy + evidence from")
    # Only the representatives' proxies: the singleton E has no proxy part.
    reps_only = coarse_recall(TOY, {"A": -0.5, "C": -0.2}, top_k=None, threshold=0.15)
    singleton = next(entry for entry in reps_only.ranking if entry.model_id == "E")
    assert singleton.proxy_model is None and singleton.evidence is not None
    assert singleton.score == pytest.approx(singleton.evidence)
    # Two proxies cannot measure resemblance: every dataset weighs the same, and the source says so.
    assert singleton.source == "evidence from 6 datasets, equally weighted (no proxy)"
    # With no proxy at all, the benchmarked models are still ranked, by evidence.
    no_proxy = coarse_recall(TOY, {}, top_k=None, threshold=0.15)
    assert all(not math.isnan(entry.score) for entry in no_proxy.ranking)


def test_the_evidence_lifts_a_model_the_noisy_proxy_ranks_second() -> None:
    # Eight models; the proxy puts x a hair above w. On the two benchmark datasets, which agree with
    # the proxy everywhere else, w is the best model and x a middling one.
    models = ["x", "w", "m3", "m4", "m5", "m6", "m7", "m8"]
    proxies = {model: -0.1 * i for i, model in enumerate(models)} | {"w": -0.101}
    near = {"w": 0.95, "m3": 0.9, "m4": 0.85, "m5": 0.8, "x": 0.78, "m6": 0.75, "m7": 0.7, "m8": 0.65}
    matrix = pd.DataFrame({"near": near, "near2": {model: score - 0.01 for model, score in near.items()}})
    assert coarse_recall(matrix, proxies, top_k=1, scope="every", threshold=0.0).models == ["x"]
    assert coarse_recall(matrix, proxies, top_k=1, threshold=0.0).models == ["w"]


def test_one_default_rule_everywhere() -> None:
    assert DEFAULT_SCOPE == "evidence" and DEFAULT_SCOPE in SCOPES and set(RULE_SUMMARIES) == set(SCOPES)
    for function in (coarse_recall, models_needing_proxy, recall):
        assert inspect.signature(function).parameters["scope"].default == DEFAULT_SCOPE
    parser = build_parser()
    for command in (["recall", "d"], ["select", "d"]):
        assert parser.parse_args(command).scope == DEFAULT_SCOPE
    assert parser.parse_args(["demo"]).scope == DEFAULT_SCOPE
    # coarse_recall with no rule argument is the CLI's rule.
    implicit = coarse_recall(TOY, PROXY, top_k=None, threshold=0.15)
    explicit = coarse_recall(
        TOY, PROXY, top_k=None, threshold=0.15, scope=parser.parse_args(["recall", "d"]).scope
    )
    assert implicit.scope == explicit.scope == DEFAULT_SCOPE
    assert implicit.models == explicit.models and implicit.scores == explicit.scores
    assert models_needing_proxy(TOY, 0.15) == ["A", "B", "C", "D", "E"]


EXPECTED_SOURCES = {
    "evidence": "own proxy + evidence from",
    "every": "own proxy",
    "representatives": "cluster 1 representative C's proxy x mean benchmark score",
    "all": "own proxy x mean benchmark score (member of cluster 1)",
}


@pytest.mark.parametrize("scope", SCOPES)
def test_the_recall_table_says_what_each_score_came_from(scope: str, capsys: pytest.CaptureFixture) -> None:
    result = coarse_recall(TOY, PROXY, top_k=None, threshold=0.15, scope=scope)
    result.target, result.proxy, result.proxy_scores, result.proxied_models = (
        "toy",
        "logme",
        dict(PROXY),
        list(PROXY),
    )
    print_recall(result)
    printed = capsys.readouterr().out
    assert "score from" in printed
    for entry in result.entries:
        assert entry.source and entry.source in printed
    member_d = next(entry for entry in result.entries if entry.model_id == "D")
    assert member_d.source.startswith(EXPECTED_SOURCES[scope])
    if scope in ("evidence", "every"):  # nothing of the paper's rule's wording
        assert "x mean benchmark score" not in printed and "similarity" not in printed
    assert result.to_dict()["entries"][0]["source"] == result.entries[0].source


def test_entries_serialise_their_evidence() -> None:
    data = coarse_recall(TOY, PROXY, top_k=2, threshold=0.15).to_dict()
    first = data["entries"][0]
    assert data["scope"] == "evidence" and isinstance(first["evidence"], float)
    assert first["evidence_datasets"] > 0 and "evidence" in first["source"]
    assert np.isfinite(first["score"])
