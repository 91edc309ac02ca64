"""The models and data ``stages.py`` measures on: built from the test builders, or a zoo's.

``tests/assets.py`` builds tiny models and datasets in a scratch folder (plus a wider BERT and
longer sentences, so that batching is not only measured on 7-token inputs); ``hfselect zoo build
DIR`` gives real-size ones. Imported by ``stages.py`` after it has put the checkout on
``sys.path`` (for ``tests.assets``).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def native_stdout_silenced() -> Iterator[None]:
    """Send file descriptor 1 to /dev/null: the tokenizers trainer (Rust) writes blank progress lines."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def write_long_dataset(folder: Path, sizes: tuple[int, int, int], seed: int = 0) -> Path:
    """Sentiment data of 8 to 48 words per sentence (the test datasets have 5 words).

    Real targets have longer, varied lengths; that is what makes padding, and so batching, cost
    something, so the batched path is also measured on it.
    """
    from tests.assets import make_dataset

    return make_dataset(folder, "sentiment", sizes, seed, filler_words=(7, 47))


def make_wide_bert(folder: Path, seed: int = 3) -> Path:
    """A 4-layer, 256-wide BERT with a 2-label head and the test tokenizer: more compute per token."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from tests.assets import tokenizer

    torch.manual_seed(seed)
    tok = tokenizer()
    config = BertConfig(
        vocab_size=tok.vocab_size,
        hidden_size=256,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=1024,
        max_position_embeddings=128,
        num_labels=2,
    )
    BertForSequenceClassification(config).save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    return folder


def build_assets(root: Path, sample: int, train_size: int, eval_size: int) -> dict[str, Any]:
    """The tiny test models and datasets (tests/assets.py), built into ``root``."""
    from tests.assets import make_dataset, make_model

    models = {
        "bert-a": make_model(root / "models" / "bert-a", "bert", seed=0),
        "distil-b": make_model(root / "models" / "distil-b", "distilbert", seed=1),
        "bert-headless": make_model(root / "models" / "bert-headless", "bert", headless=True, seed=2),
        "bert-wide": make_wide_bert(root / "models" / "bert-wide"),
    }
    proxy_datasets = {
        "short (5 words)": make_dataset(
            root / "datasets" / "sentiment", "sentiment", (sample, 48, 48), seed=0
        ),
        "long (8-48 words)": write_long_dataset(
            root / "datasets" / "sentiment-long", (sample, 48, 48), seed=1
        ),
    }
    train_dataset = make_dataset(
        root / "datasets" / "train", "sentiment", (train_size, eval_size, 16), seed=2
    )
    return {
        "source": "tests/assets.py (built in a temporary folder)",
        "models": {name: str(path) for name, path in models.items()},
        "proxy_datasets": {name: str(path) for name, path in proxy_datasets.items()},
        "train_model": str(models["distil-b"]),
        "train_dataset": str(train_dataset),
    }


def built_assets(root: Path, sample: int, train_size: int, eval_size: int) -> dict[str, Any]:
    """:func:`build_assets`, with the tokenizers trainer's blank progress lines kept off stdout."""
    with native_stdout_silenced():
        return build_assets(root, sample, train_size, eval_size)


def zoo_assets(zoo: Path, n_models: int, dataset: str | None) -> dict[str, Any]:
    """Models and datasets of a built zoo (``hfselect zoo build DIR``)."""
    model_dirs = sorted(p for p in (zoo / "models").iterdir() if (p / "config.json").is_file())
    dataset_dirs = sorted(p for p in (zoo / "datasets").iterdir() if p.is_dir())
    if not model_dirs or not dataset_dirs:
        raise SystemExit(f"{zoo} has no models/ or datasets/: build it with `hfselect zoo build {zoo}`")
    chosen = next((p for p in dataset_dirs if p.name == dataset), None) if dataset else dataset_dirs[0]
    if chosen is None:
        raise SystemExit(f"no dataset {dataset!r} in {zoo / 'datasets'}")
    models = model_dirs[:n_models]
    return {
        "source": f"zoo {zoo}",
        "models": {p.name: str(p) for p in models},
        "proxy_datasets": {chosen.name: str(chosen)},
        "train_model": str(models[0]),
        "train_dataset": str(chosen),
    }
