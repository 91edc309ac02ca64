"""Coarse recall: cheap transferability proxies that score candidate models on a target sample.

Three layers:

* **Proxy scores**, pure functions of numpy arrays, each following its paper (and, where it
  matters, the authors' released code): :func:`leep`, :func:`nce`, :func:`logme`, :func:`hscore`
  and :func:`knn_probe`. :data:`PROXIES` names them, says which model output each one needs
  (``"probs"``: the source head's class probabilities, ``"hard"``: its argmax predictions,
  ``"features"``: pooled features) and whether higher is better (it is, for all of them).
* **Model outputs**: :func:`compute_model_outputs` runs one model over the sample, batched through
  Accelerate (one device, or several processes under ``accelerate launch`` with identical results),
  and returns pooled features plus, when the model has a trained classification head, the head's
  class probabilities. ``one_at_a_time=True`` is the unbatched, unpadded reference path.
* **Scoring with a cache**: :func:`score_models` loads the target sample once and scores every
  model, reading and writing the repository's ``proxy_scores`` table so that a model already
  scored on the same sample is never loaded again.

Feature pooling. Text models: the **mean of the last layer's hidden states over the real (non
padding) tokens**. It is defined for every architecture (encoders whose first token was never
trained as a summary, such as RoBERTa or DistilBERT without fine-tuning, and decoders, whose first
token sees nothing of the text), it does not depend on the padding side, and a padded batch gives
the same features as one unpadded example. Image models: the model's own pooled output
(``pooler_output``) when it returns one; otherwise (models with a classification head) the mean of
the last hidden state over spatial positions (what ResNet/ConvNeXt poolers compute) or over tokens.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import datasets
import numpy as np
import pyarrow as pa
from tqdm.auto import tqdm

from hfselect.data import ClassificationData, ColumnInfo, DatasetSpec, dataset_key, load_target_sample
from hfselect.errors import HfSelectError, ModelLoadError, RepositoryReadOnlyError
from hfselect.models import (
    describe_load_error,
    load_tokenizer_or_processor,
    local_model_sha,
    looks_like_local_path,
    model_key,
    warn_if_custom_code_ignored,
)
from hfselect.store.repository import ModelRepository, utcnow
from hfselect.validation import check_int

if TYPE_CHECKING:  # heavy imports, only needed when models actually run
    import torch
    from accelerate import Accelerator

__all__ = [
    "DEFAULT_FALLBACK",
    "OUTPUTS_VERSION",
    "PROXIES",
    "LoadedModel",
    "LogMEInfo",
    "ModelOutputs",
    "ProxyInfo",
    "ProxyRecord",
    "ProxyRun",
    "compute_model_outputs",
    "higher_is_better",
    "hscore",
    "knn_probe",
    "leep",
    "load_model_for_outputs",
    "logme",
    "nce",
    "resolve_model_sha",
    "run_proxy",
    "sample_fingerprint",
    "score_models",
]

logger = logging.getLogger(__name__)

#: Part of every cached score's dataset fingerprint: bump it when the way model outputs are
#: computed changes (pooling, dtype, preprocessing), so stale cached scores are not served.
OUTPUTS_VERSION = "mean-pool-v1"

#: The feature-based proxy used for models without a trained classification head when LEEP or NCE
#: is asked for.
DEFAULT_FALLBACK = "logme"

# Architecture name suffixes of a trained classification head, per input modality.
_HEAD_SUFFIXES = {"text": "ForSequenceClassification", "image": "ForImageClassification"}


# ==================================================================================================
# Proxy scores
# ==================================================================================================


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


def _proxy(name: str) -> ProxyInfo:
    try:
        return PROXIES[name]
    except KeyError:
        raise HfSelectError(f"unknown proxy {name!r}; choose one of {', '.join(PROXIES)}") from None


def higher_is_better(proxy: str) -> bool:
    """Whether a higher score of ``proxy`` predicts better transfer (true for every proxy here)."""
    return _proxy(proxy).higher_is_better


def run_proxy(proxy: str, outputs: ModelOutputs, labels: Any) -> float:
    """Score ``outputs`` with ``proxy``, feeding it the input it needs.

    Raises:
        HfSelectError: The proxy is unknown, or needs a classification head the model lacks.
    """
    info = _proxy(proxy)
    if info.needs_head and outputs.source_probs is None:
        raise HfSelectError(f"proxy {proxy} needs a model with a trained classification head")
    if info.needs == "probs":
        value = info.function(outputs.source_probs, labels)
    elif info.needs == "hard":
        value = info.function(outputs.source_labels, labels)
    else:
        value = info.function(outputs.features, labels)
    return float(value[0] if isinstance(value, tuple) else value)


# ==================================================================================================
# Model outputs
# ==================================================================================================


@dataclass
class ModelOutputs:
    """What a model produced on the target sample, in sample order.

    Attributes:
        features: ``(n, D)`` float32 pooled features (see the module docstring for the pooling).
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


@dataclass
class LoadedModel:
    """A model loaded for :func:`compute_model_outputs`, with its tokenizer or processor.

    Attributes:
        spec: The Hub id or local folder it was loaded from.
        model: The model, in eval mode, float32.
        processor: Its tokenizer (text) or image processor (image).
        modality: ``"text"`` or ``"image"``.
        has_head: Whether ``model`` has a trained classification head (its logits are meaningful).
        load_seconds: Time taken to load it.
        note: Why a head that the config names is not used, if so.
    """

    spec: str
    model: Any
    processor: Any
    modality: Literal["text", "image"]
    has_head: bool
    load_seconds: float = 0.0
    note: str | None = None


def _load_processor(spec: str, modality: str, token: str | bool | None, revision: str | None) -> Any:
    if revision is None:
        return load_tokenizer_or_processor(spec, modality=modality, token=token)
    # Same as load_tokenizer_or_processor, pinned to the commit whose sha keys the cache.
    from transformers import AutoImageProcessor, AutoTokenizer

    try:
        loader = AutoImageProcessor if modality == "image" else AutoTokenizer
        return loader.from_pretrained(spec, trust_remote_code=False, token=token, revision=revision)
    except Exception as error:
        what = "image processor" if modality == "image" else "tokenizer"
        raise ModelLoadError(
            f"cannot load the {what} of {spec}: {describe_load_error(error, False)}"
        ) from error


def load_model_for_outputs(
    model_spec: str,
    *,
    modality: Literal["text", "image"] = "text",
    token: str | bool | None = None,
    allow_pickle: bool = False,
    revision: str | None = None,
) -> LoadedModel:
    """Load a model (and its tokenizer or image processor) to compute proxy inputs.

    A model whose config names a classification architecture (``...ForSequenceClassification`` for
    text, ``...ForImageClassification`` for images) with at least two labels is loaded with its
    head (``AutoModelForSequenceClassification`` / ``AutoModelForImageClassification``), so the
    head's trained weights are used; others are loaded with ``AutoModel``. A head whose weights are
    missing from the checkpoint (they would be randomly initialised) is not used. Remote code never
    runs; only safetensors weights are read unless ``allow_pickle``. Weights are loaded in float32:
    proxies are sensitive to rounding and the sample is small.

    Raises:
        ModelLoadError: One line naming the model and the cause.
    """
    import torch
    from transformers import (
        AutoConfig,
        AutoModel,
        AutoModelForImageClassification,
        AutoModelForSequenceClassification,
    )

    started = time.perf_counter()
    common: dict[str, Any] = {"trust_remote_code": False, "token": token}
    if revision is not None:
        common["revision"] = revision
    try:
        config = AutoConfig.from_pretrained(model_spec, **common)
    except Exception as error:
        raise ModelLoadError(
            f"cannot load model {model_spec}: {describe_load_error(error, allow_pickle)}"
        ) from error
    warn_if_custom_code_ignored(model_spec, config)
    architectures = list(getattr(config, "architectures", None) or [])
    head_named = any(name.endswith(_HEAD_SUFFIXES[modality]) for name in architectures) and (
        len(getattr(config, "id2label", None) or {}) >= 2
    )
    # The tokenizer or processor first: it is small, and a model of the wrong modality fails here
    # before its weights are read.
    processor = _load_processor(model_spec, modality, token, revision)
    if head_named:
        auto_class = (
            AutoModelForImageClassification if modality == "image" else AutoModelForSequenceClassification
        )
    else:
        auto_class = AutoModel
    try:
        model, loading_info = auto_class.from_pretrained(
            model_spec,
            config=config,
            use_safetensors=None if allow_pickle else True,
            dtype=torch.float32,
            output_loading_info=True,
            **common,
        )
    except Exception as error:
        raise ModelLoadError(
            f"cannot load model {model_spec}: {describe_load_error(error, allow_pickle)}"
        ) from error
    has_head, note = head_named, None
    if head_named:
        # Parameters outside the base model are the head's; missing ones were randomly initialised.
        prefix = f"{model.base_model_prefix}."
        reported = (*loading_info.get("missing_keys", ()), *loading_info.get("mismatched_keys", ()))
        names = (str(key if isinstance(key, str) else key[0]) for key in reported)  # mismatches: tuples
        untrained = sorted(name for name in names if not name.startswith(prefix))
        if untrained:
            has_head = False
            note = f"its config names a classification head but the checkpoint lacks {untrained[0]}"
    if modality == "text":
        tokenizer = getattr(processor, "tokenizer", processor)
        # Decoder tokenizers (GPT-2 ...) have no pad token; padded positions are masked anyway.
        if getattr(tokenizer, "pad_token", None) is None:
            substitute = getattr(tokenizer, "eos_token", None) or getattr(tokenizer, "unk_token", None)
            if substitute is None:
                raise ModelLoadError(f"cannot load model {model_spec}: its tokenizer has no padding token")
            tokenizer.pad_token = substitute
        if getattr(model.config, "pad_token_id", None) is None:
            model.config.pad_token_id = tokenizer.pad_token_id
    model.eval()
    return LoadedModel(
        spec=model_spec,
        model=model,
        processor=processor,
        modality=modality,
        has_head=has_head,
        load_seconds=time.perf_counter() - started,
        note=note,
    )


def _preprocess(loaded: LoadedModel, sample: datasets.Dataset, columns: ColumnInfo, max_length: int) -> Any:
    # Reuse the fine-tuning preprocessing, so proxies see exactly the inputs fine-tuning will.
    from hfselect.data import preprocess_for_model

    data = ClassificationData(
        spec=DatasetSpec(path="target-sample"),
        splits=datasets.DatasetDict({"train": sample}),
        text_columns=list(columns.text_columns),
        image_column=columns.image_column,
        label_names=list(columns.label_names or []),
        fingerprint="",
    )
    with _quiet_datasets():
        return preprocess_for_model(data, loaded.processor, max_length=max_length)["train"]


@contextmanager
def _quiet_datasets() -> Iterator[None]:
    """Hide datasets' per-map progress bars while tokenising (one bar per model is noise)."""
    from datasets.utils import logging as datasets_logging

    was_enabled = datasets_logging.is_progress_bar_enabled()
    datasets_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            datasets_logging.enable_progress_bar()


def _forward_arguments(model: Any) -> set[str] | None:
    """The input names ``model.forward`` accepts, or ``None`` when it takes ``**kwargs``."""
    parameters = inspect.signature(model.forward).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return None
    return set(parameters)


def _pool(outputs: Any, attention_mask: torch.Tensor | None, modality: str) -> torch.Tensor:
    hidden_states = getattr(outputs, "hidden_states", None)
    last = hidden_states[-1] if hidden_states else outputs.last_hidden_state
    if modality == "image":
        pooled = getattr(outputs, "pooler_output", None)
        if pooled is not None:
            return pooled.reshape(pooled.shape[0], -1).float()
        if last.dim() == 4:  # (batch, channels, height, width)
            return last.float().mean(dim=(2, 3))
        return last.float().mean(dim=1)
    last = last.float()
    if attention_mask is None:
        return last.mean(dim=1)
    mask = attention_mask.to(last.dtype).unsqueeze(-1)
    return (last * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


def _forward(
    model: Any, inputs: dict[str, Any], accepted: set[str] | None, modality: str, has_head: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    inputs = {k: v for k, v in inputs.items() if k != "labels" and (accepted is None or k in accepted)}
    outputs = model(**inputs, output_hidden_states=True, return_dict=True)
    features = _pool(outputs, inputs.get("attention_mask"), modality)
    logits = outputs.logits.float() if has_head else None
    return features, logits


def _image_collate(rows: list[dict[str, Any]]) -> dict[str, Any]:
    import torch

    return {"pixel_values": torch.stack([row["pixel_values"] for row in rows])}


def compute_model_outputs(
    model_spec: str | LoadedModel,
    sample: datasets.Dataset,
    columns: ColumnInfo,
    *,
    batch_size: int = 64,
    max_length: int = 128,
    token: str | bool | None = None,
    allow_pickle: bool = False,
    one_at_a_time: bool = False,
    revision: str | None = None,
    accelerator: Accelerator | None = None,
) -> ModelOutputs:
    """Run a model over the target sample: pooled features and, with a trained head, probabilities.

    Batched path (default): the sample is tokenised (or image-processed) as for fine-tuning,
    ordered by length so that batches carry little padding, padded per batch with
    ``DataCollatorWithPadding`` and run under ``torch.inference_mode()`` through Accelerate
    (``accelerator.prepare`` on the model and the DataLoader, ``gather_for_metrics`` on the
    outputs), so it runs on the available device and, under ``accelerate launch``, splits the
    batches across processes; every process gets the full outputs, in sample order.

    ``one_at_a_time=True`` is the reference path: one example per forward pass, no padding, no
    DataLoader. Both give the same features and probabilities up to float rounding; it exists to
    check that and to measure what batching gains.

    Args:
        model_spec: A Hub id or local folder, or a :class:`LoadedModel` (nothing is loaded then).
        sample: The target sample, as returned by :func:`hfselect.data.load_target_sample`.
        columns: Its :class:`~hfselect.data.ColumnInfo`.
        batch_size: Examples per forward pass (per process) on the batched path.
        max_length: Truncation length for text, in tokens.
        token: Hub token, for private or gated models.
        allow_pickle: Allow loading pickle (``.bin``) weights.
        one_at_a_time: Use the unbatched reference path.
        revision: Hub commit to load (``score_models`` pins the sha it keys the cache with).
        accelerator: An ``Accelerator`` to use; a fresh one by default.

    Returns:
        :class:`ModelOutputs` in sample order.

    Raises:
        ModelLoadError: The model or its tokenizer/processor cannot be loaded.
    """
    import torch

    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    if isinstance(model_spec, LoadedModel):
        loaded = model_spec
        load_seconds = 0.0
    else:
        loaded = load_model_for_outputs(
            model_spec, modality=columns.modality, token=token, allow_pickle=allow_pickle, revision=revision
        )
        load_seconds = loaded.load_seconds
    if loaded.modality != columns.modality:
        raise ModelLoadError(
            f"model {loaded.spec} was loaded for {loaded.modality}, the sample holds {columns.modality}"
        )
    started = time.perf_counter()
    encoded = _preprocess(loaded, sample, columns, max_length)
    if one_at_a_time:
        features, logits = _run_one_at_a_time(loaded, encoded, accelerator)
    else:
        features, logits = _run_batched(loaded, encoded, batch_size, accelerator)
    probs = None
    if logits is not None:
        # Softmax in float64: LEEP takes logs of sums of small products.
        probs = torch.softmax(logits.double(), dim=-1).numpy()
    seconds = time.perf_counter() - started
    return ModelOutputs(
        features=features.numpy().astype(np.float32, copy=False),
        source_probs=probs,
        num_examples=int(features.shape[0]),
        seconds=seconds,
        load_seconds=load_seconds,
        note=loaded.note,
    )


def _run_batched(
    loaded: LoadedModel, encoded: Any, batch_size: int, accelerator: Accelerator | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    import torch
    from accelerate import Accelerator
    from torch.utils.data import DataLoader

    own_accelerator = accelerator is None
    accelerator = accelerator or Accelerator()
    n = len(encoded)
    if loaded.modality == "text":
        from transformers import DataCollatorWithPadding

        # Sorting by length keeps padding (wasted compute) small; outputs are put back in order.
        lengths = np.asarray([len(ids) for ids in encoded["input_ids"]])
        order = np.argsort(-lengths, kind="stable")
        # Plain rows, read from Arrow in one go: a DataLoader indexing the Dataset row by row spends
        # longer in datasets' formatting than a small model spends computing.
        columns = encoded.remove_columns("labels").to_dict()
        rows = [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]
        dataset = [rows[i] for i in order]
        tokenizer = getattr(loaded.processor, "tokenizer", loaded.processor)
        collate: Callable[..., Any] = DataCollatorWithPadding(tokenizer, return_tensors="pt")
    else:
        order = np.arange(n)
        dataset = encoded
        collate = _image_collate
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate)
    model, loader = accelerator.prepare(loaded.model, loader)
    accepted = _forward_arguments(accelerator.unwrap_model(model))
    feature_parts, logit_parts = [], []
    try:
        with torch.inference_mode():
            for batch in loader:
                features, logits = _forward(model, dict(batch), accepted, loaded.modality, loaded.has_head)
                # gather_for_metrics drops the examples Accelerate duplicated to even out the last
                # batches across processes, so every process ends with exactly the n outputs.
                feature_parts.append(accelerator.gather_for_metrics(features).cpu())
                if logits is not None:
                    logit_parts.append(accelerator.gather_for_metrics(logits).cpu())
    finally:
        _release(accelerator, own_accelerator, model, loader)
    gathered = torch.cat(feature_parts) if feature_parts else torch.zeros((0, 0))
    if gathered.shape[0] != n:
        raise HfSelectError(f"model {loaded.spec}: gathered {gathered.shape[0]} outputs for {n} examples")
    inverse = torch.from_numpy(np.argsort(order, kind="stable"))
    logits_all = torch.cat(logit_parts)[inverse] if logit_parts else None
    return gathered[inverse], logits_all


def _release(accelerator: Any, own: bool, *objects: Any) -> None:
    # Accelerator keeps a reference to everything it prepared; scoring hundreds of models with one
    # accelerator would otherwise keep them all in memory. Dropping those references is enough for
    # the model to be freed (no cycles hold it). Accelerator.free_memory() would also run a full
    # gc.collect(), which costs more than a tiny model's whole forward pass, for nothing on a CPU.
    for attribute in ("_models", "_dataloaders"):
        kept = getattr(accelerator, attribute, None)
        if isinstance(kept, list):
            kept[:] = [item for item in kept if not any(item is obj for obj in objects)]
    if own and accelerator.device.type != "cpu":
        import torch

        # Hand the freed blocks back to the device before the next model (torch.cuda.empty_cache,
        # or the same function of another backend: mps, xpu, npu).
        empty_cache = getattr(getattr(torch, accelerator.device.type, None), "empty_cache", None)
        if callable(empty_cache):
            empty_cache()


def _run_one_at_a_time(
    loaded: LoadedModel, encoded: Any, accelerator: Accelerator | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    import torch
    from accelerate import PartialState

    # The device the batched path would use, so that throughputs compare like with like.
    device = accelerator.device if accelerator is not None else PartialState().device
    model = loaded.model.to(device)
    accepted = _forward_arguments(model)
    feature_rows, logit_rows = [], []
    with torch.inference_mode():
        for row in encoded:
            if loaded.modality == "text":
                inputs = {
                    key: torch.tensor([value], device=device) for key, value in row.items() if key != "labels"
                }
            else:
                inputs = {"pixel_values": row["pixel_values"].unsqueeze(0).to(device)}
            features, logits = _forward(model, inputs, accepted, loaded.modality, loaded.has_head)
            feature_rows.append(features.cpu())
            if logits is not None:
                logit_rows.append(logits.cpu())
    features_all = torch.cat(feature_rows) if feature_rows else torch.zeros((0, 0))
    return features_all, (torch.cat(logit_rows) if logit_rows else None)


# ==================================================================================================
# Scoring with a cache
# ==================================================================================================


@dataclass
class ProxyRecord:
    """One model's proxy score on the target sample.

    Attributes:
        model_id: The model's key (Hub id, or local folder name).
        proxy_requested: The proxy asked for.
        proxy_used: The proxy that produced ``score`` (the fallback for a headless model).
        score: The score (higher is better).
        seconds: Time spent computing it (loading, inference, proxy), as stored in the cache.
        cached: Whether it came from the repository's cache (nothing was loaded or run).
        examples_per_second: Inference throughput (preprocessing + forward passes) measured for
            this record, ``None`` when cached.
        model_sha: The Hub commit sha, or the local folder's content hash.
        note: Why ``proxy_used`` differs from ``proxy_requested``, when it does.
    """

    model_id: str
    proxy_requested: str
    proxy_used: str
    score: float
    seconds: float | None
    cached: bool
    examples_per_second: float | None
    model_sha: str
    note: str | None = None


@dataclass
class ProxyRun:
    """The result of :func:`score_models`.

    Attributes:
        dataset: The target's key (see :func:`hfselect.data.dataset_key`).
        dataset_fingerprint: The sample's fingerprint (see :func:`sample_fingerprint`).
        proxy: The proxy asked for.
        sample_size: The sample size asked for.
        num_examples: The examples actually in the sample (fewer when the split is smaller).
        seed: The sampling seed.
        records: One record per scored model, in the order given.
        failures: ``model_id -> reason`` (one line) for each model that could not be scored.
        cache_error: Why computed scores could not be cached (a read-only repository), or None.
            The scores are still returned; the cache is not tried again in this run.
    """

    dataset: str
    dataset_fingerprint: str
    proxy: str
    sample_size: int
    num_examples: int
    seed: int
    records: list[ProxyRecord] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    cache_error: str | None = None

    def scores(self, proxy: str | None = None) -> dict[str, float]:
        """``model_id -> score``; only records whose ``proxy_used`` is ``proxy`` when given.

        Without ``proxy``, a headless model's fallback score sits next to the others' requested
        proxy scores; scores of different proxies are on different scales.
        """
        return {r.model_id: r.score for r in self.records if proxy is None or r.proxy_used == proxy}

    @property
    def notes(self) -> dict[str, str]:
        """``model_id -> note`` for the records that carry one (e.g. a proxy fallback)."""
        return {r.model_id: r.note for r in self.records if r.note}

    def ranking(self, proxy: str | None = None) -> list[tuple[str, float]]:
        """``(model_id, score)`` best first (every proxy here is higher-better); ties by id."""
        return sorted(self.scores(proxy).items(), key=lambda item: (-item[1], item[0]))


def sample_fingerprint(
    sample: datasets.Dataset, columns: ColumnInfo, *, max_length: int | None = None
) -> str:
    """A stable hash of a target sample's content, keying cached proxy scores.

    Covers the sample's Arrow table (its rows in order, serialised without schema metadata), the
    input columns and class names, the text truncation length (it changes what models see) and
    :data:`OUTPUTS_VERSION`. The same rows give the same fingerprint in any process or session.
    """
    digest = hashlib.sha256()
    header = {
        "text_columns": list(columns.text_columns),
        "image_column": columns.image_column,
        "label_names": list(columns.label_names or []),
        "max_length": max_length,
        "outputs": OUTPUTS_VERSION,
        "rows": sample.num_rows,
    }
    digest.update(json.dumps(header, sort_keys=True).encode())
    # with_format("arrow") honours a selection (indices mapping); ``sample.data`` would not.
    for table in sample.with_format("arrow").iter(batch_size=4096):
        table = table.replace_schema_metadata(None).combine_chunks()
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        digest.update(sink.getvalue().to_pybytes())
    return digest.hexdigest()[:32]


def resolve_model_sha(model_spec: str, *, token: str | bool | None = None) -> tuple[str, str | None]:
    """The sha that keys a model's cached scores, and the revision to load it at.

    A local folder: :func:`hfselect.models.local_model_sha`, revision ``None``. A Hub id: the
    current commit sha from one ``model_info`` call (no download), which is also the revision to
    load, so the scores stored under it come from exactly those weights.

    Raises:
        ModelLoadError: The Hub does not know the model or cannot be reached.
    """
    path = Path(model_spec).expanduser()
    if path.exists():
        return local_model_sha(path), None
    if looks_like_local_path(model_spec):
        # Not a Hub id ("owner/name") but a path: say so rather than ask the Hub.
        raise ModelLoadError(f"model {model_spec}: no such local folder")
    from huggingface_hub import HfApi

    from hfselect.hub.client import call_with_retries, describe_hub_error

    try:
        info = call_with_retries(
            lambda: HfApi().model_info(model_spec, token=token),
            max_time_s=30.0,
            waiting_for=f"the Hub to describe model {model_spec}",
        )
    except Exception as error:
        raise ModelLoadError(describe_hub_error(error, what=f"model {model_spec}")) from error
    if not info.sha:
        raise ModelLoadError(f"model {model_spec}: the Hub gave no commit sha")
    return info.sha, info.sha


_CACHE_COLUMNS = (
    "model_id",
    "model_sha",
    "dataset",
    "dataset_fingerprint",
    "proxy",
    "sample_size",
    "seed",
    "score",
    "seconds",
    "computed_at",
)


@dataclass(frozen=True)
class _CacheKey:
    model_id: str
    model_sha: str
    dataset_fingerprint: str
    sample_size: int
    seed: int


def _cache_lookup(repository: ModelRepository, key: _CacheKey, proxy: str) -> tuple[bool, Any, Any]:
    """``(found, score, seconds)``; a found row with a NULL score means "not applicable"."""
    rows = repository.query(
        "SELECT score, seconds FROM proxy_scores WHERE model_id = ? AND model_sha = ? "
        "AND dataset_fingerprint = ? AND proxy = ? AND sample_size = ? AND seed = ?",
        (key.model_id, key.model_sha, key.dataset_fingerprint, proxy, key.sample_size, key.seed),
    )
    if not rows:
        return False, None, None
    return True, rows[0]["score"], rows[0]["seconds"]


def _cache_store_all(
    repository: ModelRepository,
    key: _CacheKey,
    dataset: str,
    stores: list[tuple[str, float | None, float | None]],
) -> str | None:
    """Cache a model's computed scores; return why they could not be (a read-only repository), else None.

    A proxy score is worth printing even when it cannot be kept, so a read-only store is not a
    failure of the model.
    """
    try:
        for proxy, score, seconds in stores:
            _cache_store(repository, key, dataset, proxy, score, seconds)
    except RepositoryReadOnlyError as error:
        logger.debug("proxy scores not cached: %s", error)
        return str(error)
    return None


def _cache_store(
    repository: ModelRepository,
    key: _CacheKey,
    dataset: str,
    proxy: str,
    score: float | None,
    seconds: float | None,
) -> None:
    values = (
        key.model_id,
        key.model_sha,
        dataset,
        key.dataset_fingerprint,
        proxy,
        key.sample_size,
        key.seed,
        score,
        seconds,
        utcnow(),
    )
    with repository.transaction() as connection:
        connection.execute(
            f"INSERT INTO proxy_scores ({', '.join(_CACHE_COLUMNS)}) "
            f"VALUES ({', '.join('?' for _ in _CACHE_COLUMNS)}) "
            "ON CONFLICT (model_id, model_sha, dataset_fingerprint, proxy, sample_size, seed) DO UPDATE SET "
            "dataset = excluded.dataset, score = excluded.score, seconds = excluded.seconds, "
            "computed_at = excluded.computed_at",
            values,
        )


def _one_line(error: BaseException) -> str:
    # Our own errors are already one clear line; others get their type for context.
    text = str(error) if isinstance(error, HfSelectError) else f"{type(error).__name__}: {error}"
    text = " ".join(text.split()) or type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _fallback_note(proxy: str, fallback: str, reason: str | None) -> str:
    why = f" ({reason})" if reason else ""
    return f"no trained classification head{why}, which {proxy} needs: scored with {fallback} instead"


def score_models(
    repository: ModelRepository,
    model_specs: Sequence[str],
    target_spec: str | DatasetSpec,
    *,
    proxy: str = "leep",
    sample_size: int = 1000,
    seed: int = 0,
    text_columns: Sequence[str] | None = None,
    label_column: str | None = None,
    split: str | None = None,
    batch_size: int = 64,
    max_length: int = 128,
    token: str | bool | None = None,
    allow_pickle: bool = False,
    progress: bool = True,
    fallback: str = DEFAULT_FALLBACK,
) -> ProxyRun:
    """Score candidate models on a sample of the target with a transferability proxy, with a cache.

    The target sample (``sample_size`` labelled examples of ``split``, drawn with ``seed``) is
    loaded once with :func:`hfselect.data.load_target_sample`. For each model, the repository's
    ``proxy_scores`` table is looked up first, *before* the model is loaded, by (model id, model
    sha (:func:`resolve_model_sha`: one ``model_info`` call for a Hub id), sample fingerprint
    (:func:`sample_fingerprint`), proxy, sample size, seed); on a miss the model's outputs are
    computed (:func:`compute_model_outputs`), scored and stored with the time taken.

    LEEP and NCE need a trained classification head. A model without one is scored with
    ``fallback`` (LogME by default) instead: its record says so (``proxy_used`` and ``note``), the
    fallback score is stored under the fallback's name, and a NULL score is stored under the
    requested proxy, meaning "not applicable", so the next run goes straight to the fallback.

    A model that cannot be resolved, loaded or run is skipped: ``failures`` gives its reason in
    one line. Failures are not cached (they may be transient). Under ``accelerate launch`` every
    process computes the same scores and only the main process writes to the repository.

    Args:
        repository: The model repository holding the cache.
        model_specs: Hub ids or local model folders.
        target_spec: The target dataset (Hub id, ``ID:CONFIG`` or local path).
        proxy: A name in :data:`PROXIES`.
        sample_size: Examples to sample from the target.
        seed: Sampling seed.
        text_columns: Override of the target's text column(s).
        label_column: Override of the target's label column.
        split: The split to sample (default: train).
        batch_size: Examples per forward pass.
        max_length: Text truncation length in tokens.
        token: Hub token.
        allow_pickle: Allow pickle weights.
        progress: Show a progress bar over the models.
        fallback: A feature-based proxy for models without a trained head.

    Returns:
        A :class:`ProxyRun`.

    Raises:
        HfSelectError: An unknown proxy or fallback, or the target cannot be loaded
            (:class:`~hfselect.errors.DatasetError`).
    """
    check_int("sample_size", sample_size, minimum=1)
    check_int("batch_size", batch_size, minimum=1)
    check_int("max_length", max_length, minimum=1)
    requested = _proxy(proxy)
    fallback_info = _proxy(fallback)
    if fallback_info.needs_head:
        raise HfSelectError(
            f"the fallback proxy must work on features; {fallback} needs a classification head"
        )
    from accelerate import Accelerator

    sample, columns = load_target_sample(
        target_spec,
        sample_size,
        text_columns=text_columns,
        label_column=label_column,
        split=split,
        seed=seed,
        token=token,
    )
    labels = np.asarray(sample["label"], dtype=np.int64)
    dataset = dataset_key(target_spec)
    fingerprint = sample_fingerprint(sample, columns, max_length=max_length)
    run = ProxyRun(
        dataset=dataset,
        dataset_fingerprint=fingerprint,
        proxy=proxy,
        sample_size=sample_size,
        num_examples=sample.num_rows,
        seed=seed,
    )
    # One accelerator for all models; under ``accelerate launch`` only the main process shows
    # progress and writes to the repository.
    accelerator = Accelerator()
    is_main = accelerator.is_main_process
    bar = tqdm(
        list(model_specs), desc=f"Scoring models ({proxy})", unit="model", disable=not progress or not is_main
    )
    for spec in bar:
        model_id = model_key(spec)
        bar.set_postfix_str(model_id, refresh=False)
        record: ProxyRecord | None = None
        try:
            sha, revision = resolve_model_sha(spec, token=token)
            key = _CacheKey(model_id, sha, fingerprint, sample_size, seed)
            record = _cached_record(repository, key, requested, fallback_info)
            if record is None:
                record, stores = _compute_record(
                    spec,
                    key,
                    requested,
                    fallback_info,
                    sample,
                    columns,
                    labels,
                    batch_size=batch_size,
                    max_length=max_length,
                    token=token,
                    allow_pickle=allow_pickle,
                    revision=revision,
                    accelerator=accelerator,
                )
                if is_main and run.cache_error is None:
                    run.cache_error = _cache_store_all(repository, key, dataset, stores)
        except Exception as error:
            reason = _one_line(error)
            run.failures[model_id] = reason
            logger.warning("skipping model %s: %s", model_id, reason)
            continue
        finally:
            if record is None or not record.cached:
                # Collect the model just run (and free accelerator memory) before loading the next.
                accelerator.free_memory()
        if record.note:
            logger.info("%s: %s", model_id, record.note)
        run.records.append(record)
    bar.close()
    return run


def _cached_record(
    repository: ModelRepository, key: _CacheKey, requested: ProxyInfo, fallback: ProxyInfo
) -> ProxyRecord | None:
    found, score, seconds = _cache_lookup(repository, key, requested.name)
    used, note = requested.name, None
    if found and score is None:
        # NULL: the requested proxy does not apply to this model (no trained head); try the fallback.
        found, score, seconds = _cache_lookup(repository, key, fallback.name)
        used, note = fallback.name, _fallback_note(requested.name, fallback.name, None)
    if not found or score is None:
        return None
    return ProxyRecord(
        model_id=key.model_id,
        proxy_requested=requested.name,
        proxy_used=used,
        score=float(score),
        seconds=seconds,
        cached=True,
        examples_per_second=None,
        model_sha=key.model_sha,
        note=note,
    )


def _compute_record(
    spec: str,
    key: _CacheKey,
    requested: ProxyInfo,
    fallback: ProxyInfo,
    sample: datasets.Dataset,
    columns: ColumnInfo,
    labels: np.ndarray,
    *,
    batch_size: int,
    max_length: int,
    token: str | bool | None,
    allow_pickle: bool,
    revision: str | None,
    accelerator: Accelerator,
) -> tuple[ProxyRecord, list[tuple[str, float | None, float | None]]]:
    """Compute one model's score; also return the cache rows ``(proxy, score, seconds)`` to store."""
    started = time.perf_counter()
    outputs = compute_model_outputs(
        spec,
        sample,
        columns,
        batch_size=batch_size,
        max_length=max_length,
        token=token,
        allow_pickle=allow_pickle,
        revision=revision,
        accelerator=accelerator,
    )
    used, note = requested, None
    stores: list[tuple[str, float | None, float | None]] = []
    if requested.needs_head and outputs.source_probs is None:
        used = fallback
        note = _fallback_note(requested.name, fallback.name, outputs.note)
        stores.append((requested.name, None, None))
    score = run_proxy(used.name, outputs, labels)
    if not math.isfinite(score):
        raise HfSelectError(f"{used.name} gave a non-finite score ({score})")
    seconds = time.perf_counter() - started
    stores.append((used.name, score, seconds))
    record = ProxyRecord(
        model_id=key.model_id,
        proxy_requested=requested.name,
        proxy_used=used.name,
        score=score,
        seconds=seconds,
        cached=False,
        examples_per_second=outputs.examples_per_second,
        model_sha=key.model_sha,
        note=note,
    )
    return record, stores
