"""A labelled sample of a target dataset, read in full or streamed from the Hub."""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from typing import Any

import datasets
import numpy as np
import pyarrow as pa

from hfselect.config import DEFAULT_SAMPLE_SIZE
from hfselect.data.classification import (
    _build_label_mapper,
    _labeled_indices,
    _normalise_split,
    _raw_values,
    _rng,
)
from hfselect.data.columns import ColumnInfo, infer_columns
from hfselect.data.raw import _assign_roles, _encoding_error, _load_raw, _wrap_load_error
from hfselect.data.spec import DatasetSpec, _as_spec
from hfselect.errors import DatasetError


def load_target_sample(
    spec: str | DatasetSpec,
    n: int = DEFAULT_SAMPLE_SIZE,
    *,
    text_columns: Sequence[str] | None = None,
    label_column: str | None = None,
    split: str | None = None,
    seed: int = 0,
    streaming: bool = True,
    token: str | bool | None = None,
) -> tuple[datasets.Dataset, ColumnInfo]:
    """Draws a labeled sample of a target dataset, for proxy scores.

    The sample is drawn from ``split`` (default: the train split, or the only split). From the
    Hub with ``streaming`` the data are streamed, shuffled with a seeded buffer and cut at ``n``
    labeled rows, so the whole dataset is not downloaded; local data (or ``streaming=False``) are
    loaded whole and ``n`` labeled rows chosen by a seeded permutation (kept in dataset order).
    Rows without a label are skipped.

    Returns:
        The sample, normalised like :func:`load_classification_dataset` (input columns plus
        ``label``, a ``ClassLabel`` of int ids), and a :class:`ColumnInfo` describing it (its
        ``label_column`` is ``"label"``, ``label_names`` set; for non-``ClassLabel`` labels the
        classes are those seen in the sample).

    Raises:
        DatasetError: As :func:`load_classification_dataset`; also when the split has no labels.
    """
    if n < 1:
        raise DatasetError(f"sample size must be at least 1, not {n}")
    spec = _as_spec(spec)
    name = str(spec)
    use_stream = streaming and not spec.is_local
    if use_stream:
        if split is not None and ("[" in split or "+" in split):
            raise DatasetError(f"dataset '{name}': split expressions like '{split}' need streaming=False")
        raw_stream = _load_raw(spec, split=None, streaming=True, token=token)
        key = _sample_split_key(name, list(raw_stream), split)
        sample, features = _stream_sample(
            raw_stream[key], n, seed=seed, spec=spec, text_columns=text_columns, label_column=label_column
        )
    else:
        raw = _load_raw(spec, split=split, token=token)
        key = _sample_split_key(name, list(raw), split)
        sample = raw[key]
        features = sample.features
    if sample.num_rows == 0:
        raise DatasetError(f"dataset '{name}': split '{key}' is empty")

    info = infer_columns(features, text_columns=text_columns, label_column=label_column, dataset=name)
    mapper = _build_label_mapper(
        features[info.label_column],
        _raw_values(sample, info.label_column),
        [],
        dataset=name,
        column=info.label_column,
    )
    if not mapper.names:
        raise DatasetError(
            f"dataset '{name}': split '{key}' has no labels in column '{info.label_column}'; "
            "choose a labeled split with --split"
        )
    class_label = datasets.ClassLabel(names=mapper.names)
    normalised = _normalise_split(sample, info, mapper, class_label)
    labeled = _labeled_indices(normalised)
    if labeled.size == 0:
        raise DatasetError(
            f"dataset '{name}': split '{key}' has no labels in column '{info.label_column}'; "
            "choose a labeled split with --split"
        )
    if not use_stream:
        if labeled.size > n:
            labeled = np.sort(labeled[_rng(seed, 4).permutation(labeled.size)[:n]])
        normalised = normalised.select(labeled) if labeled.size < normalised.num_rows else normalised
    elif labeled.size < normalised.num_rows:
        normalised = normalised.select(labeled)
    for column in info.text_columns:
        try:  # the json loader keeps bytes that are not UTF-8: say so here, not once per model
            normalised.data.table.column(column).validate(full=True)
        except pa.ArrowInvalid:
            raise _encoding_error(spec) from None
    out_info = ColumnInfo(
        text_columns=list(info.text_columns),
        label_column="label",
        image_column=info.image_column,
        label_names=list(mapper.names),
    )
    return normalised, out_info


def _sample_split_key(name: str, keys: list[str], split: str | None) -> str:
    if split is not None:
        if split not in keys:
            # With a split expression the loader already returned just that split.
            if len(keys) == 1:
                return keys[0]
            raise DatasetError(f"dataset '{name}' has no split '{split}' (splits: {', '.join(keys)})")
        return split
    roles = _assign_roles(keys)
    if "train" not in roles:
        raise DatasetError(
            f"dataset '{name}' has no train split (splits: {', '.join(keys)}); pass --split NAME to sample one"
        )
    return roles["train"]


def _stream_sample(
    stream: datasets.IterableDataset,
    n: int,
    *,
    seed: int,
    spec: DatasetSpec,
    text_columns: Sequence[str] | None,
    label_column: str | None,
) -> tuple[datasets.Dataset, datasets.Features]:
    name = str(spec)
    try:
        features = stream.features
        if features is None:
            stream = stream._resolve_features()
            features = stream.features
        info = infer_columns(features, text_columns=text_columns, label_column=label_column, dataset=name)
        wanted = [*info.input_columns, info.label_column]
        stream = stream.select_columns(wanted)
        label = info.label_column
        label_feature = features[label]

        def has_label(example: dict[str, Any]) -> bool:
            value = example[label]
            if value is None or value == "":
                return False
            if isinstance(value, float) and math.isnan(value):
                return False
            return not (isinstance(label_feature, datasets.ClassLabel) and value < 0)

        shuffle_kwargs: dict[str, Any] = {"seed": seed, "buffer_size": max(1000, n)}
        if "max_buffer_input_shards" in inspect.signature(datasets.IterableDataset.shuffle).parameters:
            # Interleaving shards (datasets >= 4) sleeps 5 s on shutdown; only worth it with several.
            shuffle_kwargs["max_buffer_input_shards"] = max(1, min(10, stream.num_shards))
        stream = stream.filter(has_label).shuffle(**shuffle_kwargs)
        rows = list(stream.take(n))
    except DatasetError:
        raise
    except Exception as exc:
        raise _wrap_load_error(spec, exc) from exc
    sub_features = datasets.Features({c: features[c] for c in wanted})
    if not rows:
        raise DatasetError(
            f"dataset '{name}': no labeled rows in the sampled split (column '{label}'); "
            "choose a labeled split with --split"
        )
    return datasets.Dataset.from_list(rows, features=sub_features), sub_features
