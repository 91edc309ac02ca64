"""Inferring a dataset's columns: its text column(s) (or image column) and its label column."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import datasets

from hfselect.errors import DatasetError

_LABEL_PRIMARY = ("label", "labels")
_LABEL_CANDIDATES = (
    "class",
    "class_label",
    "target",
    "category",
    "sentiment",
    "intent",
    "coarse_label",
    "fine_label",
    "y",
)
_TEXT_PAIRS: tuple[tuple[str, str], ...] = (
    ("premise", "hypothesis"),
    ("sentence1", "sentence2"),
    ("question1", "question2"),
    ("question", "sentence"),
    ("question", "passage"),
    ("question", "context"),
    ("query", "passage"),
    ("query", "document"),
    ("text1", "text2"),
    ("text_a", "text_b"),
    ("sentence_a", "sentence_b"),
    ("text", "text_pair"),
    ("claim", "evidence"),
)
_TEXT_SINGLES = (
    "text",
    "sentence",
    "content",
    "review",
    "review_text",
    "document",
    "tweet",
    "utterance",
    "comment",
    "question",
    "title",
    "body",
    "input",
    "prompt",
    "passage",
    "query",
)
_ID_LIKE = frozenset({"id", "idx", "uid", "uuid", "guid", "index", "key"})
_IMAGE_NAMES = ("image", "img", "picture", "photo")


class _Inputs:
    """What a model reads, for anything with ``text_columns`` and ``image_column``."""

    text_columns: list[str]
    image_column: str | None

    @property
    def modality(self) -> Literal["text", "image"]:
        """``"image"`` when there is an image column, else ``"text"``."""
        return "image" if self.image_column is not None else "text"

    @property
    def input_columns(self) -> list[str]:
        """The model's input columns: the image column, or the text columns."""
        return [self.image_column] if self.image_column is not None else list(self.text_columns)


@dataclass
class ColumnInfo(_Inputs):
    """The columns of a classification dataset.

    Attributes:
        text_columns: One text column, or two for a pair task (``[]`` for images).
        label_column: The label column.
        image_column: The ``Image`` column for image classification, else ``None``.
        label_names: The class names in id order, when known (always set on the info returned by
            :func:`load_target_sample`; from :func:`infer_columns` only for ``ClassLabel`` columns).
    """

    text_columns: list[str]
    label_column: str
    image_column: str | None = None
    label_names: list[str] | None = None


def _is_string(feature: Any) -> bool:
    return isinstance(feature, datasets.Value) and feature.dtype in ("string", "large_string")


def _is_label_type(feature: Any) -> bool:
    if isinstance(feature, datasets.ClassLabel):
        return True
    return isinstance(feature, datasets.Value) and (
        feature.dtype in ("string", "large_string", "bool")
        or feature.dtype.startswith(("int", "uint", "float"))
    )


def _describe_columns(features: datasets.Features) -> str:
    return ", ".join(features) if features else "none"


def infer_columns(
    features: datasets.Features,
    *,
    text_columns: Sequence[str] | None = None,
    label_column: str | None = None,
    dataset: str = "dataset",
) -> ColumnInfo:
    """Infers the text (or image) and label columns of a classification dataset.

    Label: ``label_column`` if given; else a column named ``label``/``labels``; else the first
    ``ClassLabel`` column; else a column with a usual label name (``class``, ``target``,
    ``category``, ``sentiment``, ...) holding ints, strings, booleans or floats.

    Inputs: ``text_columns`` if given (one, or two for a pair); else, when there is no such
    override, an ``Image`` column makes it an image dataset; else a known pair of string columns
    (premise/hypothesis, sentence1/sentence2, question1/question2, question/sentence,
    question/passage, ...); else a known single text column (``text``, ``sentence``, ``content``,
    ``review``, ...); else the only string column that is not the label or an id.

    Args:
        features: The dataset's features.
        text_columns: Override of the text column(s), one or two names.
        label_column: Override of the label column.
        dataset: The dataset's name, for error messages.

    Raises:
        DatasetError: A named column is missing, there is no usable label column, or the text
            columns cannot be told apart.
    """
    columns = _describe_columns(features)
    if isinstance(text_columns, str):
        text_columns = [text_columns]

    # Label.
    if label_column is not None:
        if label_column not in features:
            raise DatasetError(
                f"dataset '{dataset}' has no label column '{label_column}' (columns: {columns})"
            )
        if not _is_label_type(features[label_column]):
            raise DatasetError(
                f"dataset '{dataset}': label column '{label_column}' has type {_feature_type(features[label_column])};"
                " hfselect needs single-label classes (ClassLabel, integers, strings or booleans)"
            )
        label = label_column
    else:
        label = _find_label(features)
        if label is None:
            raise DatasetError(
                f"dataset '{dataset}' has no usable label column (columns: {columns}); "
                "pass --label-column NAME naming a column of class labels"
            )

    # Inputs.
    if text_columns:
        names = list(text_columns)
        if len(names) > 2:
            raise DatasetError(
                f"dataset '{dataset}': give one text column or two for a pair, not {len(names)} ({', '.join(names)})"
            )
        for name in names:
            if name not in features:
                raise DatasetError(f"dataset '{dataset}' has no text column '{name}' (columns: {columns})")
        if label in names:
            raise DatasetError(f"dataset '{dataset}': column '{label}' cannot be both text and label")
        if len(set(names)) != len(names):
            raise DatasetError(f"dataset '{dataset}': text column '{names[0]}' is given twice")
        if "label" in names:
            raise DatasetError(
                f"dataset '{dataset}': a text column named 'label' is not supported (the label goes there)"
            )
        return ColumnInfo(text_columns=names, label_column=label, label_names=_class_names(features[label]))

    images = [name for name, f in features.items() if isinstance(f, datasets.Image) and name != label]
    if images:
        preferred = [name for name in _IMAGE_NAMES if name in images]
        image = preferred[0] if preferred else images[0]
        return ColumnInfo(
            text_columns=[], label_column=label, image_column=image, label_names=_class_names(features[label])
        )

    strings = [name for name, f in features.items() if _is_string(f) and name not in (label, "label")]
    chosen: list[str] | None = None
    for first, second in _TEXT_PAIRS:
        if first in strings and second in strings:
            chosen = [first, second]
            break
    if chosen is None:
        for name in _TEXT_SINGLES:
            if name in strings:
                chosen = [name]
                break
    if chosen is None:
        candidates = [name for name in strings if name.lower() not in _ID_LIKE]
        if len(candidates) == 1:
            chosen = candidates
        elif not candidates:
            raise DatasetError(
                f"dataset '{dataset}' has no text or image column (columns: {columns}); "
                "pass --text-column NAME"
            )
        else:
            raise DatasetError(
                f"dataset '{dataset}': cannot tell which column is the text ({', '.join(candidates)}); "
                "pass --text-column NAME (twice for a pair)"
            )
    return ColumnInfo(text_columns=chosen, label_column=label, label_names=_class_names(features[label]))


def _find_label(features: datasets.Features) -> str | None:
    for name in _LABEL_PRIMARY:
        if name in features and _is_label_type(features[name]):
            return name
    for name, feature in features.items():
        if isinstance(feature, datasets.ClassLabel):
            return name
    for name in _LABEL_CANDIDATES:
        if name in features and _is_label_type(features[name]):
            return name
    return None


def _class_names(feature: Any) -> list[str] | None:
    return list(feature.names) if isinstance(feature, datasets.ClassLabel) else None


def _feature_type(feature: Any) -> str:
    if isinstance(feature, datasets.Value):
        return feature.dtype
    return type(feature).__name__
