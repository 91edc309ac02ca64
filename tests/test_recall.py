"""Coarse recall: the paper's scoring rule, scopes, new models, results, and the released code's top-15."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hfselect.core.clustering import ModelClustering
from hfselect.core.recall import RecallResult, coarse_recall, models_needing_proxy
from tests.test_clustering import ANCHORS, load_anchor_matrix, needs_anchors, reference_clusters

# -- a 5-model toy matrix, scored by hand ----------------------------------------------------------------
#
# d(A, B) = 0.1 and d(C, D) = 0.06 (mean of the five largest |differences|), every other pair >= 0.38,
# so with threshold 0.15: clusters {A, B}, {C, D}, {E}. Means: A 0.7, B 0.6, C 0.7, D 0.65, E 0.5,
# so the representatives are A and C.

TOY = pd.DataFrame(
    {
        "A": [0.9, 0.9, 0.9, 0.5, 0.5, 0.5],
        "B": [0.8, 0.8, 0.8, 0.4, 0.4, 0.4],
        "C": [0.5, 0.5, 0.5, 0.9, 0.9, 0.9],
        "D": [0.4, 0.4, 0.4, 0.9, 0.9, 0.9],
        "E": [0.9, 0.1, 0.9, 0.1, 0.9, 0.1],
    },
    index=[f"d{i}" for i in range(6)],
).T
PROXY = {"A": -0.5, "B": -1.0, "C": -0.2, "D": -0.1, "E": -3.0}

# cos(E, A) = 2.26 / sqrt(2.46 * 3.18); cos(E, C) = 1.94 / sqrt(2.46 * 3.18)
COS_EA = 2.26 / math.sqrt(2.46 * 3.18)
COS_EC = 1.94 / math.sqrt(2.46 * 3.18)
SINGLETON_E = 0.5 * (COS_EA * math.exp(-0.5) + COS_EC * math.exp(-0.2)) / 2


def recall(**kwargs: object) -> RecallResult:
    """The paper's rule on the toy matrix unless ``scope`` says otherwise."""
    arguments = {"threshold": 0.15, "proxy_scores": PROXY, "scope": "representatives", **kwargs}
    return coarse_recall(TOY, **arguments)


def test_representatives_scope_hand_computed() -> None:
    result = recall()
    expected = {
        "C": 0.7 * math.exp(-0.2),  # representative: its own proxy
        "D": 0.65 * math.exp(-0.2),  # member: the representative C's proxy
        "A": 0.7 * math.exp(-0.5),
        "B": 0.6 * math.exp(-0.5),
        "E": SINGLETON_E,
    }
    assert result.models == ["C", "D", "A", "B", "E"]
    assert result.scores == pytest.approx([expected[m] for m in result.models], rel=1e-12)
    assert result.clusters == [["A", "B"], ["C", "D"], ["E"]]
    assert result.representatives == {0: "A", 1: "C"}
    by_model = {entry.model_id: entry for entry in result.entries}
    assert by_model["D"].role == "member" and by_model["D"].proxy_model == "C" and by_model["D"].proxy == -0.2
    assert by_model["D"].representative == "C" and by_model["D"].cluster == 1
    assert by_model["D"].mean_score == pytest.approx(0.65) and by_model["D"].weight == pytest.approx(
        math.exp(-0.2)
    )
    assert by_model["C"].role == "representative"
    assert (
        by_model["E"].role == "singleton"
        and by_model["E"].proxy is None
        and by_model["E"].representative is None
    )
    assert by_model["E"].weight == pytest.approx(SINGLETON_E / 0.5)
    assert [entry.rank for entry in result.entries] == [1, 2, 3, 4, 5]


def test_all_scope_uses_each_members_own_proxy() -> None:
    result = recall(scope="all")
    expected = {
        "D": 0.65 * math.exp(-0.1),
        "C": 0.7 * math.exp(-0.2),
        "A": 0.7 * math.exp(-0.5),
        "E": SINGLETON_E,  # singletons still use the representatives' proxies
        "B": 0.6 * math.exp(-1.0),
    }
    assert result.models == ["D", "C", "A", "E", "B"]
    assert result.scores == pytest.approx([expected[m] for m in result.models], rel=1e-12)
    assert {e.model_id: e.proxy_model for e in result.entries} == {
        "A": "A",
        "B": "B",
        "C": "C",
        "D": "D",
        "E": None,
    }


def test_which_models_need_a_proxy() -> None:
    assert models_needing_proxy(TOY, 0.15, scope="representatives") == ["A", "C"]
    assert models_needing_proxy(TOY, 0.15, scope="all") == ["A", "B", "C", "D"]
    assert models_needing_proxy(TOY, 0.15, scope="representatives", extra_models=["new/x", "A"]) == [
        "A",
        "C",
        "new/x",
    ]
    # Without a cluster of several models there are no representatives: everyone needs their own.
    assert models_needing_proxy(TOY, 0.0, scope="representatives") == ["A", "B", "C", "D", "E"]
    # Proxies for exactly those models are enough; members' proxies are not even read.
    only_representatives = {"A": -0.5, "C": -0.2}
    assert recall(proxy_scores=only_representatives).scores == pytest.approx(recall().scores)
    with pytest.raises(ValueError, match="no proxy score"):
        recall(proxy_scores=only_representatives, scope="all")
    with pytest.raises(ValueError, match="C"):
        recall(proxy_scores={"A": -0.5, "C": math.nan})


def test_no_multi_model_cluster_falls_back_to_own_proxies() -> None:
    result = recall(threshold=0.0)
    assert result.representatives == {}
    assert dict(zip(result.models, result.scores, strict=True)) == pytest.approx(
        {m: TOY.loc[m].mean() * math.exp(PROXY[m]) for m in PROXY}
    )
    assert {entry.role for entry in result.entries} == {"singleton"}


def test_models_without_results_are_ranked_by_their_own_proxy() -> None:
    performance = TOY.copy()
    performance.loc["crawled/empty-row"] = math.nan
    proxies = {**PROXY, "crawled/empty-row": -0.3, "crawled/only-proxy": 0.0, "crawled/extra": -5.0}
    result = coarse_recall(
        performance,
        proxies,
        threshold=0.15,
        extra_models=["crawled/extra"],
        top_k=None,
        scope="representatives",
    )
    average_model = np.mean([0.7, 0.6, 0.7, 0.65, 0.5])
    by_model = {entry.model_id: entry for entry in result.ranking}
    assert result.new_models == ["crawled/empty-row", "crawled/extra", "crawled/only-proxy"]
    for model in result.new_models:
        entry = by_model[model]
        assert not entry.has_results and entry.role == "new" and entry.cluster is None
        assert entry.score == pytest.approx(average_model * math.exp(proxies[model]))
        assert entry.mean_score == pytest.approx(average_model)
    assert result.models[0] == "crawled/only-proxy"  # 0.63 * exp(0) beats C's 0.7 * exp(-0.2)
    assert result.models[-1] == "crawled/extra"
    # The clustered models score as without the new ones.
    assert [m for m in result.models if by_model[m].has_results] == recall().models
    assert "crawled/empty-row" in models_needing_proxy(performance, 0.15, scope="representatives")
    with pytest.raises(ValueError, match="crawled/extra"):
        coarse_recall(
            performance, PROXY | {"crawled/empty-row": -0.3}, threshold=0.15, extra_models=["crawled/extra"]
        )


def test_top_k_larger_than_the_model_count_and_validation() -> None:
    assert recall(top_k=50).models == recall(top_k=None).models == recall().models
    assert recall(top_k=2).models == ["C", "D"]
    assert len(recall(top_k=2).ranking) == 5
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError):
            recall(top_k=bad)
    with pytest.raises(ValueError):
        recall(scope="members")


def test_proxy_transform_and_series_input() -> None:
    # Accuracy-like proxies: weight = the proxy itself.
    accuracies = pd.Series({"A": 0.5, "C": 0.9})
    result = recall(proxy_scores=accuracies, proxy_transform=lambda x: x)
    scores = dict(zip(result.models, result.scores, strict=True))
    assert scores["D"] == pytest.approx(0.65 * 0.9)
    assert scores["B"] == pytest.approx(0.6 * 0.5)
    assert scores["E"] == pytest.approx(0.5 * (COS_EA * 0.5 + COS_EC * 0.9) / 2)


def test_representative_ties_go_to_the_earliest_row() -> None:
    twins = pd.DataFrame({"x": [0.5] * 6, "y": [0.5] * 6, "z": [0.9, 0.1] * 3}).T
    result = coarse_recall(twins, {"x": -1.0, "y": -0.1}, threshold=0.09, scope="representatives")
    assert result.representatives == {0: "x"}


def test_reuses_a_fitted_clustering() -> None:
    clustering = ModelClustering(threshold=0.15).fit(TOY)
    assert recall(clustering=clustering, threshold=0.0).models == recall().models
    assert models_needing_proxy(TOY, clustering=clustering, scope="representatives") == ["A", "C"]
    with pytest.raises(ValueError, match="other models"):
        recall(clustering=ModelClustering(threshold=0.15).fit(TOY.iloc[:4]))


def test_result_frame_and_json() -> None:
    result = recall(top_k=3)
    frame = result.to_frame()
    assert list(frame.index) == ["C", "D", "A"]
    assert {"rank", "score", "mean_score", "weight", "role", "cluster", "representative", "proxy"} <= set(
        frame.columns
    )
    assert frame["recalled"].all()
    everything = result.to_frame(all_models=True)
    assert list(everything.index) == ["C", "D", "A", "B", "E"]
    assert everything["recalled"].tolist() == [True, True, True, False, False]
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert data["models"] == ["C", "D", "A"]
    assert data["representatives"] == {"0": "A", "1": "C"}
    assert data["entries"][0]["representative"] == "C"
    assert data["ranking"][-1]["proxy"] is None
    assert data["scope"] == "representatives" and data["threshold"] == 0.15 and data["k_largest"] == 5


# -- the released code's top-15 ------------------------------------------------------------------------


def reference_recall(
    rows: list[list[float]], leep: list[float], threshold: float, top: int = 15
) -> list[int]:
    """The released recall, transcribed plainly: own-proxy members, cosine-weighted singletons."""
    clusters = reference_clusters(rows, threshold)
    mean = [sum(row) / len(row) for row in rows]
    weight = [math.exp(value) for value in leep]
    score = [0.0] * len(rows)
    representatives = []
    for cluster in clusters:
        if len(cluster) > 1:
            best = cluster[0]
            for model in cluster[1:]:
                if mean[model] > mean[best]:
                    best = model
            representatives.append(best)
            for model in cluster:
                score[model] = mean[model] * weight[model]
    for cluster in clusters:
        if len(cluster) == 1:
            s = np.array(rows[cluster[0]])
            total = 0.0
            for r in representatives:
                v = np.array(rows[r])
                total += s.dot(v) / (np.linalg.norm(s) * np.linalg.norm(v)) * weight[r]
            score[cluster[0]] = total / len(representatives) * mean[cluster[0]]
    recalled = []
    for _ in range(top):
        best = score.index(max(score))
        recalled.append(best)
        score[best] = -score[best]
    return recalled


def read_leep(path: Path) -> dict[str, float]:
    header, values = path.read_text().splitlines()[:2]
    model_ids = [model.strip().replace("--", "/") for model in header.split("\t")]
    return dict(zip(model_ids, (float(value) for value in values.split("\t")), strict=True))


# What the released code recalls (scope="all"), best first.
MULTIRC_TOP15 = [
    "ishan/bert-base-uncased-mnli",
    "Jeevesh8/feather_berts_46",
    "roberta-base",
    "Alireza1044/albert-base-v2-qnli",
    "albert-base-v2",
    "Jeevesh8/bert_ft_qqp-9",
    "Jeevesh8/bert_ft_qqp-40",
    "connectivity/bert_ft_qqp-1",  # exactly tied with the next one; the earlier column wins
    "Jeevesh8/6ep_bert_ft_cola-47",
    "Splend1dchan/bert-base-uncased-slue-goldtrascription-e3-lr1e-4",
    "Jeevesh8/512seq_len_6ep_bert_ft_cola-91",
    "Jeevesh8/bert_ft_qqp-68",
    "DoyyingFace/bert-asian-hate-tweets-asian-unclean-freeze-4",
    "Jeevesh8/bert_ft_cola-88",
    "bert-base-uncased",
]
XRAY_TOP15 = [
    "Visual-Attention-Network/van-large",
    "facebook/deit-base-patch16-384",
    "shi-labs/dinat-base-in1k-224",
    "facebook/deit-base-patch16-224",
    "microsoft/beit-base-patch16-384",
    "google/vit-base-patch16-384",
    "microsoft/beit-base-patch16-224",
    "google/vit-base-patch16-224",
    "oschamp/vit-artworkclassifier",
    "facebook/dino-vitb8",
    "nateraw/vit-age-classifier",
    "sail/poolformer_m48",
    "Visual-Attention-Network/van-base",
    "shi-labs/dinat-large-in22k-in1k-224",
    "microsoft/beit-base-patch16-224-pt22k-ft22k",
]


@needs_anchors
@pytest.mark.parametrize(
    ("kind", "leep_file", "threshold", "expected", "n_representatives"),
    [
        ("nlp", "nlp_leep_multirc.tsv", 0.09, MULTIRC_TOP15, 8),
        ("cv", "cv_leep_xray.tsv", 0.03, XRAY_TOP15, 5),
    ],
)
def test_all_scope_reproduces_the_released_top15(
    kind: str, leep_file: str, threshold: float, expected: list[str], n_representatives: int
) -> None:
    performance = load_anchor_matrix(kind)
    leep = read_leep(ANCHORS / leep_file)
    model_ids = list(performance.index)
    assert list(leep) == model_ids

    reference = [
        model_ids[i]
        for i in reference_recall(performance.to_numpy().tolist(), list(leep.values()), threshold)
    ]
    result = coarse_recall(performance, leep, top_k=15, threshold=threshold, scope="all")
    assert result.models == reference == expected
    # Same scores as the released code computes them, to the last bit.
    mean = performance.to_numpy().tolist()
    for entry in result.entries:
        if entry.role != "singleton":
            row = mean[model_ids.index(entry.model_id)]
            assert entry.score == sum(row) / len(row) * math.exp(leep[entry.model_id])

    # The paper's rule needs the representatives' proxies only.
    needed = models_needing_proxy(performance, threshold, scope="representatives")
    assert len(needed) == n_representatives
    cheap = coarse_recall(
        performance, {m: leep[m] for m in needed}, threshold=threshold, scope="representatives"
    )
    assert len(cheap.models) == 15


def test_every_scope_ranks_each_model_by_its_own_proxy() -> None:
    result = recall(scope="every")
    # D -0.1 > C -0.2 > A -0.5 > B -1.0 > E -3.0: the proxy alone, the singleton E by its own.
    assert result.models == ["D", "C", "A", "B", "E"]
    assert result.scores == pytest.approx([math.exp(PROXY[m]) for m in result.models])
    by_model = {entry.model_id: entry for entry in result.entries}
    assert (
        by_model["E"].role == "singleton" and by_model["E"].proxy == -3.0 and by_model["E"].proxy_model == "E"
    )
    assert by_model["D"].role == "member" and by_model["D"].proxy_model == "D"
    assert models_needing_proxy(TOY, 0.15, scope="every") == ["A", "B", "C", "D", "E"]
    # Equal proxies: the better mean benchmark score first (A 0.7 before B 0.6, whatever the row order).
    tied = coarse_recall(TOY.loc[["B", "A"]], {"A": -0.5, "B": -0.5}, threshold=0.15, scope="every")
    assert tied.models == ["A", "B"]
    # A model without results is ranked by its proxy on the same scale.
    with_new = coarse_recall(TOY, {**PROXY, "N": -0.15}, threshold=0.15, scope="every")
    assert with_new.models[:3] == ["D", "N", "C"] and with_new.new_models == ["N"]
    with pytest.raises(ValueError, match="no proxy score"):
        coarse_recall(TOY, {"A": -0.5, "C": -0.2}, threshold=0.15, scope="every")
