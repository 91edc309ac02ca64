"""Loading a dataset's raw splits, from a local folder or file or from the Hub, with one-line errors."""

from __future__ import annotations

import codecs
import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import datasets

from hfselect.data.spec import (
    _DATA_EXTENSIONS,
    _SPLIT_ALIASES,
    DatasetSpec,
    _has_data_files,
    _is_saved_dataset,
)
from hfselect.errors import DatasetError


def _one_line(exc: BaseException, limit: int = 240) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


# Data files the datasets builders read as text (UTF-8 only): a file in another encoding fails deep
# inside them with "An error occurred while generating the dataset".
_TEXT_EXTENSIONS = (".csv", ".tsv", ".json", ".jsonl", ".ndjson", ".txt")


def _is_encoding_error(exc: BaseException) -> bool:
    """Whether ``exc`` or an exception it was raised from is a text-decoding error."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, UnicodeDecodeError) or "invalid utf8" in str(current).lower():
            return True
        current = current.__cause__ or current.__context__
    return False


def _first_non_utf8(path: Path) -> tuple[Path, int, int] | None:
    """The first text data file at ``path`` (a file or a folder) that is not UTF-8: (file, offset, byte)."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        if file.suffix.lower() not in _TEXT_EXTENSIONS:
            continue
        decoder, offset = codecs.getincrementaldecoder("utf-8")(), 0
        with file.open("rb") as stream:
            while chunk := stream.read(1 << 20):
                pending = len(decoder.getstate()[0])  # a character split across chunks
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as error:
                    return file, offset - pending + error.start, error.object[error.start]
                offset += len(chunk)
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError as error:  # the file ends inside a character
                return file, offset - len(error.object) + error.start, error.object[error.start]
    return None


def _encoding_error(spec: DatasetSpec) -> DatasetError:
    """The file of ``spec`` that is not UTF-8, named, and what to do (for a Hub dataset: which dataset)."""
    found = _first_non_utf8(Path(spec.path)) if spec.is_local else None
    if found is None:
        return DatasetError(
            f"dataset '{spec}': a data file is not UTF-8 text, which is all the csv/json loaders read; "
            "save its files as UTF-8"
        )
    file, offset, byte = found
    return DatasetError(
        f"dataset '{spec}': file '{file}' is not UTF-8 text (byte 0x{byte:02x} at offset {offset}); "
        f"save it as UTF-8, e.g. `iconv -f latin1 -t utf-8 '{file.name}' > utf8-{file.name}`"
    )


def _wrap_load_error(spec: DatasetSpec, exc: Exception) -> DatasetError:
    name = str(spec)
    msg = _one_line(exc)
    if _is_encoding_error(exc):
        return _encoding_error(spec)
    if isinstance(exc, datasets.exceptions.DatasetNotFoundError):
        return DatasetError(
            f"dataset '{name}' was not found on the Hub and is not a local path "
            "(check the id; for a private or gated dataset log in or pass a token)"
        )
    if isinstance(exc, ConnectionError) and not spec.is_local:
        return DatasetError(
            f"dataset '{name}' is not a local path and the Hub could not be reached to load it ({msg})"
        )
    if "Config name is missing" in msg:
        return DatasetError(f"dataset '{name}': {msg} (give the config as ID:CONFIG)")
    if "BuilderConfig" in msg:
        return DatasetError(f"dataset '{name}': {msg}")
    empty = re.search(r'Instruction "([^"]+)" corresponds to no data', msg)
    if empty:
        return DatasetError(f"dataset '{name}': split '{empty.group(1)}' is empty")
    if "Unknown split" in msg:
        return DatasetError(f"dataset '{name}': {msg}")
    if "script" in msg.lower() and "support" in msg.lower():
        return DatasetError(
            f"dataset '{name}' needs a loading script, which hfselect never runs; "
            "use a version of it stored as data files (parquet/csv/json)"
        )
    return DatasetError(f"dataset '{name}' could not be loaded: {type(exc).__name__}: {msg}")


def _load_local_raw(
    spec: DatasetSpec, *, split: str | None, streaming: bool = False
) -> dict[str, datasets.Dataset] | dict[str, datasets.IterableDataset]:
    path = Path(spec.path)
    name = str(spec)
    if path.is_file():
        ext = path.suffix.lower()
        if ext not in _DATA_EXTENSIONS:
            raise DatasetError(
                f"dataset '{name}': file '{path}' is not a supported data file "
                f"({', '.join(sorted(_DATA_EXTENSIONS))})"
            )
        if spec.config:
            raise DatasetError(f"dataset '{name}': a config cannot be given for a single file")
        builder, kwargs = _DATA_EXTENSIONS[ext]
        split_name = split or "train"
        if streaming and split_name != "train":
            raise DatasetError(f"dataset '{name}': a single file has only a 'train' split, not '{split}'")
        loaded = datasets.load_dataset(
            builder, data_files={"train": str(path)}, split=split_name, streaming=streaming, **kwargs
        )
        return {split_name: loaded}
    if not path.is_dir():
        raise DatasetError(f"dataset '{name}': local path '{path}' is neither a file nor a folder")
    if _is_saved_dataset(path):
        if spec.config:
            raise DatasetError(f"dataset '{name}': a save_to_disk folder has no configs")
        loaded = datasets.load_from_disk(str(path))
        splits: dict[str, Any] = (
            dict(loaded.items()) if isinstance(loaded, datasets.DatasetDict) else {"train": loaded}
        )
        if split is not None:
            if split not in splits:
                raise DatasetError(
                    f"dataset '{name}' has no split '{split}' (splits: {', '.join(splits) or 'none'})"
                )
            splits = {split: splits[split]}
        if streaming:
            return {k: v.to_iterable_dataset() for k, v in splits.items()}
        return splits
    if not _has_data_files(path):
        raise DatasetError(
            f"dataset '{name}': folder '{path}' holds no data files ({', '.join(sorted(_DATA_EXTENSIONS))}) "
            "and is not a save_to_disk folder (loading scripts are never run)"
        )
    return _load_with_datasets(spec, split=split, streaming=streaming, cache_dir=_local_cache_dir(path))


def _local_cache_dir(folder: Path) -> str:
    """A datasets cache folder of its own for this version of a local dataset folder.

    datasets keys its prepared copy of a local folder by the folder's name and card, not by the
    contents of its data files: a folder rebuilt in place (a zoo built again with another seed or
    other split sizes) would be read back from the cache as it was. Keying on each file's path, size
    and modification time makes a rebuilt folder prepare afresh.
    """
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    entries = [(str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    digest = hashlib.sha256(json.dumps([str(folder.resolve()), entries]).encode()).hexdigest()[:16]
    return str(Path(datasets.config.HF_DATASETS_CACHE) / "hfselect-local" / digest)


def _load_with_datasets(
    spec: DatasetSpec,
    *,
    split: str | None,
    streaming: bool,
    token: str | bool | None = None,
    cache_dir: str | None = None,
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"streaming": streaming}
    if token is not None:
        kwargs["token"] = token
    if cache_dir is not None:
        kwargs["cache_dir"] = cache_dir
    if split is not None and not streaming:
        loaded = datasets.load_dataset(spec.path, spec.config, split=split, **kwargs)
        return {split: loaded}
    loaded = datasets.load_dataset(spec.path, spec.config, **kwargs)
    splits = dict(loaded.items())
    if split is not None:
        if split not in splits:
            raise DatasetError(
                f"dataset '{spec}' has no split '{split}' (splits: {', '.join(splits) or 'none'})"
            )
        splits = {split: splits[split]}
    return splits


def _load_raw(
    spec: DatasetSpec, *, split: str | None, streaming: bool = False, token: str | bool | None = None
) -> dict[str, Any]:
    """Loads the splits of ``spec`` as a dict (all of them, or only ``split``)."""
    try:
        if spec.is_local:
            splits = _load_local_raw(spec, split=split, streaming=streaming)
        else:
            from hfselect.hub.client import notice_if_slow

            with notice_if_slow(f"the Hub to load dataset {spec}"):
                splits = _load_with_datasets(spec, split=split, streaming=streaming, token=token)
    except DatasetError:
        raise
    except Exception as exc:
        raise _wrap_load_error(spec, exc) from exc
    if not splits:
        raise DatasetError(f"dataset '{spec}' has no splits")
    return splits


def _assign_roles(names: Sequence[str]) -> dict[str, str]:
    """Maps each role (train/validation/test) to the dataset split that plays it, where present."""
    roles: dict[str, str] = {}
    lowered = {n.lower(): n for n in names}
    for role, aliases in _SPLIT_ALIASES.items():
        for alias in aliases:
            if alias in lowered and lowered[alias] not in roles.values():
                roles[role] = lowered[alias]
                break
        else:
            # e.g. MNLI's validation_matched / test_matched.
            prefixed = sorted(
                n
                for n in names
                if any(n.lower().startswith(a + "_") for a in aliases) and n not in roles.values()
            )
            if prefixed:
                roles[role] = prefixed[0]
    if "train" not in roles and len(names) == 1:
        roles = {"train": names[0]}
    return roles
