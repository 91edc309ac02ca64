"""Transferability proxies: pure functions that score a model's outputs on a labelled target sample.

Each follows its paper (and, where it matters, the authors' released code): :func:`leep`,
:func:`nce`, :func:`logme`, :func:`hscore` and :func:`knn_probe`. :data:`PROXIES` names them, says
which model output each one needs (``"probs"``: the source head's class probabilities, ``"hard"``:
its argmax predictions, ``"features"``: pooled features) and whether higher is better (it is, for
all of them). :class:`ModelOutputs` is what a model produced on the sample and :func:`run_proxy`
feeds a proxy the part it needs. Everything here is numpy on arrays already in memory: computing
the outputs is :mod:`hfselect.training.features`, scoring many models with a cache is
:mod:`hfselect.training.proxy_scoring`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from hfselect.errors import HfSelectError

__all__ = [
    "DEFAULT_FALLBACK",
    "PROXIES",
    "LogMEInfo",
    "ModelOutputs",
    "ProxyInfo",
    "higher_is_better",
    "hscore",
    "knn_probe",
    "leep",
    "logme",
    "nce",
    "proxy_info",
    "run_proxy",
]

logger = logging.getLogger(__name__)

#: The feature-based proxy used for models without a trained classification head when LEEP or NCE
#: is asked for.
DEFAULT_FALLBACK = "logme"


def _labels_1d(labels: Any, n: int | None = None) -> np.ndarray:
    y = np.asarray(labels)
    if y.ndim != 1:
        raise ValueError(f"labels must be a 1-d array of class ids, got shape {y.shape}")
    if n is not None and y.shape[0] != n:
        raise ValueError(f"{y.shape[0]} labels for {n} examples")
    if y.size == 0:
        raise ValueError("no examples")
    if not np.issubdtype(y.dtype, np.integer):
        if not np.all(np.equal(np.mod(y, 1), 0)):
            raise ValueError("labels must be integer class ids")
        y = y.astype(np.int64)
    if y.min() < 0:
        raise ValueError("labels must be non-negative class ids")
    return y.astype(np.int64, copy=False)


def _features_2d(features: Any) -> np.ndarray:
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2:
        raise ValueError(f"features must be a 2-d array (examples x dimensions), got shape {f.shape}")
    if not np.all(np.isfinite(f)):
        raise ValueError("features contain NaN or infinite values")
    return f


def leep(source_probs: Any, labels: Any) -> float:
    """Log Expected Empirical Prediction (LEEP) of a source classifier on a labelled target sample.

    Nguyen, Hassner, Seeger and Archambeau, "LEEP: A New Measure to Evaluate Transferability of
    Learned Representations", ICML 2020. With θ(x_i) the source head's distribution over source
    classes z ("dummy labels") for target example i and y_i its target label:

    * empirical joint ``P(y, z) = 1/n Σ_{i: y_i = y} θ(x_i)_z``, marginal ``P(z) = Σ_y P(y, z)``;
    * empirical conditional ``P(y | z) = P(y, z) / P(z)``;
    * ``LEEP = 1/n Σ_i log Σ_z P(y_i | z) θ(x_i)_z``.

    Args:
        source_probs: ``(n, Z)`` rows of source-class probabilities (each sums to 1).
        labels: ``(n,)`` target class ids.

    Returns:
        The LEEP score, ``<= 0``; higher means better expected transfer.
    """
    theta = np.asarray(source_probs, dtype=np.float64)
    if theta.ndim != 2:
        raise ValueError(f"source_probs must be 2-d (examples x source classes), got shape {theta.shape}")
    y = _labels_1d(labels, theta.shape[0])
    if np.any(theta < 0) or not np.allclose(theta.sum(axis=1), 1.0, atol=1e-3):
        raise ValueError("source_probs rows must be probability distributions (non-negative, summing to 1)")
    n = theta.shape[0]
    joint = np.zeros((int(y.max()) + 1, theta.shape[1]))
    np.add.at(joint, y, theta)
    joint /= n
    marginal = joint.sum(axis=0)
    # A source class no example puts mass on has P(z) = 0; its θ_z is 0 everywhere, so any finite
    # P(y|z) gives the same score. Use 0 rather than divide by zero.
    conditional = np.divide(joint, marginal, out=np.zeros_like(joint), where=marginal > 0)
    expected = np.einsum("iz,iz->i", theta, conditional[y])
    return float(np.mean(np.log(expected)))


def nce(source_labels: Any, labels: Any) -> float:
    """Negative Conditional Entropy (NCE) of target labels given hard source-class predictions.

    Tran, Nguyen and Hassner, "Transferability and Hardness of Supervised Classification Tasks",
    ICCV 2019. From the empirical joint distribution ``P(y, z)`` of target labels y and source
    predictions z (argmax of the source head) over the sample:
    ``NCE = -H(Y | Z) = Σ_{y,z} P(y, z) log (P(y, z) / P(z))``.

    Args:
        source_labels: ``(n,)`` predicted source class ids (hard labels).
        labels: ``(n,)`` target class ids.

    Returns:
        The NCE score, ``<= 0`` (nats); higher means better expected transfer.
    """
    z = _labels_1d(source_labels)
    y = _labels_1d(labels, z.shape[0])
    n = z.shape[0]
    pairs, counts = np.unique(np.stack([y, z], axis=1), axis=0, return_counts=True)
    z_counts = np.bincount(z)
    joint = counts / n
    conditional = counts / z_counts[pairs[:, 1]]
    return float(np.sum(joint * np.log(conditional)))


@dataclass
class LogMEInfo:
    """How LogME's evidence maximisation went, per target class (one-hot column).

    Attributes:
        classes: The class ids scored (those present in the labels), in order.
        evidences: Each class's maximised log evidence divided by n.
        alphas: The final prior precision alpha per class.
        betas: The final noise precision beta per class.
        iterations: The fixed-point iterations run per class.
        converged_per_class: Whether the iteration met the tolerance per class.
    """

    classes: list[int]
    evidences: list[float]
    alphas: list[float]
    betas: list[float]
    iterations: list[int]
    converged_per_class: list[bool]

    @property
    def converged(self) -> bool:
        """True when the iteration converged for every class."""
        return all(self.converged_per_class)


# LogME settings of the authors' released code (github.com/thuml/LogME, LogME.py,
# ``_fit_fixed_point``): at most 11 updates ("should converge after at most 10 steps, typically
# two or three"), stop when alpha/beta changes by at most 0.1 %, and 1e-5 added to the denominators.
_LOGME_MAX_ITERATIONS = 11
_LOGME_TOLERANCE = 1e-3
_LOGME_EPSILON = 1e-5


def logme(
    features: Any,
    labels: Any,
    *,
    max_iterations: int = _LOGME_MAX_ITERATIONS,
    tolerance: float = _LOGME_TOLERANCE,
    return_info: bool = False,
) -> float | tuple[float, LogMEInfo]:
    """LogME: the maximised log marginal evidence of a Bayesian linear model on the features.

    You, Liu, Wang and Long, "LogME: Practical Assessment of Pre-trained Models for Transfer
    Learning", ICML 2021 (Algorithm 1), with the fixed-point update of the authors' "Ranking and
    Tuning Pre-trained Models" (JMLR 2022) as in their released code. For each class c, the
    one-hot column ``y = [labels == c]`` is regressed on the features F (n x D) with prior
    ``w ~ N(0, I/alpha)`` and noise ``N(0, 1/beta)``. Starting from alpha = beta = 1, with sigma_i
    the eigenvalues of FᵀF (squared singular values of F) and t = alpha/beta:

    * ``gamma = Σ sigma_i / (sigma_i + t)``, ``m = (FᵀF + t I)⁻¹ Fᵀ y`` (through the SVD of F);
    * ``alpha = gamma / (mᵀm + ε)``, ``beta = (n - gamma) / (‖F m - y‖² + ε)``, until t changes
      by at most ``tolerance`` (relative) or ``max_iterations`` updates were made;
    * evidence ``L = D/2 log alpha + n/2 log beta - n/2 log 2π - beta/2 ‖F m - y‖²
      - alpha/2 mᵀm - 1/2 log|A|`` with ``A = alpha I + beta FᵀF``.

    The score is the mean over classes of ``L / n``. Two details differ from the released
    fixed-point code, both to evaluate the paper's formula exactly: ``log|A|`` counts the
    ``D - rank(F)`` eigenvalues equal to alpha (the released fixed-point code drops them when
    n < D; its ICML version and the paper keep them), and m is recomputed at the final
    (alpha, beta) before the evidence is evaluated. Only classes present in ``labels`` are scored
    (the released code also scores absent ids below the largest, which gives meaningless values).

    Args:
        features: ``(n, D)`` features of the target examples.
        labels: ``(n,)`` target class ids.
        max_iterations: Most alpha/beta updates per class.
        tolerance: Convergence threshold on the relative change of alpha/beta.
        return_info: Also return a :class:`LogMEInfo` (convergence, alpha, beta per class).

    Returns:
        The LogME score (higher is better), or ``(score, info)`` with ``return_info``. A warning
        is logged when the iteration did not converge for some class.
    """
    f = _features_2d(features)
    y = _labels_1d(labels, f.shape[0])
    n, d = f.shape
    u, s, _ = np.linalg.svd(f, full_matrices=False)
    # Keep the non-zero singular values only (the rank of F), as the released code does (it uses an
    # absolute 1e-10; relative to the largest here, so the rank does not depend on the feature scale).
    keep = s > 1e-10 * max(1.0, float(s[0]) if s.size else 1.0)
    u, s = u[:, keep], s[keep]
    sigma = s**2
    rank = int(sigma.size)
    info = LogMEInfo(classes=[], evidences=[], alphas=[], betas=[], iterations=[], converged_per_class=[])

    def fit_terms(t: float, x2: np.ndarray, residual_out: float) -> tuple[float, float, float]:
        gamma = float(np.sum(sigma / (sigma + t)))
        m2 = float(np.sum(sigma * x2 / (t + sigma) ** 2))  # mᵀm
        res2 = float(np.sum(x2 / (1.0 + sigma / t) ** 2)) + residual_out  # ‖F m - y‖²
        return gamma, m2, res2

    for c in np.unique(y):
        target = (y == c).astype(np.float64)
        x = u.T @ target
        x2 = x**2
        # The part of y outside F's column space is left as residual whatever m is.
        residual_out = max(0.0, float(target @ target - x2.sum()))
        alpha, beta = 1.0, 1.0
        converged, iterations = False, 0
        for iterations in range(1, max_iterations + 1):  # noqa: B007 (the count is reported)
            t = alpha / beta
            gamma, m2, res2 = fit_terms(t, x2, residual_out)
            alpha = gamma / (m2 + _LOGME_EPSILON)
            beta = (n - gamma) / (res2 + _LOGME_EPSILON)
            if abs(alpha / beta - t) / t <= tolerance:
                converged = True
                break
        _, m2, res2 = fit_terms(alpha / beta, x2, residual_out)
        log_det_a = float(np.sum(np.log(alpha + beta * sigma))) + (d - rank) * math.log(alpha)
        evidence = (
            d / 2.0 * math.log(alpha)
            + n / 2.0 * math.log(beta)
            - n / 2.0 * math.log(2 * math.pi)
            - beta / 2.0 * res2
            - alpha / 2.0 * m2
            - 0.5 * log_det_a
        ) / n
        info.classes.append(int(c))
        info.evidences.append(evidence)
        info.alphas.append(alpha)
        info.betas.append(beta)
        info.iterations.append(iterations)
        info.converged_per_class.append(converged)
    if not info.converged:
        stuck = [c for c, ok in zip(info.classes, info.converged_per_class, strict=True) if not ok]
        # As in the official implementation the score is still the evidence reached; with fewer
        # examples than feature dimensions it can keep rising. Worth a note, not a warning.
        logger.info(
            "LogME: the evidence maximisation did not converge in %d iterations for class(es) %s",
            max_iterations,
            stuck,
        )
    score = float(np.mean(info.evidences))
    return (score, info) if return_info else score


def hscore(features: Any, labels: Any, *, shrinkage: bool = False) -> float:
    """H-score: how much of the feature covariance the class-conditional means explain.

    Bao, Li, Huang, Wang, Zheng and Tong, "An Information-Theoretic Approach to Transferability in
    Task Transfer Learning", ICIP 2019: ``H(f) = tr(cov(f)⁻¹ cov(E[f | y]))``, with cov(f) the
    feature covariance and cov(E[f|y]) the covariance of each example's class-mean feature. As in
    the released code, covariances are unbiased (n - 1) and the inverse is the pseudo-inverse
    (``rcond=1e-15``).

    With ``shrinkage=True``, the regularised H-score of Ibrahim, Ponomareva and Mazumder, "Newer
    is not always better: Rethinking transferability metrics, their peculiarities, stability and
    performance", ECML-PKDD 2022: cov(f) becomes the Ledoit-Wolf shrinkage estimate
    ``(1 - a) cov(f) + a μ I`` of the centred features and the between-class covariance is scaled
    by ``(1 - a)``, which keeps the score stable when the dimension approaches the sample size.

    Args:
        features: ``(n, D)`` features of the target examples.
        labels: ``(n,)`` target class ids.
        shrinkage: Use the Ledoit-Wolf regularised variant (off by default).

    Returns:
        The H-score (higher is better).
    """
    f = _features_2d(features)
    y = _labels_1d(labels, f.shape[0])
    if f.shape[0] < 2:
        raise ValueError("H-score needs at least two examples")
    class_means = np.zeros_like(f)
    for c in np.unique(y):
        class_means[y == c] = f[y == c].mean(axis=0)
    cov_g = np.atleast_2d(np.cov(class_means, rowvar=False))
    if shrinkage:
        from sklearn.covariance import LedoitWolf

        estimator = LedoitWolf(assume_centered=False).fit(f - f.mean(axis=0, keepdims=True))
        cov_f = estimator.covariance_
        cov_g = (1.0 - estimator.shrinkage_) * cov_g
    else:
        cov_f = np.atleast_2d(np.cov(f, rowvar=False))
    return float(np.trace(np.linalg.pinv(cov_f, rcond=1e-15) @ cov_g))


def knn_probe(
    features: Any,
    labels: Any,
    *,
    k: int = 5,
    metric: Literal["cosine", "euclidean"] = "cosine",
    chunk_size: int = 1024,
) -> float:
    """Leave-one-out k-nearest-neighbour accuracy of the features (a non-parametric probe).

    Each example is classified by a majority vote of its k nearest *other* examples (uniform
    weights) and the score is the fraction classified correctly, so features that put same-class
    examples close together score high. This is the kNN evaluation of representation learning
    (e.g. Wu et al., "Unsupervised Feature Learning via Non-Parametric Instance Discrimination",
    CVPR 2018) used as a transferability proxy. Deterministic, and equal to scikit-learn's
    ``KNeighborsClassifier(k, metric=..., algorithm="brute")`` fitted on the other n - 1 examples:
    a vote tie goes to the smallest class id, and neighbours at equal distance are taken in
    example order.

    ``metric="cosine"`` (default) compares directions, the usual choice for transformer embeddings,
    whose norms vary with length and frequency; ``"euclidean"`` uses the plain distance.

    Args:
        features: ``(n, D)`` features of the target examples.
        labels: ``(n,)`` target class ids.
        k: Number of neighbours (at most n - 1 are used).
        metric: ``"cosine"`` or ``"euclidean"``.
        chunk_size: Rows of the distance matrix computed at once (bounds memory at large n).

    Returns:
        Leave-one-out accuracy in [0, 1] (higher is better).
    """
    f = _features_2d(features)
    y = _labels_1d(labels, f.shape[0])
    n = f.shape[0]
    if n < 2:
        raise ValueError("the kNN probe needs at least two examples")
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    if metric == "cosine":
        norms = np.linalg.norm(f, axis=1, keepdims=True)
        # A zero vector stays zero (cosine distance 1 to everything), as in scikit-learn.
        f = np.divide(f, norms, out=np.zeros_like(f), where=norms > 0)
    elif metric != "euclidean":
        raise ValueError(f"metric must be 'cosine' or 'euclidean', not {metric!r}")
    classes, y_index = np.unique(y, return_inverse=True)
    k_used = min(k, n - 1)
    squared_norms = np.einsum("ij,ij->i", f, f)
    correct = 0
    for start in range(0, n, chunk_size):
        stop = min(n, start + chunk_size)
        dot = f[start:stop] @ f.T
        if metric == "cosine":
            distance = 1.0 - dot
        else:  # squared distances rank like distances
            distance = np.maximum(squared_norms[start:stop, None] + squared_norms[None, :] - 2.0 * dot, 0.0)
        distance[np.arange(stop - start), np.arange(start, stop)] = np.inf  # leave the example out
        neighbours = np.argsort(distance, axis=1, kind="stable")[:, :k_used]
        votes = np.zeros((stop - start, classes.size), dtype=np.int64)
        np.add.at(votes, (np.arange(stop - start)[:, None], y_index[neighbours]), 1)
        correct += int(np.sum(votes.argmax(axis=1) == y_index[start:stop]))  # ties: smallest id
    return correct / n


ProxyInput = Literal["probs", "hard", "features"]


@dataclass(frozen=True)
class ProxyInfo:
    """A registered proxy.

    Attributes:
        name: Its name in :data:`PROXIES` and in the ``proxy_scores`` table.
        function: The score function, ``function(input, labels) -> float``.
        needs: The model output it takes: ``"probs"`` (source-head probabilities), ``"hard"``
            (argmax source predictions) or ``"features"`` (pooled features).
        higher_is_better: Whether a higher score predicts better transfer.
        paper: The paper it follows.
    """

    name: str
    function: Callable[..., Any]
    needs: ProxyInput
    higher_is_better: bool
    paper: str

    @property
    def needs_head(self) -> bool:
        """Whether the proxy needs a model with a trained classification head."""
        return self.needs in ("probs", "hard")


#: Every proxy by name.
PROXIES: dict[str, ProxyInfo] = {
    "leep": ProxyInfo("leep", leep, "probs", True, "Nguyen et al., ICML 2020"),
    "nce": ProxyInfo("nce", nce, "hard", True, "Tran et al., ICCV 2019"),
    "logme": ProxyInfo("logme", logme, "features", True, "You et al., ICML 2021"),
    "hscore": ProxyInfo("hscore", hscore, "features", True, "Bao et al., ICIP 2019"),
    "knn": ProxyInfo("knn", knn_probe, "features", True, "k-nearest-neighbour leave-one-out probe"),
}


def proxy_info(name: str) -> ProxyInfo:
    """The registered proxy called ``name``.

    Raises:
        HfSelectError: No proxy has that name.
    """
    try:
        return PROXIES[name]
    except KeyError:
        raise HfSelectError(f"unknown proxy {name!r}; choose one of {', '.join(PROXIES)}") from None


def higher_is_better(proxy: str) -> bool:
    """Whether a higher score of ``proxy`` predicts better transfer (true for every proxy here)."""
    return proxy_info(proxy).higher_is_better


def run_proxy(proxy: str, outputs: ModelOutputs, labels: Any) -> float:
    """Score ``outputs`` with ``proxy``, feeding it the input it needs.

    Raises:
        HfSelectError: The proxy is unknown, or needs a classification head the model lacks.
    """
    info = proxy_info(proxy)
    if info.needs_head and outputs.source_probs is None:
        raise HfSelectError(f"proxy {proxy} needs a model with a trained classification head")
    if info.needs == "probs":
        value = info.function(outputs.source_probs, labels)
    elif info.needs == "hard":
        value = info.function(outputs.source_labels, labels)
    else:
        value = info.function(outputs.features, labels)
    return float(value[0] if isinstance(value, tuple) else value)


@dataclass
class ModelOutputs:
    """What a model produced on the target sample, in sample order.

    Attributes:
        features: ``(n, D)`` float32 pooled features (see :mod:`hfselect.training.features` for the pooling).
        source_probs: ``(n, Z)`` float64 softmax of the trained classification head's logits, or
            ``None`` for a model without one.
        num_examples: n.
        seconds: Time to preprocess the sample and run the model over it (loading excluded).
        load_seconds: Time to load the model and its tokenizer or processor (0 when preloaded).
        note: Why there are no ``source_probs``, when there is a reason worth telling.
    """

    features: np.ndarray
    source_probs: np.ndarray | None
    num_examples: int
    seconds: float
    load_seconds: float = 0.0
    note: str | None = None

    @property
    def source_labels(self) -> np.ndarray | None:
        """Hard source-class predictions (argmax of ``source_probs``), or ``None``."""
        return None if self.source_probs is None else self.source_probs.argmax(axis=1)

    @property
    def examples_per_second(self) -> float:
        """Throughput of preprocessing plus inference."""
        return self.num_examples / self.seconds if self.seconds > 0 else float("inf")
