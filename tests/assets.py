"""Tiny models and datasets built in seconds for tests (the zoo is for the demo and benchmarks).

The datasets are learnable in an epoch or two: a label is given by which of a few marker words a
sentence holds. The models are real transformers checkpoints (safetensors + a real tokenizer), so
every loading path in hfselect is the one used on Hub models.
"""

from __future__ import annotations

import random
from pathlib import Path

import datasets
from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    BertModel,
    DistilBertConfig,
    DistilBertForSequenceClassification,
    PreTrainedTokenizerFast,
)

FILLER = [f"w{i}" for i in range(40)]
MARKERS = {
    "sentiment": [["good", "great", "fine"], ["bad", "awful", "poor"]],
    "topic": [["ball", "goal"], ["vote", "law"], ["code", "chip"]],
}


def tokenizer() -> PreTrainedTokenizerFast:
    """A WordPiece tokenizer over the test vocabulary, with BERT's special tokens."""
    vocabulary = FILLER + [word for groups in MARKERS.values() for group in groups for word in group]
    backend = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    backend.train_from_iterator(
        [" ".join(vocabulary)] * 5, trainers.WordPieceTrainer(vocab_size=200, special_tokens=special)
    )
    cls, sep = backend.token_to_id("[CLS]"), backend.token_to_id("[SEP]")
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
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


def make_model(
    folder: Path, family: str = "bert", num_labels: int = 2, headless: bool = False, seed: int = 0
) -> Path:
    """Save a tiny randomly initialised model with its tokenizer into ``folder``."""
    import torch

    torch.manual_seed(seed)
    tok = tokenizer()
    if family == "bert":
        config = BertConfig(
            vocab_size=tok.vocab_size,
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=64,
            num_labels=num_labels,
        )
        model = BertModel(config) if headless else BertForSequenceClassification(config)
    else:
        config = DistilBertConfig(
            vocab_size=tok.vocab_size, dim=32, n_layers=1, n_heads=2, hidden_dim=64, max_position_embeddings=64,
            num_labels=num_labels,
        )  # fmt: skip
        model = DistilBertForSequenceClassification(config)
    model.save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    return folder


def make_dataset(
    folder: Path,
    task: str = "sentiment",
    sizes: tuple[int, int, int] = (320, 48, 48),
    seed: int = 0,
    filler_words: tuple[int, int] | None = None,
) -> Path:
    """Write train/validation/test parquet files whose label is the marker group a sentence holds.

    Each sentence is 4 distinct filler words and a marker; ``filler_words=(a, b)`` draws between
    ``a`` and ``b`` filler words (with repetition) instead, for longer, varied lengths.
    """
    rng = random.Random(seed)
    groups = MARKERS[task]
    names = [f"{task}_{index}" for index in range(len(groups))]
    features = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=names)}
    )
    folder.mkdir(parents=True, exist_ok=True)
    for split, size in zip(("train", "validation", "test"), sizes, strict=True):
        texts, labels = [], []
        for index in range(size):
            label = index % len(groups)
            if filler_words is None:
                filler = rng.sample(FILLER, 4)
            else:
                filler = [rng.choice(FILLER) for _ in range(rng.randint(*filler_words))]
            words = [*filler, rng.choice(groups[label])]
            rng.shuffle(words)
            texts.append(" ".join(words))
            labels.append(label)
        datasets.Dataset.from_dict({"text": texts, "label": labels}, features=features).to_parquet(
            folder / f"{split}.parquet"
        )
    return folder
