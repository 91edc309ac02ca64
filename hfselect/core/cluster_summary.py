"""What ``hfselect cluster`` shows: the clusters of a performance matrix, each with the representative
the recall uses.

Pure: a performance matrix and a fitted :class:`~hfselect.core.clustering.ModelClustering` in, a
:class:`ClusterSummary` out. :func:`hfselect.api.cluster` reads the matrix from a repository.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from hfselect.core.clustering import ModelClustering
from hfselect.core.recall import cluster_representatives, mean_benchmark_scores

__all__ = ["ClusterSummary", "ModelCluster", "summarize_clusters"]


@dataclass(frozen=True)
class ModelCluster:
    """One cluster: its representative first in ``members``, the others by mean benchmark score."""

    cluster: int
    representative: str
    members: list[str]

    @property
    def size(self) -> int:
        """How many models the cluster holds."""
        return len(self.members)


@dataclass(frozen=True)
class ClusterSummary:
    """The clusters of a repository's models, as ``hfselect cluster`` prints them."""

    models: int
    datasets: int
    threshold: float | None  # the threshold used (chosen, for "silhouette"); None for k-means
    silhouette: float | None  # None when undefined (one cluster, or every model alone)
    clusters: list[ModelCluster]
    mean_scores: dict[str, float]

    @property
    def n_clusters(self) -> int:
        """Number of clusters, singletons included."""
        return len(self.clusters)

    @property
    def multi_model_clusters(self) -> int:
        """Number of clusters of several models (the only ones with a representative of their own)."""
        return sum(1 for cluster in self.clusters if cluster.size > 1)

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``hfselect cluster --json``."""
        return {
            "models": self.models,
            "datasets": self.datasets,
            "n_clusters": self.n_clusters,
            "multi_model_clusters": self.multi_model_clusters,
            "threshold": self.threshold,
            "silhouette": self.silhouette,
            "clusters": [
                {
                    "cluster": c.cluster,
                    "size": c.size,
                    "representative": c.representative,
                    "members": c.members,
                }
                for c in self.clusters
            ],
        }


def summarize_clusters(performance: pd.DataFrame, clustering: ModelClustering) -> ClusterSummary:
    """Each cluster of ``clustering`` (fitted on ``performance``) with the recall's representative.

    The representative is the member with the best mean benchmark score (ties to the first row), as
    in :func:`hfselect.core.recall.cluster_representatives`; a singleton is its own.
    """
    means = mean_benchmark_scores(performance)
    representatives = cluster_representatives(clustering.clusters_, means)
    clusters = []
    for index, members in enumerate(clustering.clusters_):
        representative = representatives.get(index, members[0])
        others = sorted((m for m in members if m != representative), key=lambda model: -means[model])
        clusters.append(ModelCluster(index, representative, [representative, *others]))
    silhouette = clustering.silhouette_
    return ClusterSummary(
        models=len(performance),
        datasets=performance.shape[1],
        threshold=clustering.threshold_,
        silhouette=None if math.isnan(silhouette) else float(silhouette),
        clusters=clusters,
        mean_scores=means,
    )
