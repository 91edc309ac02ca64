"""Preprocessing classification data for a model: tokenising text or processing images."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import datasets

from hfselect.config import DEFAULT_MAX_LENGTH
from hfselect.data.classification import ClassificationData
from hfselect.errors import DatasetError


def _as_text(value: Any) -> str:
    return "" if value is None else value if isinstance(value, str) else str(value)


def preprocess_for_model(
    data: ClassificationData, tokenizer_or_processor: Any, *, max_length: int = DEFAULT_MAX_LENGTH
) -> datasets.DatasetDict:
    """Turns normalised splits into model inputs with ``labels``.

    Text: tokenizes the text column (or the pair) with truncation to ``max_length`` (or the
    tokenizer's ``model_max_length`` if smaller), without padding (pad per batch, e.g. with
    :class:`transformers.DataCollatorWithPadding`); the result holds the tokenizer's outputs
    (``input_ids``, ``attention_mask``, maybe ``token_type_ids``) and ``labels``, no other columns.

    Images: returns the splits reduced to two columns, the images renamed ``pixel_values`` (still
    ``Image`` features) and ``labels``, with an on-the-fly transform (``with_transform``) that
    applies the image processor, so that indexing yields ``pixel_values`` (a float tensor per
    row) and ``labels``; processed pixels are never stored. The column names match the models'
    ``forward`` arguments, so a ``Trainer`` works with its default ``remove_unused_columns=True``
    and the default collator.

    A processor that bundles a tokenizer or an image processor (``AutoProcessor``) is accepted.
    Deterministic: the same data and tokenizer give the same result.

    Raises:
        DatasetError: A tokenizer given for image data, or an image processor for text.
    """
    if data.modality == "image":
        processor = getattr(tokenizer_or_processor, "image_processor", None) or tokenizer_or_processor
        if _is_tokenizer(processor):
            raise DatasetError(
                f"dataset '{data.spec}' holds images; it needs an image processor (AutoImageProcessor), not a tokenizer"
            )
        image_column = data.image_column
        assert image_column is not None
        splits = data.splits.select_columns([image_column, "label"])
        renames = {k: v for k, v in ((image_column, "pixel_values"), ("label", "labels")) if k != v}
        return splits.rename_columns(renames).with_transform(_image_transform(processor))

    tokenizer = tokenizer_or_processor
    if not _is_tokenizer(tokenizer):
        tokenizer = getattr(tokenizer_or_processor, "tokenizer", None)
    if tokenizer is None or not _is_tokenizer(tokenizer):
        raise DatasetError(
            f"dataset '{data.spec}' holds text; it needs a tokenizer, not {type(tokenizer_or_processor).__name__}"
        )
    model_max = getattr(tokenizer, "model_max_length", None)
    limit = int(min(max_length, model_max)) if isinstance(model_max, int) and model_max > 0 else max_length
    columns = list(data.text_columns)

    def tokenize(batch: dict[str, list[Any]]) -> dict[str, Any]:
        first = [_as_text(v) for v in batch[columns[0]]]
        second = [_as_text(v) for v in batch[columns[1]]] if len(columns) > 1 else None
        encoded = tokenizer(first, second, truncation=True, max_length=limit)
        out = {k: v for k, v in encoded.items() if k != "labels"}
        out["labels"] = list(batch["label"])
        return out

    # datasets would fingerprint the map by pickling ``tokenize`` and the tokenizer inside it, which
    # takes longer than tokenising a small split; the result is kept in memory (no cache file to
    # find again), so a fingerprint naming what the output depends on is enough.
    recipe = f"{getattr(tokenizer, 'name_or_path', '')}|{type(tokenizer).__name__}|{len(tokenizer)}|{limit}|{columns}"
    result = datasets.DatasetDict()
    for split_name, ds in data.splits.items():
        fingerprint = hashlib.sha256(f"{ds._fingerprint}|{recipe}".encode()).hexdigest()[:16]
        result[split_name] = ds.map(
            tokenize,
            batched=True,
            remove_columns=ds.column_names,
            keep_in_memory=True,
            new_fingerprint=fingerprint,
            desc=f"Tokenizing {data.name} {split_name}",
        )
    return result


def _is_tokenizer(obj: Any) -> bool:
    try:
        from transformers import PreTrainedTokenizerBase
    except ImportError:  # pragma: no cover - transformers is a dependency
        return hasattr(obj, "convert_tokens_to_ids")
    return isinstance(obj, PreTrainedTokenizerBase)


def _image_transform(processor: Any) -> Callable[[dict[str, list[Any]]], dict[str, Any]]:
    def transform(batch: dict[str, list[Any]]) -> dict[str, Any]:
        images = [
            img.convert("RGB") if getattr(img, "mode", "RGB") != "RGB" else img
            for img in batch["pixel_values"]
        ]
        encoded = processor(images=images, return_tensors="pt")
        return {"pixel_values": encoded["pixel_values"], "labels": list(batch["labels"])}

    return transform
