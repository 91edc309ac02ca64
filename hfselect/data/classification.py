"""Labelled classification data: label normalisation, the three splits, and their fingerprint."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import datasets
import numpy as np
import pyarrow as pa

from hfselect.data.columns import ColumnInfo, _Inputs, infer_columns
from hfselect.data.raw import _assign_roles, _load_raw
from hfselect.data.spec import DatasetSpec, _as_spec
from hfselect.errors import DatasetError

#: The splits of a normalised :class:`ClassificationData`, in order.
SPLIT_NAMES: tuple[str, str, str] = ("train", "validation", "test")

# Fractions of train carved into each missing evaluation split.
_CARVE_FRACTION = 0.1


def _arrow_column(ds: datasets.Dataset, column: str) -> pa.Array:
    values = ds.with_format("arrow")[column]
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks else pa.array([], type=values.type)
    return values


def _raw_values(ds: datasets.Dataset, column: str) -> list[Any]:
    return _arrow_column(ds, column).to_pylist()


@dataclass
class _LabelMapper:
    """Maps raw label values of one column to class ids (-1 for a missing label)."""

    names: list[str]
    mapping: dict[Any, int] | None  # None: values are already ids (ClassLabel)

    def ids(self, values: list[Any]) -> np.ndarray:
        if self.mapping is None:
            arr = np.array([-1 if v is None else int(v) for v in values], dtype=np.int64)
            arr[(arr < 0) | (arr >= len(self.names))] = -1
            return arr
        return np.array([self.mapping.get(_norm_value(v), -1) for v in values], dtype=np.int64)


def _norm_value(v: Any) -> Any:
    if isinstance(v, float):
        if math.isnan(v):
            return None
        return int(v)
    return v


def _build_label_mapper(
    feature: Any, train_values: list[Any], other_values: Iterable[list[Any]], *, dataset: str, column: str
) -> _LabelMapper:
    """Builds the class names and the value -> id mapping of a label column.

    ``ClassLabel``: its names; -1 marks a missing label. Strings: the sorted distinct non-empty
    values. Booleans: ``False``/``True``. Integers (and integral floats): the sorted distinct values,
    with -1 a missing label unless train uses it next to other values (a split of only -1 is
    unlabeled). Non-integral floats (regression) are an error.
    """
    if isinstance(feature, datasets.ClassLabel):
        return _LabelMapper(names=[str(n) for n in feature.names], mapping=None)
    dtype = feature.dtype
    splits = [train_values, *other_values]
    if dtype in ("string", "large_string"):
        classes = sorted({v for vals in splits for v in vals if v is not None and v != ""})
        return _LabelMapper(names=classes, mapping={c: i for i, c in enumerate(classes)})
    if dtype == "bool":
        classes_b = sorted({v for vals in splits for v in vals if v is not None})
        return _LabelMapper(
            names=[str(c) for c in classes_b], mapping={c: i for i, c in enumerate(classes_b)}
        )
    if dtype.startswith("float"):
        for vals in splits:
            for v in vals:
                if v is not None and not math.isnan(v) and not float(v).is_integer():
                    raise DatasetError(
                        f"dataset '{dataset}': label column '{column}' holds non-integer numbers "
                        "(regression?); hfselect handles classification only (pass --label-column)"
                    )
    train_set = {_norm_value(v) for v in train_values} - {None}
    minus_one_is_class = -1 in train_set and len(train_set) > 1
    classes_i: set[int] = set()
    for vals in splits:
        for v in vals:
            nv = _norm_value(v)
            if nv is None or (nv == -1 and not minus_one_is_class):
                continue
            classes_i.add(int(nv))
    ordered = sorted(classes_i)
    return _LabelMapper(names=[str(c) for c in ordered], mapping={c: i for i, c in enumerate(ordered)})


def _normalise_split(
    ds: datasets.Dataset, info: ColumnInfo, mapper: _LabelMapper, class_label: datasets.ClassLabel
) -> datasets.Dataset:
    """Keeps the input columns and puts the class ids (-1 where missing) in ``label``."""
    values = _raw_values(ds, info.label_column)
    ids = mapper.ids(values)
    ds = ds.select_columns(info.input_columns)
    if ds._indices is not None:
        ds = ds.flatten_indices(keep_in_memory=True)
    return ds.add_column("label", ids.tolist(), feature=class_label)


def _labeled_indices(ds: datasets.Dataset) -> np.ndarray:
    labels = np.asarray(_raw_values(ds, "label"), dtype=np.int64)
    return np.flatnonzero(labels >= 0)


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), *stream])


# --------------------------------------------------------------------------------------------------
# Classification data
# --------------------------------------------------------------------------------------------------


@dataclass
class ClassificationData(_Inputs):
    """A classification dataset normalised for fine-tuning.

    Attributes:
        spec: The dataset's spec.
        splits: Exactly ``train``, ``validation`` and ``test``; each holds the input columns (text
            or image) and ``label`` (a ``ClassLabel`` of int ids, no missing labels).
        text_columns: One text column, or two for a pair task; ``[]`` for images.
        image_column: The image column for image classification, else ``None``.
        label_names: The class names in id order.
        fingerprint: A stable hash of the dataset's key, columns, classes and the content of each
            split, for caching.
        label_column: The label column of the source dataset (renamed to ``label``).
        split_origin: Where each split came from, e.g. ``{"train": "train", "validation":
            "validation", "test": "carved from train"}``.
    """

    spec: DatasetSpec
    splits: datasets.DatasetDict
    text_columns: list[str]
    image_column: str | None
    label_names: list[str]
    fingerprint: str
    label_column: str = "label"
    split_origin: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The dataset's key (see :attr:`DatasetSpec.name`)."""
        return self.spec.name

    @property
    def num_labels(self) -> int:
        """The number of classes."""
        return len(self.label_names)

    @property
    def id2label(self) -> dict[int, str]:
        """Class id -> name, as model configs want it."""
        return dict(enumerate(self.label_names))

    @property
    def label2id(self) -> dict[str, int]:
        """Class name -> id, as model configs want it."""
        return {n: i for i, n in enumerate(self.label_names)}


def load_classification_dataset(
    spec: str | DatasetSpec,
    *,
    text_columns: Sequence[str] | None = None,
    label_column: str | None = None,
    split: str | None = None,
    seed: int = 0,
    train_samples: int | None = None,
    eval_samples: int | None = None,
    token: str | bool | None = None,
) -> ClassificationData:
    """Loads a classification dataset as train/validation/test splits with normalised columns.

    The dataset's own splits are used where present (``train``/``training``;
    ``validation``/``valid``/``dev``/``val`` or ``validation_*``; ``test``/``testing``/``eval`` or
    ``test_*``). A dataset with a single split of another name uses it as train. A missing
    validation or test split, or one without any label (like GLUE's test splits, label -1
    everywhere), is carved from train with a permutation seeded by ``seed``: 10% of train for each
    carved split (80/10/10 when both are carved), at least one example each. Rows without a label
    are dropped from every split. Then ``train_samples`` and ``eval_samples`` (for validation and
    test each) take deterministic seeded subsamples.

    Args:
        spec: ``ID``, ``ID:CONFIG``, a local path, or a parsed :class:`DatasetSpec`.
        text_columns: Override of the text column(s) (one, or two for a pair).
        label_column: Override of the label column.
        split: Use only this split of the dataset (for Hub and data-file datasets any ``datasets``
            split expression such as ``train[:5000]``) as train, carving validation and test
            from it.
        seed: Seed of the carving and subsampling.
        train_samples: Keep at most this many train examples.
        eval_samples: Keep at most this many validation and test examples each.
        token: Hub token (``True``: the saved login) for private or gated datasets.

    Raises:
        DatasetError: Unknown id or path, no usable label or text column, an empty split, a single
            class, or too few examples to carve the missing splits.
    """
    spec = _as_spec(spec)
    name = str(spec)
    raw: dict[str, datasets.Dataset] = _load_raw(spec, split=split, token=token)
    roles = {"train": next(iter(raw))} if split is not None else _assign_roles(list(raw))
    if "train" not in roles:
        raise DatasetError(
            f"dataset '{name}' has no train split (splits: {', '.join(raw)}); pass --split NAME to use one"
        )
    for key in roles.values():
        if raw[key].num_rows == 0:
            raise DatasetError(f"dataset '{name}': split '{key}' is empty")

    train_raw = raw[roles["train"]]
    info = infer_columns(
        train_raw.features, text_columns=text_columns, label_column=label_column, dataset=name
    )
    needed = info.input_columns
    # Evaluation splits lacking the label column count as unlabeled; lacking inputs is an error.
    eval_keys: dict[str, str] = {}
    for role in ("validation", "test"):
        key = roles.get(role)
        if key is None:
            continue
        missing = [c for c in needed if c not in raw[key].column_names]
        if missing:
            raise DatasetError(f"dataset '{name}': split '{key}' lacks column(s) {', '.join(missing)}")
        if info.label_column in raw[key].column_names:
            eval_keys[role] = key

    label_feature = train_raw.features[info.label_column]
    mapper = _build_label_mapper(
        label_feature,
        _raw_values(train_raw, info.label_column),
        [_raw_values(raw[k], info.label_column) for k in eval_keys.values()],
        dataset=name,
        column=info.label_column,
    )
    if len(mapper.names) < 2:
        only = f" ({mapper.names[0]})" if mapper.names else ""
        raise DatasetError(
            f"dataset '{name}': label column '{info.label_column}' has fewer than two classes{only}; "
            "classification needs at least two"
        )
    class_label = datasets.ClassLabel(names=mapper.names)

    normalised: dict[str, datasets.Dataset] = {}
    origin: dict[str, str] = {}
    train = _normalise_split(train_raw, info, mapper, class_label)
    labeled = _labeled_indices(train)
    if labeled.size == 0:
        raise DatasetError(
            f"dataset '{name}': split '{roles['train']}' has no labels in column '{info.label_column}'"
        )
    if labeled.size < train.num_rows:
        train = train.select(labeled)
    origin["train"] = roles["train"]
    for role, key in eval_keys.items():
        ds = _normalise_split(raw[key], info, mapper, class_label)
        idx = _labeled_indices(ds)
        if idx.size == 0:
            continue  # unlabeled (e.g. GLUE test): carved from train instead
        normalised[role] = ds if idx.size == ds.num_rows else ds.select(idx)
        origin[role] = key

    carve = [role for role in ("validation", "test") if role not in normalised]
    if carve:
        n = train.num_rows
        n_each = max(1, round(n * _CARVE_FRACTION))
        if n - n_each * len(carve) < 1:
            raise DatasetError(
                f"dataset '{name}': only {n} labeled train examples, too few to carve "
                f"{' and '.join(carve)} split(s) from"
            )
        perm = _rng(seed, 0).permutation(n)
        start = 0
        for role in carve:
            normalised[role] = train.select(np.sort(perm[start : start + n_each]))
            origin[role] = f"carved from {roles['train']}"
            start += n_each
        train = train.select(np.sort(perm[start:]))
    normalised["train"] = train

    present = sorted(set(_raw_values(train, "label")))
    if len(present) < 2:
        raise DatasetError(
            f"dataset '{name}': the train split holds a single class ({mapper.names[present[0]]}); "
            "classification needs at least two"
        )

    for role, limit, stream in (
        ("train", train_samples, 1),
        ("validation", eval_samples, 2),
        ("test", eval_samples, 3),
    ):
        if limit is not None:
            if limit < 1:
                raise DatasetError(f"dataset '{name}': sample sizes must be at least 1, not {limit}")
            ds = normalised[role]
            if ds.num_rows > limit:
                normalised[role] = ds.select(np.sort(_rng(seed, stream).permutation(ds.num_rows)[:limit]))

    splits = datasets.DatasetDict({role: normalised[role] for role in SPLIT_NAMES})
    fingerprint = _fingerprint(spec, info, mapper.names, splits)
    return ClassificationData(
        spec=spec,
        splits=splits,
        text_columns=list(info.text_columns),
        image_column=info.image_column,
        label_names=list(mapper.names),
        fingerprint=fingerprint,
        label_column=info.label_column,
        split_origin=origin,
    )


def hash_rows(digest: Any, ds: datasets.Dataset) -> None:
    """Feed ``ds``'s rows, in order, into ``digest`` (a :mod:`hashlib` object), as Arrow IPC bytes.

    The schema's metadata is left out, so the same rows hash the same in any process or session.
    """
    # with_format("arrow") honours a selection (indices mapping); ``ds.data`` would not.
    for table in ds.with_format("arrow").iter(batch_size=4096):
        table = table.replace_schema_metadata(None).combine_chunks()
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        digest.update(sink.getvalue().to_pybytes())


def _content_hash(ds: datasets.Dataset) -> str:
    digest = hashlib.sha256()
    hash_rows(digest, ds)
    return digest.hexdigest()


def _fingerprint(
    spec: DatasetSpec, info: ColumnInfo, label_names: list[str], splits: datasets.DatasetDict
) -> str:
    payload = {
        "dataset": spec.name,
        "text_columns": list(info.text_columns),
        "image_column": info.image_column,
        "label_column": info.label_column,
        "label_names": list(label_names),
        "splits": {k: {"rows": v.num_rows, "content": _content_hash(v)} for k, v in splits.items()},
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]
