"""Tests of hfselect.data's preprocessing: text (single and pair) and images, for a model's processor."""

from __future__ import annotations

from pathlib import Path

import datasets
import pytest
from datasets import ClassLabel, Dataset, Features, Value

from hfselect.data import (
    load_classification_dataset,
    load_target_sample,
    preprocess_for_model,
)
from hfselect.errors import DatasetError
from tests.test_data import SENTIMENT, make_texts, write_parquet, write_zoo_folder

# Tests that do not use the local Hub run offline: a stray Hub request fails at once.
pytestmark = pytest.mark.usefixtures("offline_unless_local_hub")


def _tiny_tokenizer():
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=200, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]"])
    corpus = make_texts(20) + [f"p{i} h{i}" for i in range(30)] + ["the cat sat on the mat"] * 3
    tok.train_from_iterator(corpus, trainer=trainer)
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]"
    )


def test_preprocess_text_single_and_pair(tmp_path: Path):
    tokenizer = _tiny_tokenizer()
    data = load_classification_dataset(str(write_zoo_folder(tmp_path)))
    out = preprocess_for_model(data, tokenizer, max_length=4)
    assert list(out) == ["train", "validation", "test"]
    train = out["train"]
    assert (
        "labels" in train.column_names
        and "text" not in train.column_names
        and "label" not in train.column_names
    )
    assert set(train.column_names) <= {"input_ids", "attention_mask", "token_type_ids", "labels"}
    assert train["labels"] == data.splits["train"]["label"]
    assert max(len(ids) for ids in train["input_ids"]) == 4
    assert train["input_ids"][0][0] == tokenizer.cls_token_id
    again = preprocess_for_model(data, tokenizer, max_length=4)
    assert again["train"]["input_ids"] == train["input_ids"]
    # The fingerprint names what the output depends on (no pickling of the tokenizer to get it).
    assert again["train"]._fingerprint == train._fingerprint
    assert preprocess_for_model(data, tokenizer, max_length=8)["train"]._fingerprint != train._fingerprint
    assert out["validation"]._fingerprint != train._fingerprint

    path = tmp_path / "pairs.csv"
    Dataset.from_dict(
        {
            "premise": [f"p{i}" for i in range(30)],
            "hypothesis": [f"h{i}" for i in range(30)],
            "label": [0, 1, 2] * 10,
        }
    ).to_csv(str(path))
    pairs = load_classification_dataset(str(path))
    enc = preprocess_for_model(pairs, tokenizer, max_length=32)["train"]
    first = enc["input_ids"][0]
    assert first.count(tokenizer.sep_token_id) == 2
    row = pairs.splits["train"][0]
    assert tokenizer.decode(first, skip_special_tokens=True) == f"{row['premise']} {row['hypothesis']}"


def test_preprocess_rejects_wrong_processor(tmp_path: Path):
    data = load_classification_dataset(str(write_zoo_folder(tmp_path)))
    with pytest.raises(DatasetError, match=r"sst2-tiny.*needs a tokenizer"):
        preprocess_for_model(data, object())


def test_image_dataset_inference_and_preprocess(tmp_path: Path):
    pil = pytest.importorskip("PIL.Image")
    colors = {"red": (255, 0, 0), "blue": (0, 0, 255)}
    images, labels = [], []
    for i in range(20):
        name = "red" if i % 2 else "blue"
        images.append(pil.new("RGB" if i % 3 else "L", (6 + i % 3, 5), colors[name] if i % 3 else 128))
        labels.append(name)
    features = Features({"img": datasets.Image(), "caption": Value("string"), "label": Value("string")})
    ds = Dataset.from_dict(
        {"img": images, "caption": [f"c{i}" for i in range(20)], "label": labels}, features=features
    )
    ds.save_to_disk(str(tmp_path / "shapes"))
    data = load_classification_dataset(str(tmp_path / "shapes"))
    assert (data.modality, data.image_column, data.text_columns) == ("image", "img", [])
    assert data.label_names == ["blue", "red"]
    assert data.splits["train"].column_names == ["img", "label"]
    sample, info = load_target_sample(str(tmp_path / "shapes"), n=5)
    assert info.modality == "image" and sample.num_rows == 5

    from transformers import ViTImageProcessor

    processor = ViTImageProcessor(size={"height": 8, "width": 8})
    out = preprocess_for_model(data, processor)
    assert out["train"].column_names == ["pixel_values", "labels"]  # matches forward(): Trainer keeps them
    item = out["train"][0]
    assert tuple(item["pixel_values"].shape) == (3, 8, 8)
    assert item["labels"] == data.splits["train"]["label"][0]
    batch = out["validation"][:2]
    assert tuple(batch["pixel_values"].shape) == (2, 3, 8, 8)
    with pytest.raises(DatasetError, match=r"shapes.*image processor"):
        preprocess_for_model(data, _tiny_tokenizer())


def test_image_preprocessing_trains_with_trainer_defaults(tmp_path: Path):
    """A Trainer with default arguments (remove_unused_columns=True) runs on the image output."""
    pil = pytest.importorskip("PIL.Image")
    from transformers import (
        Trainer,
        TrainingArguments,
        ViTConfig,
        ViTForImageClassification,
        ViTImageProcessor,
    )

    images = [pil.new("RGB", (5, 5), (255, 0, 0) if i % 2 else (0, 0, 255)) for i in range(20)]
    features = Features({"image": datasets.Image(), "label": ClassLabel(names=["blue", "red"])})
    Dataset.from_dict({"image": images, "label": [i % 2 for i in range(20)]}, features=features).save_to_disk(
        str(tmp_path / "colors")
    )
    data = load_classification_dataset(str(tmp_path / "colors"))
    encoded = preprocess_for_model(data, ViTImageProcessor(size={"height": 8, "width": 8}))
    config = ViTConfig(
        image_size=8,
        patch_size=4,
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=8,
        num_labels=2,
    )
    model = ViTForImageClassification(config)
    args = TrainingArguments(
        output_dir=str(tmp_path / "out"),
        max_steps=2,
        per_device_train_batch_size=4,
        report_to=[],
        use_cpu=True,
    )
    trainer = Trainer(
        model=model, args=args, train_dataset=encoded["train"], eval_dataset=encoded["validation"]
    )
    trainer.train()
    assert "eval_loss" in trainer.evaluate()


def test_fingerprint_differs_between_contents(tmp_path: Path):
    a = write_zoo_folder(tmp_path / "one")
    b = write_zoo_folder(tmp_path / "two")
    features = Features({"text": Value("string"), "label": SENTIMENT})
    write_parquet(
        b / "test.parquet", {"text": make_texts(8, "zz"), "label": [i % 2 for i in range(8)]}, features
    )
    fa = load_classification_dataset(str(a)).fingerprint
    fb = load_classification_dataset(str(b)).fingerprint
    assert isinstance(fa, str) and fa != fb
