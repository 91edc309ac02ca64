"""Model clustering: the paper's distance, average-linkage thresholds, silhouette, k-means, paper anchors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.metrics import silhouette_score

from hfselect.core.clustering import ModelClustering, model_distance, pairwise_model_distances
from hfselect.store import parse_matrix

ANCHORS = Path(__file__).resolve().parents[2] / "shared" / "anchors" / "two-phase-selection"
needs_anchors = pytest.mark.skipif(not ANCHORS.is_dir(), reason="released paper data not available")


# -- an independent reference: the released code's algorithm, written plainly ------------------------


def reference_distance(u: list[float], v: list[float], k: int = 5) -> float:
    """The released code's distance: its sentinel 1e7 marks a non-comparable pair."""
    errors = sorted((abs(a - b) for a, b in zip(u, v, strict=True) if a > 0 and b > 0), reverse=True)
    if len(errors) <= k:
        return 1e7
    total = 0.0
    for error in errors[:k]:
        total += error
    return total / k


def reference_clusters(rows: list[list[float]], threshold: float, k: int = 5) -> list[list[int]]:
    """Greedy average linkage as the released code runs it: O(n^3), first closest pair wins."""
    n = len(rows)
    distance = [[reference_distance(rows[i], rows[j], k) for j in range(n)] for i in range(n)]
    clusters = [[i] for i in range(n)]
    while True:
        best, best_i, best_j = 10000.0, -1, -1
        for i in range(len(clusters)):
            for j in range(i + 1, len(clusters)):
                pairs = [distance[a][b] for a in clusters[i] for b in clusters[j]]
                average = sum(pairs) / len(pairs)
                if average < best:
                    best, best_i, best_j = average, i, j
        if best > threshold:
            return clusters
        clusters[best_i] = clusters[best_i] + clusters[best_j]
        del clusters[best_j]


def load_anchor_matrix(kind: str) -> pd.DataFrame:
    """The released matrix as models x datasets, columns in the file's dataset order."""
    matrix = parse_matrix(ANCHORS / f"{kind}_matrix.tsv", ANCHORS / f"{kind}_datasets.txt")
    return pd.DataFrame(matrix)


def as_partition(clusters: list[list[str]]) -> set[frozenset[str]]:
    return {frozenset(cluster) for cluster in clusters}


# -- toy data ----------------------------------------------------------------------------------------


def two_groups() -> pd.DataFrame:
    """Two tight groups of three models (within 0.02) far apart (about 0.4), six datasets."""
    base_a = np.array([0.9, 0.85, 0.8, 0.75, 0.7, 0.65])
    base_b = np.array([0.5, 0.45, 0.4, 0.35, 0.3, 0.25])
    rows = {
        "a1": base_a,
        "b1": base_b,
        "a2": base_a - 0.01,
        "b2": base_b + 0.01,
        "a3": base_a + 0.02,
        "b3": base_b - 0.02,
    }
    return pd.DataFrame(rows).T


# -- distance ------------------------------------------------------------------------------------------


def test_distance_hand_computed() -> None:
    a = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3]
    b = [0.8, 0.8, 0.5, 0.6, 0.1, 0.4, 0.35]
    # |differences| = 0.1, 0, 0.2, 0, 0.4, 0, 0.05; five largest 0.4, 0.2, 0.1, 0.05, 0 -> mean 0.15
    assert model_distance(a, b) == pytest.approx(0.15)
    # two largest: (0.4 + 0.2) / 2
    assert model_distance(a, b, k_largest=2) == pytest.approx(0.3)


def test_distance_skips_missing_and_non_positive_scores() -> None:
    a = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3]
    b = [0.8, 0.8, 0.5, 0.6, 0.1, 0.4, 0.35]
    # Hiding the 0.4 difference (NaN in one, 0 in the other): only six datasets are shared.
    hidden_nan = [*a[:4], math.nan, *a[5:]]
    hidden_zero = [*b[:4], 0.0, *b[5:]]
    # shared differences 0.1, 0, 0.2, 0, 0, 0.05 -> five largest sum to 0.35
    assert model_distance(hidden_nan, b) == pytest.approx(0.07)
    assert model_distance(a, hidden_zero) == pytest.approx(0.07)


def test_non_comparable_pair_is_infinite() -> None:
    a = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3]
    # Shares only five datasets with scores > 0 with a: k_largest (5) or fewer -> not comparable.
    c = [0.9, 0.8, 0.7, 0.6, 0.5, -0.1, math.nan]
    assert model_distance(a, c) == math.inf
    assert model_distance(a, c, k_largest=4) == 0.0  # identical on the five shared datasets
    with pytest.raises(ValueError):
        model_distance(a, c[:3])


def test_pairwise_distances_match_the_pairwise_function() -> None:
    frame = two_groups()
    frame.loc["lonely"] = [0.5, 0.5, math.nan, math.nan, math.nan, 0.5]
    distances = pairwise_model_distances(frame)
    assert list(distances.index) == list(frame.index) == list(distances.columns)
    for i in frame.index:
        for j in frame.index:
            expected = 0.0 if i == j else model_distance(frame.loc[i], frame.loc[j])
            assert distances.loc[i, j] == expected
    assert np.isinf(distances.loc["lonely", "a1"])


# -- agglomerative clustering ------------------------------------------------------------------------


def test_labels_follow_the_rows() -> None:
    frame = two_groups()
    model = ModelClustering(threshold=0.09).fit(frame)
    assert model.n_clusters_ == 2
    assert as_partition(model.clusters_) == {frozenset({"a1", "a2", "a3"}), frozenset({"b1", "b2", "b3"})}
    # Cluster ids in order of first row; members in row order.
    assert model.labels_.tolist() == [0, 1, 0, 1, 0, 1]
    assert model.clusters_ == [["a1", "a2", "a3"], ["b1", "b2", "b3"]]

    shuffled = frame.loc[["b3", "a2", "b1", "a3", "a1", "b2"]]
    again = ModelClustering(threshold=0.09).fit(shuffled)
    assert again.labels_.tolist() == [0, 1, 0, 1, 1, 0]
    assert as_partition(again.clusters_) == as_partition(model.clusters_)
    assert list(again.distances_.index) == list(shuffled.index)


def test_threshold_controls_merging_inclusively() -> None:
    frame = two_groups()
    assert ModelClustering(threshold=0.0).fit(frame).n_clusters_ == 6
    assert ModelClustering(threshold=0.09).fit(frame).n_clusters_ == 2
    assert ModelClustering(threshold=1.0).fit(frame).n_clusters_ == 1

    pair = frame.loc[["a1", "a2"]]
    gap = model_distance(pair.loc["a1"], pair.loc["a2"])
    # Merged at exactly the threshold (<=, as the released code), not just below it.
    assert ModelClustering(threshold=gap).fit(pair).n_clusters_ == 1
    assert ModelClustering(threshold=np.nextafter(gap, 0.0)).fit(pair).n_clusters_ == 2


def test_average_linkage_uses_the_mean_over_cross_pairs() -> None:
    # x-y at 0.1; z is 0.12 from y and 0.22 from x: 0.17 from the {x, y} cluster on average
    # (single linkage would say 0.12, complete linkage 0.22).
    frame = pd.DataFrame([[0.1] * 6, [0.2] * 6, [0.32] * 6], index=["x", "y", "z"])
    assert ModelClustering(threshold=0.15).fit(frame).clusters_ == [["x", "y"], ["z"]]
    assert ModelClustering(threshold=0.18).fit(frame).n_clusters_ == 1


def test_non_comparable_models_are_never_merged() -> None:
    frame = two_groups()
    # "sparse" has a score on five datasets only: not comparable with anyone (k_largest = 5).
    frame.loc["sparse"] = [0.9, 0.85, 0.8, 0.75, 0.7, math.nan]
    frame.loc["empty"] = [math.nan] * 6
    model = ModelClustering(threshold=1e6).fit(frame)
    assert model.clusters_ == [["a1", "b1", "a2", "b2", "a3", "b3"], ["sparse"], ["empty"]]
    assert np.isinf(model.distances_.loc["sparse", "a1"])
    # With k_largest = 4 "sparse" is comparable (and identical to a1 on its datasets).
    assert ModelClustering(threshold=0.09, k_largest=4).fit(frame).labels_[frame.index.get_loc("sparse")] == 0


def test_silhouette_uses_the_distance_with_non_comparable_as_farthest() -> None:
    frame = two_groups()
    frame.loc["sparse"] = [0.9, 0.85, 0.8, 0.75, 0.7, math.nan]
    model = ModelClustering(threshold=0.09).fit(frame)
    distances = model.distances_.to_numpy()
    farthest = distances[np.isfinite(distances)].max()
    expected = silhouette_score(
        np.where(np.isinf(distances), farthest, distances), model.labels_, metric="precomputed"
    )
    assert model.silhouette_ == pytest.approx(expected)
    assert math.isnan(ModelClustering(threshold=1.0).fit(two_groups()).silhouette_)  # one cluster
    assert math.isnan(ModelClustering(threshold=0.0).fit(two_groups()).silhouette_)  # all alone


def test_threshold_chosen_by_silhouette() -> None:
    frame = two_groups()
    model = ModelClustering(threshold="silhouette").fit(frame)
    assert model.n_clusters_ == 2
    assert as_partition(model.clusters_) == {frozenset({"a1", "a2", "a3"}), frozenset({"b1", "b2", "b3"})}
    # The chosen threshold is a merge height: refitting with it gives the same clusters.
    assert 0.0 < model.threshold_ < 0.3
    assert ModelClustering(threshold=model.threshold_).fit(frame).clusters_ == model.clusters_
    # It beats every other cut.
    for threshold in (0.0, 0.01, 0.02, 0.025, 0.5):
        other = ModelClustering(threshold=threshold).fit(frame).silhouette_
        assert math.isnan(other) or other <= model.silhouette_


def test_kmeans_alternative() -> None:
    frame = two_groups()
    model = ModelClustering(method="kmeans", n_clusters=2).fit(frame)
    assert model.labels_.tolist() == [0, 1, 0, 1, 0, 1]
    assert model.threshold_ is None
    assert model.silhouette_ == pytest.approx(ModelClustering(threshold=0.09).fit(frame).silhouette_)
    # n_clusters=None: the agglomerative count at the threshold.
    assert ModelClustering(method="kmeans", threshold=0.0).fit(frame).n_clusters_ == 6
    assert ModelClustering(method="kmeans").fit(frame).n_clusters_ == 2
    with pytest.raises(ValueError):
        ModelClustering(method="kmeans", n_clusters=7).fit(frame)


def test_estimator_conventions_and_validation() -> None:
    model = ModelClustering(threshold=0.03, k_largest=4)
    assert model.get_params() == {
        "threshold": 0.03,
        "k_largest": 4,
        "method": "agglomerative",
        "n_clusters": None,
        "random_state": 0,
    }
    assert clone(model).get_params() == model.get_params()
    assert not hasattr(model, "labels_")
    assert model.fit_predict(two_groups()).tolist() == model.labels_.tolist()
    assert model.n_features_in_ == 6
    for bad in (
        ModelClustering(threshold="best"),
        ModelClustering(threshold=-1.0),
        ModelClustering(k_largest=0),
        ModelClustering(method="dbscan"),
        ModelClustering(n_clusters=3),
    ):
        with pytest.raises(ValueError):
            bad.fit(two_groups())
    with pytest.raises(ValueError):
        ModelClustering().fit(pd.DataFrame([[0.5] * 6, [0.6] * 6], index=["m", "m"]))
    single = ModelClustering().fit(two_groups().iloc[:1])
    assert single.labels_.tolist() == [0] and single.clusters_ == [["a1"]]


# -- the paper's released matrices -----------------------------------------------------------------------

# The multi-model clusters the released code finds (model ids in the released files' column order).
NLP_MULTI_MODEL_CLUSTERS = [
    ["18811449050/bert_finetuning_test", "aviator-neural/bert-base-uncased-sst2", "distilbert-base-uncased"],
    [
        "aditeyabaral/finetuned-sail2017-xlm-roberta-base",
        "anirudh21/bert-base-uncased-finetuned-qnli",
        "bert-base-uncased",
        "DoyyingFace/bert-asian-hate-tweets-asian-unclean-freeze-4",
        "Jeevesh8/512seq_len_6ep_bert_ft_cola-91",
        "Jeevesh8/bert_ft_cola-88",
        "manueltonneau/bert-twitter-en-is-hired",
    ],
    [
        "albert-base-v2",
        "Alireza1044/albert-base-v2-qnli",
        "ishan/bert-base-uncased-mnli",
        "Jeevesh8/feather_berts_46",
        "roberta-base",
    ],
    ["aliosm/sha3bor-metre-detector-arabertv2-base", "CAMeL-Lab/bert-base-arabic-camelbert-mix-did-nadi"],
    [
        "aychang/bert-base-cased-trec-coarse",
        "Jeevesh8/6ep_bert_ft_cola-47",
        "Splend1dchan/bert-base-uncased-slue-goldtrascription-e3-lr1e-4",
    ],
    [
        "connectivity/bert_ft_qqp-1",
        "Jeevesh8/bert_ft_qqp-40",
        "Jeevesh8/bert_ft_qqp-68",
        "Jeevesh8/bert_ft_qqp-9",
    ],
    [
        "connectivity/bert_ft_qqp-17",
        "connectivity/bert_ft_qqp-7",
        "connectivity/bert_ft_qqp-96",
        "Jeevesh8/init_bert_ft_qqp-24",
        "Jeevesh8/init_bert_ft_qqp-33",
    ],
    [
        "emrecan/bert-base-multilingual-cased-snli_tr",
        "socialmediaie/TRAC2020_IBEN_B_bert-base-multilingual-uncased",
    ],
]
CV_MULTI_MODEL_CLUSTERS = [
    [
        "facebook/deit-base-patch16-224",
        "facebook/deit-base-patch16-384",
        "facebook/dino-vits16",
        "facebook/vit-msn-base",
        "facebook/vit-msn-small",
        "google/vit-base-patch32-224-in21k",
        "Visual-Attention-Network/van-large",
    ],
    [
        "facebook/deit-small-patch16-224",
        "microsoft/beit-large-patch16-224-pt22k",
        "shi-labs/dinat-base-in1k-224",
        "Visual-Attention-Network/van-base",
    ],
    [
        "facebook/dino-vitb16",
        "facebook/dino-vitb8",
        "google/vit-base-patch16-224",
        "google/vit-base-patch16-384",
        "lixiqi/beit-base-patch16-224-pt22k-ft22k-finetuned-FER-5e-05-3",
        "lixiqi/beit-base-patch16-224-pt22k-ft22k-finetuned-FER2013-6e-05",
        "lixiqi/beit-base-patch16-224-pt22k-ft22k-finetuned-FER2013-7e-05",
        "microsoft/beit-base-patch16-224",
        "microsoft/beit-base-patch16-224-pt22k-ft22k",
        "microsoft/beit-base-patch16-384",
        "nateraw/vit-age-classifier",
        "oschamp/vit-artworkclassifier",
        "shi-labs/dinat-large-in22k-in1k-224",
        "shi-labs/dinat-large-in22k-in1k-384",
    ],
    ["microsoft/beit-base-patch16-224-pt22k", "sail/poolformer_s36"],
    ["sail/poolformer_m36", "sail/poolformer_m48"],
]


@needs_anchors
@pytest.mark.parametrize(
    ("kind", "threshold", "n_clusters", "n_multi", "multi_model_clusters"),
    [
        ("nlp", 0.09, 16, 8, NLP_MULTI_MODEL_CLUSTERS),
        ("cv", 0.03, 6, 5, CV_MULTI_MODEL_CLUSTERS),
    ],
)
def test_released_matrices_cluster_as_the_released_code(
    kind: str, threshold: float, n_clusters: int, n_multi: int, multi_model_clusters: list[list[str]]
) -> None:
    performance = load_anchor_matrix(kind)
    model = ModelClustering(threshold=threshold).fit(performance)

    model_ids = list(performance.index)
    reference = [
        [model_ids[i] for i in cluster]
        for cluster in reference_clusters(performance.to_numpy().tolist(), threshold)
    ]
    assert as_partition(model.clusters_) == as_partition(reference)
    assert model.n_clusters_ == len(reference) == n_clusters
    assert sum(len(cluster) > 1 for cluster in model.clusters_) == n_multi
    assert as_partition([c for c in model.clusters_ if len(c) > 1]) == as_partition(multi_model_clusters)
    # The released code keeps clusters ordered by their first model, as cluster ids are here.
    assert [min(cluster, key=model_ids.index) for cluster in model.clusters_] == [c[0] for c in reference]
    # Distances equal the released code's to the last bit (its 1e7 sentinel is inf here).
    rows = performance.to_numpy().tolist()
    for i in range(0, len(rows), 7):
        for j in range(len(rows)):
            expected = reference_distance(rows[i], rows[j]) if i != j else 0.0
            assert model.distances_.iloc[i, j] == (math.inf if expected == 1e7 else expected)


def test_cluster_summary_puts_the_recall_representative_first() -> None:
    from hfselect.core.cluster_summary import summarize_clusters
    from hfselect.core.recall import cluster_representatives, mean_benchmark_scores

    performance = pd.DataFrame(
        {"d1": [0.80, 0.82, 0.50, 0.30], "d2": [0.70, 0.71, 0.90, 0.20], "d3": [0.60, 0.62, 0.20, 0.90]},
        index=["a", "b", "c", "d"],
    )
    clustering = ModelClustering(threshold=0.1, k_largest=2).fit(performance)
    summary = summarize_clusters(performance, clustering)
    assert summary.models == 4 and summary.datasets == 3 and summary.n_clusters == clustering.n_clusters_
    representatives = cluster_representatives(clustering.clusters_, mean_benchmark_scores(performance))
    for cluster in summary.clusters:
        if cluster.size > 1:
            assert cluster.members[0] == representatives[cluster.cluster]
    pair = next(cluster for cluster in summary.clusters if cluster.size == 2)
    assert pair.members == ["b", "a"]  # b has the better mean, so it stands for the cluster
    assert summary.multi_model_clusters == 1
    assert summary.to_dict()["clusters"][pair.cluster] == {
        "cluster": pair.cluster, "size": 2, "representative": "b", "members": ["b", "a"]
    }  # fmt: skip
