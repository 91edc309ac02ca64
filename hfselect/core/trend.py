"""Convergence trends: predict a run's final score from its first epochs.

Each model in the repository has learning curves on the benchmark datasets: its validation score
after every epoch. How a model's score at epoch ``e`` relates to its score at the end of training
is fairly stable across datasets (a model that learns fast keeps its early lead, one that starts
slowly catches up by a typical amount), so the benchmark curves predict where a new run on the
target will end up. Fine selection stops the runs predicted to end low.

Three predictors:

* :class:`KMeansTrendPredictor`, the paper's: k-means (K=4) over the model's epoch-``e`` scores
  across benchmark datasets; a new run is matched to the nearest centre and predicted to reach
  the mean final score of that cluster's datasets.
* :class:`HeadroomTrendPredictor`: the fraction of the remaining headroom ``(final - s_e) / (1 - s_e)``
  that the model closes after epoch ``e``, a robust median over its datasets; prediction
  ``s + r (1 - s)``. It is monotone in the current score (a better run is never predicted worse)
  and, unlike the k-means lookup, scales to targets whose scores lie outside the benchmarks' range.
* :class:`NeighboursTrendPredictor`: the median final score of the benchmark curves (of every
  model) whose first epochs are closest to the run's whole curve so far; it sees a run's shape
  (a too-low or too-high learning rate) where the other two see one score.

The first two are fitted per model on its benchmark curves.

When a model has curves on fewer than ``min_curves`` datasets, the curves of its peers (its
cluster, or every model) are pooled in; with no curves at all the prediction is the current score.
``evaluate_predictors`` measures the held-out error that chose the default (see the README), and
each fitted predictor knows its own (:meth:`TrendPredictor.holdout_error`), which fine selection
uses as the margin before calling a run a low performer.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hfselect.config import DEFAULT_MARGIN, DEFAULT_MARGIN_COVERAGE, DEFAULT_PREDICTOR


@dataclass(frozen=True)
class Curve:
    """One learning curve: validation scores after epochs 1..n (index 0 is epoch 1).

    ``group`` names what the curve shares with others, its benchmark dataset: a held-out error
    leaves out the whole group, so curves of the same dataset cannot vouch for each other.
    """

    scores: tuple[float, ...]
    group: str | None = None

    @property
    def final(self) -> float:
        """The score at the end of training."""
        return self.scores[-1]

    def at(self, epoch: float) -> float:
        """The score after ``epoch`` epochs, interpolated linearly between whole epochs.

        Before epoch 1 the epoch-1 score is used: benchmark curves start there, and a run evaluated
        every few steps needs a comparable point.
        """
        if epoch <= 1:
            return self.scores[0]
        if epoch >= len(self.scores):
            return self.scores[-1]
        return float(np.interp(epoch, np.arange(1, len(self.scores) + 1), self.scores))


def curves_by_model(curves: pd.DataFrame, min_epochs: int = 2) -> dict[str, list[Curve]]:
    """Group a long curves table (model_id, dataset, protocol, epoch, score) into curves per model.

    Curves shorter than ``min_epochs`` carry no trend and are left out.
    """
    grouped: dict[str, list[Curve]] = {}
    if curves.empty:
        return grouped
    keys = [column for column in ("model_id", "dataset", "protocol") if column in curves.columns]
    for key, frame in curves.sort_values("epoch").groupby(keys, sort=True):
        scores = tuple(float(value) for value in frame["score"])
        if len(scores) >= min_epochs and all(np.isfinite(scores)):
            model_id = key[0] if isinstance(key, tuple) else key
            dataset = str(key[1]) if isinstance(key, tuple) and len(key) > 1 else None
            grouped.setdefault(model_id, []).append(Curve(scores, dataset))
    return grouped


class TrendPredictor:
    """Base class: fitted on a model's benchmark curves, predicts the final score of a run."""

    name = "current"

    def __init__(self, curves: Sequence[Curve] = ()) -> None:
        self.curves = list(curves)

    # Whether make_predictor fits this kind on every model's curves, not only the model's own.
    pools_every_model = False

    def predict(self, score: float, epoch: float) -> float:
        """The predicted final score of a run that has ``score`` after ``epoch`` epochs."""
        return float(score)

    def predict_curve(self, scores: Sequence[float]) -> float:
        """The predicted final score of a run with ``scores`` after epochs 1..n (its whole curve so far).

        By default only the latest score counts; a predictor that uses the curve's shape overrides it.
        """
        return self.predict(float(scores[-1]), len(scores))

    def holdout_errors(self, epoch: float, groups: Sequence[object] | None = None) -> list[float]:
        """Leave-one-out errors after ``epoch`` epochs, one per curve that goes on after ``epoch``.

        A predictor of the same kind, fitted on the other curves (of more than one epoch), predicts
        the held-out curve's final score from its score at ``epoch``: the absolute error. With
        ``groups`` (one label per curve, e.g. its dataset; by default each curve's ``group``), every
        curve of the held-out curve's group is left out with it. After a whole number of epochs the
        prediction sees the held-out curve up to there (:meth:`predict_curve`).
        """
        labels = list(groups) if groups is not None else [curve.group for curve in self.curves]
        errors = []
        for index, held_out in enumerate(self.curves):
            if len(held_out.scores) <= epoch:
                continue
            rest = [
                curve
                for other, curve in enumerate(self.curves)
                if other != index
                and (labels[index] is None or labels[other] != labels[index])
                and len(curve.scores) > 1
            ]
            refitted = self._refit(rest)
            if float(epoch).is_integer():
                predicted = refitted.predict_curve(held_out.scores[: int(epoch)])
            else:
                predicted = refitted.predict(held_out.at(epoch), epoch)
            errors.append(abs(predicted - held_out.final))
        return errors

    def holdout_error(self, epoch: float) -> float:
        """How far off this predictor typically is after ``epoch`` epochs: NaN when that is unknown.

        The mean of :meth:`holdout_errors`; fewer than two of them give NaN.
        """
        errors = self._cached_holdout_errors(epoch)
        return float(np.mean(errors)) if len(errors) >= 2 else math.nan

    def error_bound(self, epoch: float, coverage: float = DEFAULT_MARGIN_COVERAGE) -> float:
        """An error this predictor exceeds in only ``1 - coverage`` of held-out runs after ``epoch`` epochs.

        The ``coverage`` quantile of :meth:`holdout_errors` (NaN with fewer than two), the margin of
        ``margin="auto"``. Held-out errors are heavy-tailed (a run with a learning rate far off its
        benchmarks' ends far from where its first epochs point), so their mean is passed by about a
        third of runs; a margin that small calls late bloomers low performers.
        """
        errors = self._cached_holdout_errors(epoch)
        return float(np.quantile(errors, coverage)) if len(errors) >= 2 else math.nan

    def _cached_holdout_errors(self, epoch: float) -> list[float]:
        """:meth:`holdout_errors` at ``epoch``, computed once: the mean and the bound both read them."""
        cache = self.__dict__.setdefault("_holdout_errors", {})
        if epoch not in cache:
            cache[epoch] = self.holdout_errors(epoch)
        return cache[epoch]

    def _refit(self, curves: Sequence[Curve]) -> TrendPredictor:
        """A predictor of the same kind and settings on other curves."""
        return type(self)(curves)


class HeadroomTrendPredictor(TrendPredictor):
    """Predict ``s + r (1 - s)`` where ``r`` is the median share of headroom the curves close after ``epoch``."""

    name = "headroom"

    def predict(self, score: float, epoch: float) -> float:
        """See the class docstring; with no curves, the current score."""
        shares = []
        for curve in self.curves:
            if epoch >= len(curve.scores):
                continue  # the curve is already at its end: it says nothing about what is left
            now = curve.at(epoch)
            headroom = 1.0 - now
            if headroom > 1e-6:
                shares.append((curve.final - now) / headroom)
        if not shares:
            return float(score)
        share = float(np.median(shares))
        return float(np.clip(score + share * (1.0 - score), 0.0, 1.0))


class KMeansTrendPredictor(TrendPredictor):
    """The paper's predictor: k-means over epoch-``e`` scores, predicting the matched cluster's mean final score."""

    name = "kmeans"

    def __init__(self, curves: Sequence[Curve] = (), n_clusters: int = 4, seed: int = 0) -> None:
        super().__init__(curves)
        self.n_clusters = n_clusters
        self.seed = seed
        self._fitted: dict[float, tuple[np.ndarray, np.ndarray]] = {}

    def _refit(self, curves: Sequence[Curve]) -> TrendPredictor:
        return KMeansTrendPredictor(curves, n_clusters=self.n_clusters, seed=self.seed)

    def _fit(self, epoch: float) -> tuple[np.ndarray, np.ndarray] | None:
        if epoch in self._fitted:
            return self._fitted[epoch]
        if not self.curves:
            return None
        from sklearn.cluster import KMeans

        now = np.array([[curve.at(epoch)] for curve in self.curves])
        finals = np.array([curve.final for curve in self.curves])
        clusters = min(self.n_clusters, len(np.unique(now)))
        if clusters < 2:
            centres, means = now[:1, 0], np.array([finals.mean()])
        else:
            model = KMeans(n_clusters=clusters, n_init=10, random_state=self.seed).fit(now)
            centres = model.cluster_centers_[:, 0]
            means = np.array([finals[model.labels_ == label].mean() for label in range(clusters)])
        self._fitted[epoch] = (centres, means)
        return self._fitted[epoch]

    def predict(self, score: float, epoch: float) -> float:
        """The mean final score of the cluster whose centre is nearest to ``score``."""
        fitted = self._fit(epoch)
        if fitted is None:
            return float(score)
        centres, means = fitted
        return float(means[int(np.argmin(np.abs(centres - score)))])


class NeighboursTrendPredictor(TrendPredictor):
    """Predict the median final score of the ``k`` benchmark curves whose first epochs look most like the run's.

    Curves are compared over every epoch the run has so far (root mean square difference), so a run
    that rises fast and one still flat at the same score are told apart: a learning rate too low or
    too high shows in the curve's shape long before its end. Fitted on every model's curves
    (:attr:`pools_every_model`): what a curve's shape says about its end depends more on how the run
    was trained than on which model it is.
    """

    name = "neighbours"
    pools_every_model = True

    def __init__(self, curves: Sequence[Curve] = (), k: int = 20) -> None:
        super().__init__(curves)
        self.k = k
        self._by_length: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def _refit(self, curves: Sequence[Curve]) -> TrendPredictor:
        return NeighboursTrendPredictor(curves, k=self.k)

    def _prefixes(self, epochs: int) -> tuple[np.ndarray, np.ndarray]:
        """First ``epochs`` scores and final score of every curve that goes on after ``epochs``."""
        if epochs not in self._by_length:
            longer = [curve for curve in self.curves if len(curve.scores) > epochs]
            prefixes = np.array([curve.scores[:epochs] for curve in longer]).reshape(len(longer), epochs)
            finals = np.array([curve.final for curve in longer])
            self._by_length[epochs] = (prefixes, finals)
        return self._by_length[epochs]

    def predict_curve(self, scores: Sequence[float]) -> float:
        """See the class docstring; with no curve that goes on past the run's epochs, the latest score."""
        prefixes, finals = self._prefixes(len(scores))
        if len(finals) == 0:
            return float(scores[-1])
        distances = np.sqrt(np.mean((prefixes - np.asarray(scores, dtype=float)) ** 2, axis=1))
        nearest = np.argsort(distances, kind="stable")[: self.k]
        return float(np.median(finals[nearest]))

    def holdout_errors(self, epoch: float, groups: Sequence[object] | None = None) -> list[float]:
        """As :meth:`TrendPredictor.holdout_errors`, computed at once from all pairwise distances."""
        if not float(epoch).is_integer():
            return super().holdout_errors(epoch, groups)
        epochs = int(epoch)
        labels = list(groups) if groups is not None else [curve.group for curve in self.curves]
        kept = [label for curve, label in zip(self.curves, labels, strict=True) if len(curve.scores) > epochs]
        prefixes, finals = self._prefixes(epochs)
        if len(finals) == 0:
            return []
        squares = (prefixes**2).sum(axis=1)
        # |a - b|^2 = |a|^2 + |b|^2 - 2 a.b: an n x n matrix, not n x n x epochs.
        distances = np.sqrt(
            np.maximum(squares[:, None] + squares[None, :] - 2 * prefixes @ prefixes.T, 0) / epochs
        )
        codes: dict[object, int] = {}
        group = np.array(
            [
                codes.setdefault(label, len(codes)) if label is not None else -1 - i
                for i, label in enumerate(kept)
            ]
        )
        same = group[:, None] == group[None, :]
        distances[same] = np.inf  # a curve never vouches for itself or for its own group
        usable = np.isfinite(distances)
        errors = []
        for row in range(len(finals)):
            if not usable[row].any():
                continue  # nothing left to fit on: the base class would predict the latest score
            nearest = np.argsort(distances[row], kind="stable")[: min(self.k, int(usable[row].sum()))]
            errors.append(abs(float(np.median(finals[nearest])) - float(finals[row])))
        return errors

    def predict(self, score: float, epoch: float) -> float:
        """From the latest score alone (a run evaluated mid-epoch): the nearest curves at that point."""
        longer = [curve for curve in self.curves if len(curve.scores) > epoch]
        if not longer:
            return float(score)
        distances = np.array([abs(curve.at(epoch) - score) for curve in longer])
        nearest = np.argsort(distances, kind="stable")[: self.k]
        return float(np.median([longer[i].final for i in nearest]))


PREDICTORS: dict[str, type[TrendPredictor]] = {
    "headroom": HeadroomTrendPredictor,
    "neighbours": NeighboursTrendPredictor,
    "kmeans": KMeansTrendPredictor,
    "current": TrendPredictor,
}


def resolve_margin(margin: float | str, predictor: TrendPredictor | None, epoch: float) -> float:
    """A low-performer margin as a number: ``"auto"`` is ``predictor``'s error bound at ``epoch``.

    The bound (:meth:`TrendPredictor.error_bound`) is the :data:`DEFAULT_MARGIN_COVERAGE` quantile of its
    held-out errors there.

    NaN means unknown (``"auto"`` without a predictor, or too few curves): such a run is never
    called a low performer.
    """
    if margin != "auto":
        return float(margin)
    return predictor.error_bound(epoch) if predictor is not None else math.nan


def make_predictor(
    name: str,
    model_id: str | None,
    curves: dict[str, list[Curve]],
    *,
    peers: Iterable[str] | None = None,
    min_curves: int = 3,
) -> TrendPredictor:
    """A predictor of kind ``name`` fitted for ``model_id``.

    Its own curves are used; with fewer than ``min_curves`` of them, the curves of ``peers`` (its
    cluster; every model in ``curves`` when ``peers`` is None) are added. A kind that
    :attr:`~TrendPredictor.pools_every_model` is fitted on every model's curves.
    """
    if name not in PREDICTORS:
        raise ValueError(f"unknown trend predictor {name!r}; choose from {', '.join(PREDICTORS)}")
    every_model = PREDICTORS[name].pools_every_model
    sources = curve_sources(model_id, curves, peers=peers, min_curves=min_curves, every_model=every_model)
    return PREDICTORS[name]([curve for source in sources for curve in curves[source]])


def curve_sources(
    model_id: str | None,
    curves: dict[str, list[Curve]],
    *,
    peers: Iterable[str] | None = None,
    min_curves: int = 3,
    every_model: bool = False,
) -> dict[str, int]:
    """Whose curves :func:`make_predictor` fits ``model_id``'s predictor on: model -> number of curves.

    Its own first; with fewer than ``min_curves`` of them (or always, for a predictor that
    ``every_model`` pools), every peer's that has curves. Empty when nobody has curves: the
    predictor then predicts the current score.
    """
    own = len(curves.get(model_id, [])) if model_id is not None else 0
    sources = {model_id: own} if model_id is not None and own else {}
    if every_model:
        sources.update({model: len(model_curves) for model, model_curves in curves.items() if model_curves})
        return sources
    if own < min_curves:
        pool = curves.keys() if peers is None else peers
        sources.update({peer: len(curves[peer]) for peer in pool if peer != model_id and curves.get(peer)})
    return sources


def evaluate_predictors(
    curves: pd.DataFrame,
    epochs: Sequence[int] = (1, 2),
    names: Sequence[str] = ("kmeans", "headroom", "current"),
) -> pd.DataFrame:
    """Held-out error of each predictor: leave one dataset out, predict its final score from epoch ``e``.

    For every model and every benchmark dataset, the predictor is fitted on the model's curves on
    the *other* datasets and predicts the held-out curve's final score from its score at epoch
    ``e``. Returns one row per (predictor, epoch) with the mean absolute error and the count.
    """
    rows = []
    keys = ["model_id", "dataset", "protocol"] if "protocol" in curves.columns else ["model_id", "dataset"]
    per_pair = {
        key: Curve(tuple(float(v) for v in frame.sort_values("epoch")["score"]), str(key[1]))
        for key, frame in curves.groupby(keys, sort=True)
    }
    by_model: dict[str, list[tuple[str, Curve]]] = {}
    for key, curve in per_pair.items():
        by_model.setdefault(key[0], []).append((key[1], curve))
    every = [curve for pairs in by_model.values() for _, curve in pairs]
    for name in names:
        for epoch in epochs:
            errors = []
            if PREDICTORS[name].pools_every_model:  # fitted on every model's curves, as make_predictor does
                errors = PREDICTORS[name](every).holdout_errors(epoch)
            for pairs in by_model.values() if not PREDICTORS[name].pools_every_model else ():
                datasets = [dataset for dataset, _ in pairs]
                predictor = PREDICTORS[name]([curve for _, curve in pairs])
                errors += predictor.holdout_errors(epoch, groups=datasets)
            rows.append(
                {
                    "predictor": name,
                    "epoch": epoch,
                    "mae": float(np.mean(errors)) if errors else np.nan,
                    "n": len(errors),
                }
            )
    return pd.DataFrame(rows)


def describe_trend_sources(
    candidates: Sequence[str],
    curves: dict[str, list[Curve]],
    *,
    predictor: str = DEFAULT_PREDICTOR,
    margin: float | str = DEFAULT_MARGIN,
    min_curves: int = 3,
) -> list[str]:
    """Notes on candidates without learning curves of their own (published results, fresh crawls).

    Says which prediction applies to them (the ``predictor`` fitted on the pooled curves of other
    models, or the current score when no model has curves) and what that does to the low-performer
    margin. Empty when every candidate has ``min_curves`` curves of its own.
    """
    pooled: dict[str, dict[str, int]] = {}
    current: list[str] = []
    for model in candidates:
        sources = curve_sources(model, curves, min_curves=min_curves)
        if not sources:
            current.append(model)
        elif sources.get(model, 0) < min_curves:
            pooled[model] = sources
    notes = []
    if pooled:
        others = max(len([m for m in sources if m != model]) for model, sources in pooled.items())
        pooled_curves = max(
            sum(n for m, n in sources.items() if m != model) for model, sources in pooled.items()
        )
        effect = (
            "the auto margin is that pooled predictor's held-out error: how well other models' trends "
            "predict, not theirs"
            if margin == "auto"
            else f"margin {float(margin):g}"
        )
        notes.append(
            f"{len(pooled)} candidate(s) have fewer than {min_curves} learning curves of their own "
            f"({', '.join(pooled)}): their final score is predicted by the {predictor} predictor fitted on "
            f"the pooled curves of {others} other model(s) ({pooled_curves} curves); {effect}"
        )
    if current:
        if margin == "auto":
            effect = (
                "the auto margin is unknown for them, so none is dropped as a predicted low performer: each "
                "round keeps the better half by current score (plain successive halving)"
            )
        elif float(margin) == 0:
            effect = (
                "with margin 0 every one of them scoring below a better-scoring rival is dropped as a "
                "predicted low performer after its first epoch"
            )
        else:
            effect = (
                f"one is dropped as a predicted low performer when its score plus the margin {float(margin):g} "
                "is below a better-scoring rival's"
            )
        notes.append(
            f"no learning curves in the repository for {len(current)} candidate(s) ({', '.join(current)}) "
            f"nor for any other model: their predicted final score is their current score; {effect}"
        )
    return notes
