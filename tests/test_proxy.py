"""Transferability proxies (hfselect.core.proxies), model outputs (hfselect.training.features) and
cached proxy scoring (hfselect.training.proxy_scoring).

Each proxy is checked against a plain, slow computation of its paper's formula written here; model
outputs and scoring run on tiny BERT models and a tiny parquet dataset built in temporary folders.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
from datasets import ClassLabel, Dataset, Features, Value

from hfselect.config import DEFAULT_PROXY
from hfselect.core.proxies import PROXIES, higher_is_better, hscore, knn_probe, leep, logme, nce
from hfselect.data import load_target_sample
from hfselect.errors import HfSelectError
from hfselect.store import ModelRepository
from hfselect.training import features as features_module
from hfselect.training.features import LoadedModel, compute_model_outputs, load_model_for_outputs
from hfselect.training.proxy_scoring import ProxyRun, sample_fingerprint, score_models

LABELS = ("alpha", "beta", "gamma")
WORDS = 90


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """One intra-op thread: on a loaded shared CPU, thread hand-offs dominate tiny forward passes."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# Tests that do not use the local Hub run offline: a stray Hub request fails at once.
pytestmark = pytest.mark.usefixtures("offline_unless_local_hub")


# ---------------------------------------------------------------------------------------------
# Reference computations, written for clarity rather than speed
# ---------------------------------------------------------------------------------------------


def _leep_reference(theta: np.ndarray, y: np.ndarray) -> float:
    n, num_source = theta.shape
    num_target = int(y.max()) + 1
    joint = [[0.0] * num_source for _ in range(num_target)]
    for i in range(n):
        for z in range(num_source):
            joint[y[i]][z] += theta[i, z] / n
    marginal = [sum(joint[c][z] for c in range(num_target)) for z in range(num_source)]
    total = 0.0
    for i in range(n):
        expected = sum(joint[y[i]][z] / marginal[z] * theta[i, z] for z in range(num_source))
        total += math.log(expected)
    return total / n


def _nce_reference(z: np.ndarray, y: np.ndarray) -> float:
    n = len(z)
    counts: dict[tuple[int, int], int] = {}
    z_counts: dict[int, int] = {}
    for zi, yi in zip(z.tolist(), y.tolist(), strict=True):
        counts[(yi, zi)] = counts.get((yi, zi), 0) + 1
        z_counts[zi] = z_counts.get(zi, 0) + 1
    # -H(Y|Z) = sum_{y,z} P(y,z) log P(y|z)
    return sum(c / n * math.log(c / z_counts[zi]) for (_, zi), c in counts.items())


def _evidence(f: np.ndarray, t: np.ndarray, alpha: float, beta: float) -> float:
    """Log evidence / n of Bayesian linear regression (You et al. 2021, eq. 2), with D x D matrices."""
    n, d = f.shape
    a = alpha * np.eye(d) + beta * f.T @ f
    m = beta * np.linalg.solve(a, f.T @ t)
    residual = float(np.sum((f @ m - t) ** 2))
    log_det = np.linalg.slogdet(a)[1]
    value = (
        d / 2 * math.log(alpha)
        + n / 2 * math.log(beta)
        - n / 2 * math.log(2 * math.pi)
        - beta / 2 * residual
        - alpha / 2 * float(m @ m)
        - log_det / 2
    )
    return value / n


def _covariance(x: np.ndarray) -> np.ndarray:
    mean = x.sum(axis=0) / len(x)
    total = np.zeros((x.shape[1], x.shape[1]))
    for row in x:
        total += np.outer(row - mean, row - mean)
    return total / (len(x) - 1)


def _hscore_reference(f: np.ndarray, y: np.ndarray) -> float:
    class_mean = {c: f[y == c].mean(axis=0) for c in set(y.tolist())}
    g = np.stack([class_mean[c] for c in y.tolist()])
    return float(np.trace(np.linalg.pinv(_covariance(f), rcond=1e-15) @ _covariance(g)))


def _data(seed: int, n: int = 90, d: int = 6, classes: int = 3, signal: float = 1.0, offset: float = 0.0):
    """Gaussian class clusters; ``offset`` moves them off the origin (as real features are), which
    gives LogME's intercept-free regression of one-hot targets a finite optimum to converge to."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    rng.shuffle(y)
    centres = rng.normal(size=(classes, d))
    features = rng.normal(size=(n, d)) + signal * centres[y] + offset
    return features, y


# ---------------------------------------------------------------------------------------------
# Proxies against their formulas
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_leep_matches_explicit_loops(seed):
    rng = np.random.default_rng(seed)
    n, num_source = 40, 5
    logits = rng.normal(size=(n, num_source)) * 2
    theta = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = rng.integers(0, 4, size=n)
    assert leep(theta, y) == pytest.approx(_leep_reference(theta, y), rel=1e-12, abs=1e-12)
    assert leep(theta, y) <= 0


def test_leep_rejects_rows_that_are_not_distributions():
    with pytest.raises(ValueError, match="probability"):
        leep(np.array([[0.5, 0.6], [0.5, 0.5]]), np.array([0, 1]))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nce_matches_explicit_counts(seed):
    rng = np.random.default_rng(seed)
    z = rng.integers(0, 6, size=70)
    y = rng.integers(0, 3, size=70)
    assert nce(z, y) == pytest.approx(_nce_reference(z, y), rel=1e-12)
    # Target labels determined by the source prediction: no conditional entropy left.
    assert nce(z, z % 2) == pytest.approx(0.0, abs=1e-12)


# With n < D the iteration moves slowly; the released code's 11 updates may stop short of the end.
@pytest.mark.parametrize(("n", "d", "max_iterations"), [(60, 5, 11), (120, 10, 11), (30, 40, 100)])
def test_logme_is_the_maximised_evidence(n, d, max_iterations):
    features, y = _data(n + d, n=n, d=d, offset=2.0)
    score, info = logme(features, y, max_iterations=max_iterations, return_info=True)

    assert info.converged, info.iterations
    assert info.classes == [0, 1, 2]
    assert score == pytest.approx(np.mean(info.evidences), rel=1e-12)
    for c, alpha, beta, evidence in zip(info.classes, info.alphas, info.betas, info.evidences, strict=True):
        target = (y == c).astype(float)
        # The reported evidence is the closed-form evidence at the reported (alpha, beta) ...
        assert evidence == pytest.approx(_evidence(features, target, alpha, beta), rel=1e-9, abs=1e-9)
        if n < d:
            # F can fit some targets exactly: the evidence may rise for ever as beta grows and the
            # iteration just creeps after it, so there is no maximum to compare with.
            continue
        # ... and no (alpha, beta) on a grid around it or across the plane does better.
        local = [
            _evidence(features, target, alpha * a, beta * b)
            for a, b in itertools.product(np.logspace(-0.5, 0.5, 11), repeat=2)
        ]
        wide = [
            _evidence(features, target, a, b)
            for a, b in itertools.product(np.logspace(-3, 4, 22), np.logspace(-2, 3, 16))
        ]
        assert max(local) <= evidence + 1e-6
        assert max(wide) <= evidence + 1e-6
        assert max(local) >= evidence - 1e-12  # the grid contains the point itself


def test_logme_reports_non_convergence(caplog):
    features, y = _data(3, n=40, d=60)
    with caplog.at_level("INFO", logger="hfselect.core.proxies"):
        _, info = logme(features, y, max_iterations=1, return_info=True)
    assert not info.converged and info.iterations == [1, 1, 1]
    assert "did not converge" in caplog.text


@pytest.mark.parametrize("seed", [0, 1])
def test_hscore_matches_explicit_covariances(seed):
    features, y = _data(seed, n=50, d=4)
    assert hscore(features, y) == pytest.approx(_hscore_reference(features, y), rel=1e-9)


def test_hscore_shrinkage_variant():
    from sklearn.covariance import LedoitWolf

    features, y = _data(5, n=30, d=20)
    estimate = LedoitWolf().fit(features)
    a = estimate.shrinkage_
    emp = _covariance(features) * (len(features) - 1) / len(features)  # Ledoit-Wolf: biased
    shrunk = (1 - a) * emp + a * np.trace(emp) / emp.shape[0] * np.eye(emp.shape[0])
    class_mean = {c: features[y == c].mean(axis=0) for c in set(y.tolist())}
    cov_g = _covariance(np.stack([class_mean[c] for c in y.tolist()]))
    expected = np.trace(np.linalg.pinv(shrunk, rcond=1e-15) @ ((1 - a) * cov_g))
    assert hscore(features, y, shrinkage=True) == pytest.approx(expected, rel=1e-9)
    assert hscore(features, y, shrinkage=True) != pytest.approx(hscore(features, y))


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize("k", [1, 4])
def test_knn_probe_matches_sklearn_leave_one_out(metric, k):
    from sklearn.neighbors import KNeighborsClassifier

    features, y = _data(k, n=40, d=5, signal=0.7)
    correct = 0
    for i in range(len(y)):
        rest = np.arange(len(y)) != i
        classifier = KNeighborsClassifier(n_neighbors=k, metric=metric, algorithm="brute")
        classifier.fit(features[rest], y[rest])
        correct += int(classifier.predict(features[i : i + 1])[0] == y[i])
    assert knn_probe(features, y, k=k, metric=metric) == correct / len(y)
    # Chunking the distance matrix changes nothing.
    assert knn_probe(features, y, k=k, metric=metric, chunk_size=7) == correct / len(y)


def test_registry():
    assert set(PROXIES) == {"leep", "nce", "logme", "hscore", "knn"}
    assert {name: info.needs for name, info in PROXIES.items()} == {
        "leep": "probs",
        "nce": "hard",
        "logme": "features",
        "hscore": "features",
        "knn": "features",
    }
    assert all(higher_is_better(name) for name in PROXIES)
    with pytest.raises(HfSelectError, match="unknown proxy"):
        higher_is_better("accuracy")


def test_proxies_rank_informative_above_random():
    features, y = _data(11, n=150, d=8, signal=2.0)
    noise = np.random.default_rng(12).normal(size=features.shape)
    for name in ("logme", "hscore", "knn"):
        function = PROXIES[name].function
        assert function(features, y) > function(noise, y), name

    rng = np.random.default_rng(13)
    informative = np.full((len(y), 4), 0.05)
    informative[np.arange(len(y)), y] = 0.85  # the source head "knows" the target classes
    random_probs = rng.dirichlet(np.ones(4), size=len(y))
    assert leep(informative, y) > leep(random_probs, y)
    assert nce(informative.argmax(axis=1), y) > nce(random_probs.argmax(axis=1), y)


# ---------------------------------------------------------------------------------------------
# Tiny models and a tiny dataset
# ---------------------------------------------------------------------------------------------


def _tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4}
    vocab.update({f"w{i}": 5 + i for i in range(WORDS)})
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", 2), ("[SEP]", 3)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=64,
    )


def _save_tiny_bert(folder: Path, *, head: bool, seed: int = 0) -> Path:
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertModel

    config = BertConfig(
        vocab_size=5 + WORDS,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        num_labels=3,
    )
    torch.manual_seed(seed)
    model = BertForSequenceClassification(config) if head else BertModel(config)
    model.save_pretrained(folder)
    _tokenizer().save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("zoo")
    head = _save_tiny_bert(root / "tiny-head", head=True)
    headless = _save_tiny_bert(root / "tiny-headless", head=False, seed=1)
    broken = root / "tiny-broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    return {"head": head, "headless": headless, "broken": broken, "data": _dataset(root / "tiny-topics")}


def _texts(n: int, seed: int) -> tuple[list[str], list[int]]:
    """Texts whose words lean towards their class's third of the vocabulary, of varied lengths."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        label = i % 3
        words = [
            int(label * 30 + rng.integers(30)) if rng.random() < 0.7 else int(rng.integers(WORDS))
            for _ in range(int(rng.integers(2, 30)))
        ]
        texts.append(" ".join(f"w{w}" for w in words))
        labels.append(label)
    return texts, labels


def _dataset(folder: Path, sizes: tuple[int, int, int] = (90, 12, 12)) -> Path:
    folder.mkdir(parents=True)
    features = Features({"text": Value("string"), "label": ClassLabel(names=list(LABELS))})
    for seed, (split, n) in enumerate(zip(("train", "validation", "test"), sizes, strict=True)):
        texts, labels = _texts(n, seed)
        Dataset.from_dict({"text": texts, "label": labels}, features=features).to_parquet(
            str(folder / f"{split}.parquet")
        )
    return folder


# ---------------------------------------------------------------------------------------------
# Model outputs
# ---------------------------------------------------------------------------------------------


def test_model_outputs_head_and_headless_batched_equals_one_at_a_time(zoo, monkeypatch):
    from accelerate import Accelerator

    sample, columns = load_target_sample(str(zoo["data"]), 60, seed=0)
    gathered = []
    original = Accelerator.gather_for_metrics

    def counting_gather(self, data, *args, **kwargs):
        gathered.append(int(data.shape[0]))
        return original(self, data, *args, **kwargs)

    monkeypatch.setattr(Accelerator, "gather_for_metrics", counting_gather)

    head = load_model_for_outputs(str(zoo["head"]))
    assert isinstance(head, LoadedModel) and head.has_head and head.note is None
    batched = compute_model_outputs(head, sample, columns, batch_size=16)
    single = compute_model_outputs(head, sample, columns, one_at_a_time=True)
    assert batched.num_examples == single.num_examples == 60
    assert batched.features.shape == (60, 16) and batched.features.dtype == np.float32
    assert batched.source_probs is not None and batched.source_probs.shape == (60, 3)
    np.testing.assert_allclose(batched.source_probs.sum(axis=1), 1.0, atol=1e-9)
    assert (batched.source_probs > 0).all()
    np.testing.assert_allclose(batched.features, single.features, atol=1e-5, rtol=0)
    np.testing.assert_allclose(batched.source_probs, single.source_probs, atol=1e-5, rtol=0)
    assert batched.examples_per_second > 0 and batched.seconds > 0
    # Four batches of features and four of logits went through Accelerate's gather.
    assert gathered == [16, 16, 16, 16, 16, 16, 12, 12]

    # Loading by path gives the same outputs as the preloaded model.
    by_path = compute_model_outputs(str(zoo["head"]), sample, columns, batch_size=7)
    np.testing.assert_allclose(by_path.features, batched.features, atol=1e-5, rtol=0)
    assert by_path.load_seconds > 0

    headless = load_model_for_outputs(str(zoo["headless"]))
    assert not headless.has_head
    batched = compute_model_outputs(headless, sample, columns, batch_size=8)
    single = compute_model_outputs(headless, sample, columns, one_at_a_time=True)
    assert batched.source_probs is None and single.source_probs is None
    assert batched.features.shape == (60, 16)
    np.testing.assert_allclose(batched.features, single.features, atol=1e-5, rtol=0)


def test_model_outputs_release_what_accelerate_holds_without_a_full_gc(zoo, monkeypatch):
    import gc

    from accelerate import Accelerator

    sample, columns = load_target_sample(str(zoo["data"]), 20, seed=0)
    collections = []
    monkeypatch.setattr(gc, "collect", lambda *args: collections.append(args) or 0)
    shared = Accelerator()
    for model in ("head", "headless"):
        compute_model_outputs(str(zoo[model]), sample, columns, batch_size=8, accelerator=shared)
        # Nothing prepared stays referenced by the accelerator: a long scoring run keeps one model.
        assert shared._models == [] and shared._dataloaders == []
    compute_model_outputs(str(zoo["head"]), sample, columns, batch_size=8)
    # On a CPU no garbage collection pass is forced (it used to cost more than a tiny model's forward).
    assert collections == []


def test_features_are_masked_mean_of_last_hidden_state(zoo):
    import torch

    sample, columns = load_target_sample(str(zoo["data"]), 5, seed=1)
    loaded = load_model_for_outputs(str(zoo["headless"]))
    outputs = compute_model_outputs(loaded, sample, columns, batch_size=5)
    tokenizer = loaded.processor
    for i, text in enumerate(sample["text"]):
        # Accelerate may have moved the model to an accelerator: the reference runs where it is.
        encoded = tokenizer(text, return_tensors="pt").to(loaded.model.device)
        with torch.no_grad():
            hidden = loaded.model(**encoded).last_hidden_state[0]
        np.testing.assert_allclose(outputs.features[i], hidden.mean(dim=0).cpu().numpy(), atol=1e-5)


def test_head_named_in_config_but_missing_weights_is_not_used(zoo, tmp_path):
    # A checkpoint whose config says ForSequenceClassification but holds only the encoder.
    folder = _save_tiny_bert(tmp_path / "fake-head", head=False)
    config = json.loads((folder / "config.json").read_text())
    config["architectures"] = ["BertForSequenceClassification"]
    (folder / "config.json").write_text(json.dumps(config))
    loaded = load_model_for_outputs(str(folder))
    assert not loaded.has_head and "classifier" in (loaded.note or "")

    # Scored with the fallback, the note says why; a missing folder is a one-line failure.
    repository = ModelRepository(tmp_path / "repo.sqlite")
    missing = str(tmp_path / "no-such-model")
    run = score_models(
        repository, [str(folder), missing], str(zoo["data"]), proxy="leep", sample_size=30, progress=False
    )
    assert run.records[0].proxy_used == "logme" and "lacks classifier" in run.records[0].note
    assert run.failures == {missing: f"model {missing}: no such local folder"}
    # With no proxy named, the default (that of `hfselect recall`) is asked for, so nothing falls back.
    default = score_models(repository, [str(folder)], str(zoo["data"]), sample_size=30, progress=False)
    assert default.proxy == DEFAULT_PROXY and default.records[0].proxy_used == DEFAULT_PROXY
    assert default.records[0].note is None
    repository.close()


# ---------------------------------------------------------------------------------------------
# Scoring with the cache
# ---------------------------------------------------------------------------------------------


def _scores_table(repository: ModelRepository) -> dict[tuple[str, str], float | None]:
    rows = repository.table("proxy_scores").to_dict(orient="records")
    # A score the proxy does not apply to is NULL: None here, not the DataFrame's NaN.
    return {
        (row["model_id"], row["proxy"]): None if math.isnan(row["score"]) else row["score"] for row in rows
    }


def test_score_models_fallback_failures_and_cache(zoo, tmp_path, monkeypatch):
    repository = ModelRepository(tmp_path / "repo.sqlite")
    specs = [str(zoo["head"]), str(zoo["headless"]), str(zoo["broken"])]
    run = score_models(repository, specs, str(zoo["data"]), proxy="leep", sample_size=50, progress=False)

    assert isinstance(run, ProxyRun)
    assert (run.dataset, run.proxy, run.sample_size, run.num_examples) == ("tiny-topics", "leep", 50, 50)
    records = {r.model_id: r for r in run.records}
    assert list(records) == ["tiny-head", "tiny-headless"]
    head, headless = records["tiny-head"], records["tiny-headless"]
    assert (head.proxy_used, head.cached, head.note) == ("leep", False, None)
    assert head.score < 0 and head.seconds > 0 and head.examples_per_second > 0
    assert (headless.proxy_requested, headless.proxy_used, headless.cached) == ("leep", "logme", False)
    assert "classification head" in headless.note and "logme" in headless.note
    assert run.notes == {"tiny-headless": headless.note}
    assert list(run.failures) == ["tiny-broken"]
    reason = run.failures["tiny-broken"]
    assert "\n" not in reason and "tiny-broken" in reason and "JSON" in reason.upper()
    assert run.scores() == {"tiny-head": head.score, "tiny-headless": headless.score}
    assert run.scores("leep") == {"tiny-head": head.score}
    assert run.scores("logme") == {"tiny-headless": headless.score}

    # The scores equal a direct computation on the same sample.
    sample, columns = load_target_sample(str(zoo["data"]), 50, seed=0)
    outputs = compute_model_outputs(str(zoo["head"]), sample, columns)
    assert head.score == pytest.approx(leep(outputs.source_probs, sample["label"]), abs=1e-6)

    table = _scores_table(repository)
    assert table == {
        ("tiny-head", "leep"): pytest.approx(head.score),
        ("tiny-headless", "leep"): None,  # not applicable: no trained head
        ("tiny-headless", "logme"): pytest.approx(headless.score),
    }
    [row] = [
        row
        for row in repository.table("proxy_scores").to_dict(orient="records")
        if row["model_id"] == "tiny-head"
    ]
    assert row["dataset"] == "tiny-topics" and row["sample_size"] == 50 and row["seed"] == 0
    assert row["dataset_fingerprint"] == sample_fingerprint(sample, columns, max_length=128)
    assert row["model_sha"] and row["seconds"] > 0

    # Second run: everything from the cache, no model loaded.
    def no_loading(*args, **kwargs):
        raise AssertionError("a model was loaded on a cache hit")

    monkeypatch.setattr(features_module, "load_model_for_outputs", no_loading)
    again = score_models(
        repository, specs[:2], str(zoo["data"]), proxy="leep", sample_size=50, progress=False
    )
    assert [r.cached for r in again.records] == [True, True]
    assert again.scores() == pytest.approx(run.scores())
    assert [r.proxy_used for r in again.records] == ["leep", "logme"]
    assert again.records[1].note and again.failures == {}
    assert all(r.examples_per_second is None for r in again.records)

    # Another seed draws another sample: not cached, so the loader is called (and fails here).
    other = score_models(
        repository, specs[:1], str(zoo["data"]), proxy="leep", sample_size=50, seed=1, progress=False
    )
    assert other.records == [] and "tiny-head" in other.failures
    repository.close()


def test_score_models_feature_proxies_and_changed_model(zoo, tmp_path):
    repository = ModelRepository(tmp_path / "repo.sqlite")
    data = str(zoo["data"])
    first = score_models(repository, [str(zoo["head"])], data, proxy="knn", sample_size=40, progress=False)
    assert first.records[0].proxy_used == "knn" and 0 <= first.records[0].score <= 1
    nce_run = score_models(repository, [str(zoo["head"])], data, proxy="nce", sample_size=40, progress=False)
    assert nce_run.records[0].proxy_used == "nce" and not nce_run.records[0].cached

    # A changed model (here its config) has another sha: the cached score is not reused.
    changed = _save_tiny_bert(zoo["head"].parent / "changed" / "tiny-head", head=True, seed=7)
    config = json.loads((changed / "config.json").read_text())
    (changed / "config.json").write_text(json.dumps({**config, "classifier_dropout": 0.2}))
    moved = str(changed)
    retrained = score_models(repository, [moved], data, proxy="knn", sample_size=40, progress=False)
    record = retrained.records[0]
    assert not record.cached and record.model_sha != first.records[0].model_sha

    with pytest.raises(HfSelectError, match="unknown proxy"):
        score_models(repository, [], data, proxy="accuracy", progress=False)
    repository.close()


def test_score_models_by_hub_ids(hub, zoo, tmp_path):
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo("org/tiny-head")
    api.upload_folder(folder_path=str(zoo["head"]), repo_id="org/tiny-head")
    api.create_repo("org/tiny-topics", repo_type="dataset")
    api.upload_folder(folder_path=str(zoo["data"]), repo_id="org/tiny-topics", repo_type="dataset")

    repository = ModelRepository(tmp_path / "repo.sqlite")
    run = score_models(
        repository,
        ["org/tiny-head", "org/missing"],
        "org/tiny-topics",
        proxy="leep",
        sample_size=40,
        progress=False,
    )
    record = run.records[0]
    assert (record.model_id, record.proxy_used, record.cached) == ("org/tiny-head", "leep", False)
    assert record.model_sha == hub.repo_sha("org/tiny-head")
    assert run.dataset == "org/tiny-topics" and list(run.failures) == ["org/missing"]
    assert "not found" in run.failures["org/missing"]

    # The score is LEEP of the Hub model's outputs on the streamed sample.
    sample, columns = load_target_sample("org/tiny-topics", 40, seed=0)
    outputs = compute_model_outputs(str(zoo["head"]), sample, columns)
    assert record.score == pytest.approx(leep(outputs.source_probs, sample["label"]), abs=1e-6)

    downloads = hub.count("GET", r"/resolve/")
    again = score_models(
        repository, ["org/tiny-head"], "org/tiny-topics", proxy="leep", sample_size=40, progress=False
    )
    assert again.records[0].cached and again.records[0].score == record.score
    # Only the dataset is read again; no model file is downloaded on a cache hit.
    model_downloads = [r for r in hub.find("GET", r"/resolve/")[downloads:] if "tiny-head" in r.path]
    assert model_downloads == []
    repository.close()
