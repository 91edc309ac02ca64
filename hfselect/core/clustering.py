"""Offline model clustering: group models that perform alike on the benchmark datasets.

This is the offline half of the coarse-recall phase of Cui et al., "A Two-Phase Recall-and-Select
Framework for Fast Model Selection" (arXiv 2404.00069). The input is the performance matrix (one
row per model, one column per benchmark dataset, final scores in [0, 1]).

Distance between two models
    Over the datasets on which *both* models have a score > 0 (a NaN cell counts as "no score",
    like a score <= 0), take the absolute score differences and average the ``k_largest`` largest
    of them. Two models sharing ``k_largest`` or fewer such datasets are *not comparable*: their
    distance is ``inf`` in :attr:`ModelClustering.distances_` and they never end up in one cluster.

Agglomerative clustering (the paper's method, the default)
    Average linkage: the distance between two clusters is the mean distance over all cross pairs of
    their models. Clusters are merged while the closest pair of clusters is within ``threshold``
    (``<=``, as in the paper's released code). The paper uses 0.09 for its NLP matrix and 0.03 for
    its vision matrix. The tree is built by scikit-learn's ``AgglomerativeClustering``; a
    non-comparable pair is given a finite stand-in distance so large that any cluster pair containing
    one averages above every threshold that can be asked for, which is how the released code's
    sentinel (10,000,000) behaves too. ``threshold="silhouette"`` instead cuts the tree where the
    silhouette (below) is highest.

k-means (an alternative)
    ``method="kmeans"`` runs scikit-learn's ``KMeans`` on the score vectors, Euclidean distance,
    with each missing (NaN or <= 0) score replaced by its dataset's mean over the models that have
    one, so a missing score does not drag a model towards zero. ``n_clusters=None`` uses the number
    of clusters that the agglomerative method gives at ``threshold`` (what the released code's
    k-means experiment does). The released code's own k-means assigns points with the paper distance
    and starts from a random sample; this one is the standard, seeded algorithm.

Silhouette
    :attr:`ModelClustering.silhouette_` is scikit-learn's silhouette score on the precomputed paper
    distance, in which a non-comparable pair counts as the largest distance found between comparable
    models (so it is "as far apart as anything", without a sentinel swamping every average). It is
    NaN when undefined (one cluster, or every model alone). The released code reports a variant
    (nearest outside model instead of nearest cluster, over models of multi-model clusters only);
    this is the standard definition.

Cluster numbering is canonical: cluster ``c`` is the ``c``-th cluster in the order of each cluster's
first row in the matrix, and members are listed in row order. (The released code keeps its clusters
in the same order.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import AgglomerativeClustering, KMeans
from sklearn.metrics import silhouette_score

# The paper's settings for its NLP matrix (it uses 0.03 for the vision matrix).
from hfselect.config import DEFAULT_K_LARGEST, DEFAULT_THRESHOLD
from hfselect.errors import InvalidValueError
from hfselect.validation import check_int, check_threshold

__all__ = [
    "DEFAULT_K_LARGEST",
    "DEFAULT_THRESHOLD",
    "ModelClustering",
    "model_distance",
    "pairwise_model_distances",
]

# Silhouette search: at most this many tree cuts are scored (each costs O(n^2)); more distinct merge
# heights than this are thinned evenly.
MAX_SILHOUETTE_CANDIDATES = 256


def _scores_array(vector: Sequence[float] | np.ndarray | pd.Series) -> np.ndarray:
    return np.asarray(vector, dtype=float)


def model_distance(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, k_largest: int = DEFAULT_K_LARGEST
) -> float:
    """The paper's distance between two models' benchmark score vectors (same dataset order).

    Mean of the ``k_largest`` largest absolute differences over the datasets where both scores are
    > 0 (NaN counts as no score). Returns ``inf`` when the models share ``k_largest`` or fewer such
    datasets: they are not comparable.
    """
    x, y = _scores_array(a), _scores_array(b)
    if x.shape != y.shape:
        raise ValueError(f"score vectors differ in length: {x.shape} and {y.shape}")
    both = (x > 0) & (y > 0)  # NaN > 0 is False, so NaN is "no score"
    if int(both.sum()) <= k_largest:
        return math.inf
    largest = np.sort(np.abs(x[both] - y[both]))[::-1][:k_largest]
    # Add the differences largest first, one at a time: the released code sums them in this order,
    # and the same order gives bit-identical distances (thresholds sit on round numbers).
    total = 0.0
    for value in largest:
        total += float(value)
    return total / k_largest


def _distance_array(scores: np.ndarray, k_largest: int) -> np.ndarray:
    """All pairwise paper distances of the rows of ``scores`` (``inf`` where not comparable)."""
    n = scores.shape[0]
    positive = scores > 0
    distances = np.zeros((n, n))
    for i in range(n - 1):
        # One row against all later rows at a time: memory stays O(n * datasets).
        others = scores[i + 1 :]
        both = positive[i] & positive[i + 1 :]
        differences = np.where(both, np.abs(others - scores[i]), -np.inf)
        # Descending order; -inf (not shared) sorts last and is never among the k used when the pair
        # is comparable (more than k shared datasets).
        largest = -np.sort(-differences, axis=1)[:, :k_largest]
        total = np.zeros(len(others))
        for column in range(min(k_largest, largest.shape[1])):  # largest first, as model_distance
            total = total + largest[:, column]
        row = total / k_largest
        row[both.sum(axis=1) <= k_largest] = np.inf
        distances[i, i + 1 :] = row
        distances[i + 1 :, i] = row
    return distances


def pairwise_model_distances(performance: pd.DataFrame, k_largest: int = DEFAULT_K_LARGEST) -> pd.DataFrame:
    """The model x model paper-distance matrix of a performance matrix (``inf`` = not comparable).

    The diagonal is 0. See :func:`model_distance` for the definition.
    """
    frame = _as_frame(performance)
    distances = _distance_array(frame.to_numpy(dtype=float), _check_k(k_largest))
    return pd.DataFrame(distances, index=frame.index.copy(), columns=frame.index.copy())


def _as_frame(performance: pd.DataFrame | np.ndarray) -> pd.DataFrame:
    frame = performance if isinstance(performance, pd.DataFrame) else pd.DataFrame(np.asarray(performance))
    if frame.index.has_duplicates:
        duplicated = frame.index[frame.index.duplicated()].unique().tolist()
        raise ValueError(f"the performance matrix lists models more than once: {duplicated[:5]}")
    return frame


def _check_k(k_largest: int) -> int:
    return check_int("k_largest", k_largest, minimum=1)


def _canonical_labels(labels: np.ndarray) -> np.ndarray:
    """Renumber clusters in the order of their first row."""
    order: dict[int, int] = {}
    for label in labels.tolist():
        order.setdefault(label, len(order))
    return np.array([order[label] for label in labels.tolist()], dtype=int)


def _cut(children: np.ndarray, n_leaves: int, n_merges: int) -> np.ndarray:
    """Labels after applying the first ``n_merges`` merges of a linkage tree (a union-find)."""
    parent = list(range(n_leaves + len(children)))

    def find(node: int) -> int:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for step in range(n_merges):
        left, right = children[step]
        parent[find(int(left))] = n_leaves + step
        parent[find(int(right))] = n_leaves + step
    return _canonical_labels(np.array([find(leaf) for leaf in range(n_leaves)]))


def _silhouette(distances: np.ndarray, labels: np.ndarray) -> float:
    n_clusters = len(np.unique(labels))
    if n_clusters < 2 or n_clusters >= len(labels):
        return math.nan
    return float(silhouette_score(distances, labels, metric="precomputed"))


class ModelClustering(ClusterMixin, BaseEstimator):
    """Cluster models by their benchmark scores, as in the paper's offline phase.

    Args:
        threshold: agglomerative clustering merges while the closest pair of clusters (average
            linkage) is within this distance (``<=``). The paper uses 0.09 (NLP) and 0.03 (vision).
            ``"silhouette"`` cuts the tree where the silhouette is highest instead (ties: the larger
            threshold, i.e. fewer clusters; when no cut has a defined silhouette, 0.09 is used).
        k_largest: how many of the largest per-dataset differences the distance averages; pairs
            sharing this many or fewer datasets with scores > 0 are never merged.
        method: ``"agglomerative"`` (the paper's) or ``"kmeans"``.
        n_clusters: number of k-means clusters; ``None`` takes the agglomerative count at
            ``threshold``. Must be ``None`` for the agglomerative method.
        random_state: seed of k-means.

    Fitted attributes:
        labels_: cluster id of each row of the matrix (``np.ndarray`` of int), numbered in the order
            of each cluster's first row.
        clusters_: the clusters as lists of model ids (row order), ``clusters_[c]`` being cluster c.
        n_clusters_: number of clusters (singletons included).
        distances_: model x model distance DataFrame (``inf`` for non-comparable pairs).
        silhouette_: silhouette of the result on the distance (see the module docs); NaN if undefined.
        threshold_: the threshold used (the one chosen for ``"silhouette"``); ``None`` for k-means.
        n_features_in_: number of benchmark datasets.
    """

    def __init__(
        self,
        threshold: float | str = DEFAULT_THRESHOLD,
        k_largest: int = DEFAULT_K_LARGEST,
        method: str = "agglomerative",
        n_clusters: int | None = None,
        random_state: int | None = 0,
    ) -> None:
        # scikit-learn convention: store parameters exactly as given, validate in fit.
        self.threshold = threshold
        self.k_largest = k_largest
        self.method = method
        self.n_clusters = n_clusters
        self.random_state = random_state

    def fit(self, performance: pd.DataFrame, y: object = None) -> ModelClustering:
        """Cluster the rows (models) of ``performance`` (columns: benchmark datasets).

        ``y`` is ignored (scikit-learn API). Returns ``self``.
        """
        frame = _as_frame(performance)
        if len(frame) == 0:
            raise ValueError("the performance matrix has no models")
        k_largest = _check_k(self.k_largest)
        if self.method not in ("agglomerative", "kmeans"):
            raise ValueError(f"method must be 'agglomerative' or 'kmeans', not {self.method!r}")
        if self.method == "agglomerative" and self.n_clusters is not None:
            raise ValueError("n_clusters is for method='kmeans'; the agglomerative method uses threshold")
        check_threshold("threshold", self.threshold)
        if self.n_clusters is not None:
            check_int("n_clusters", self.n_clusters, minimum=1)

        scores = frame.to_numpy(dtype=float)
        n = len(frame)
        if self.n_clusters is not None and self.n_clusters > n:
            # Said before any work, with the count the user can act on.
            raise InvalidValueError(
                f"n_clusters is {self.n_clusters}, but there are only {n} models with benchmark results "
                f"to cluster: give n_clusters between 1 and {n}"
            )
        distances = _distance_array(scores, k_largest)
        finite = distances[np.isfinite(distances) & ~np.eye(n, dtype=bool)]
        largest_finite = float(finite.max()) if finite.size else 0.0
        # For the silhouette, a non-comparable pair counts as the farthest comparable pair.
        silhouette_distances = np.where(np.isinf(distances), largest_finite, distances)

        children, heights = self._tree(distances, largest_finite)
        # Merges of comparable models only: an average over finite distances never exceeds the
        # largest finite distance, while one involving a stand-in always does.
        allowed = int(np.count_nonzero(heights <= largest_finite)) if n > 1 else 0

        if self.method == "kmeans":
            threshold_used = None
            n_clusters = self.n_clusters
            if n_clusters is None:
                agglomerative_threshold = self._resolve_threshold(
                    children, heights, allowed, n, silhouette_distances
                )
                n_clusters = n - int(np.count_nonzero(heights[:allowed] <= agglomerative_threshold))
            labels = self._kmeans(scores, int(n_clusters))
        else:
            threshold_used = self._resolve_threshold(children, heights, allowed, n, silhouette_distances)
            merges = int(np.count_nonzero(heights[:allowed] <= threshold_used))
            labels = _cut(children, n, merges) if n > 1 else np.zeros(1, dtype=int)

        model_ids = list(frame.index)
        self.labels_ = labels
        self.n_clusters_ = int(labels.max()) + 1
        self.clusters_ = [
            [model_ids[i] for i in np.flatnonzero(labels == c)] for c in range(self.n_clusters_)
        ]
        self.distances_ = pd.DataFrame(distances, index=frame.index.copy(), columns=frame.index.copy())
        self.silhouette_ = _silhouette(silhouette_distances, labels)
        self.threshold_ = threshold_used
        self.n_features_in_ = frame.shape[1]
        return self

    def _tree(self, distances: np.ndarray, largest_finite: float) -> tuple[np.ndarray, np.ndarray]:
        """The full average-linkage tree: merge pairs and their heights (non-decreasing)."""
        n = len(distances)
        if n < 2:
            return np.zeros((0, 2), dtype=int), np.zeros(0)
        # Stand-in for "not comparable": even averaged with n^2 / 4 zero distances it stays above
        # every finite distance and every threshold, so such a merge is never applied.
        threshold = self.threshold if not isinstance(self.threshold, str) else 0.0
        stand_in = (n * n + 1.0) * 2.0 * max(1.0, largest_finite, float(threshold))
        matrix = np.where(np.isinf(distances), stand_in, distances)
        tree = AgglomerativeClustering(
            n_clusters=None,
            metric="precomputed",
            linkage="average",
            distance_threshold=0.0,  # build the whole tree; cut below
            compute_full_tree=True,
        ).fit(matrix)
        return tree.children_, np.asarray(tree.distances_, dtype=float)

    def _resolve_threshold(
        self,
        children: np.ndarray,
        heights: np.ndarray,
        allowed: int,
        n: int,
        silhouette_distances: np.ndarray,
    ) -> float:
        if not isinstance(self.threshold, str):
            return float(self.threshold)
        candidates = np.unique(heights[:allowed])
        if len(candidates) > MAX_SILHOUETTE_CANDIDATES:
            picks = np.linspace(0, len(candidates) - 1, MAX_SILHOUETTE_CANDIDATES).round().astype(int)
            candidates = candidates[np.unique(picks)]
        best, best_score = DEFAULT_THRESHOLD, -math.inf
        for candidate in candidates:
            labels = _cut(children, n, int(np.count_nonzero(heights[:allowed] <= candidate)))
            score = _silhouette(silhouette_distances, labels)
            # ">=": among equal silhouettes keep the larger threshold (fewer clusters to recall from).
            if not math.isnan(score) and score >= best_score:
                best, best_score = float(candidate), score
        return best

    def _kmeans(self, scores: np.ndarray, n_clusters: int) -> np.ndarray:
        present = scores > 0  # NaN > 0 is False
        counts = present.sum(axis=0)
        sums = np.where(present, scores, 0.0).sum(axis=0)
        # A dataset nobody has a score on carries no information: fill it with 0 for everyone.
        column_means = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
        filled = np.where(present, scores, column_means)
        model = KMeans(n_clusters=n_clusters, n_init=10, random_state=self.random_state).fit(filled)
        return _canonical_labels(model.labels_)
