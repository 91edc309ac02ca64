"""Dataset specs: parsing ``ID``, ``ID:CONFIG`` or a local path, the key results are stored under, and
expanding a folder of datasets into each of them."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hfselect.errors import DatasetError
from hfselect.specs import is_local_path

# Names that identify each role of a split, in order of preference (those of datasets' own
# split inference, so ``dev.csv`` and ``valid.parquet`` are validation splits).
_SPLIT_ALIASES: dict[str, tuple[str, ...]] = {
    "train": ("train", "training"),
    "validation": ("validation", "valid", "dev", "val"),
    "test": ("test", "testing", "eval", "evaluation"),
}


_DATA_EXTENSIONS: dict[str, tuple[str, dict[str, Any]]] = {
    ".parquet": ("parquet", {}),
    ".csv": ("csv", {}),
    ".tsv": ("csv", {"sep": "\t"}),
    ".json": ("json", {}),
    ".jsonl": ("json", {}),
    ".ndjson": ("json", {}),
    ".arrow": ("arrow", {}),
}


# A spec ending with one of these names a local file, never a Hub dataset.
_PATH_SUFFIXES = (*_DATA_EXTENSIONS, ".txt")
_HUB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")
_CONFIG_RE = re.compile(r"^[^\s:/\\]+$")


@dataclass(frozen=True)
class DatasetSpec:
    """A parsed dataset spec: a Hub id with an optional config, or a local path.

    Attributes:
        path: The Hub dataset id (``nyu-mll/glue``) or the local path (normalised, ``~`` expanded).
        config: The config name (``sst2``) or ``None``.
        is_local: Whether ``path`` is a local file or folder.
    """

    path: str
    config: str | None = None
    is_local: bool = False

    @classmethod
    def parse(cls, spec: str) -> DatasetSpec:
        """Parses ``ID``, ``ID:CONFIG``, ``PATH`` or ``PATH:CONFIG``.

        A local path that exists wins over ``ID:CONFIG`` parsing (a folder may contain ``:``).
        A spec that looks like a path (starts with ``/``, ``.`` or ``~``, ends with a data file
        extension, or has more than one ``/``) but does not exist is an error, as is a string that
        is neither an existing path nor a valid Hub id.

        Raises:
            DatasetError: The spec is empty, a missing local path or not a valid Hub id.
        """
        if not isinstance(spec, str) or not spec.strip():
            raise DatasetError("empty dataset name: give a Hub dataset id (ID or ID:CONFIG) or a local path")
        text = spec.strip()
        expanded = os.path.expanduser(text)
        if os.path.exists(expanded):
            return cls(path=os.path.normpath(expanded), config=None, is_local=True)
        head, sep, tail = text.rpartition(":")
        if sep and head and tail:
            head_expanded = os.path.expanduser(head)
            if os.path.exists(head_expanded):
                if not _CONFIG_RE.match(tail):
                    raise DatasetError(f"dataset '{text}': '{tail}' is not a valid config name")
                return cls(path=os.path.normpath(head_expanded), config=tail, is_local=True)
            if (
                _HUB_ID_RE.match(head)
                and _CONFIG_RE.match(tail)
                and not is_local_path(head, file_suffixes=_PATH_SUFFIXES)
            ):
                return cls(path=head, config=tail, is_local=False)
        if _HUB_ID_RE.match(text) and not is_local_path(text, file_suffixes=_PATH_SUFFIXES):
            return cls(path=text, config=None, is_local=False)
        if is_local_path(text, file_suffixes=_PATH_SUFFIXES):
            raise DatasetError(f"dataset '{text}': local path '{expanded}' does not exist")
        raise DatasetError(
            f"dataset '{text}' is neither an existing local path nor a valid Hub dataset id (ID or ID:CONFIG)"
        )

    @property
    def name(self) -> str:
        """The dataset's key: ``ID[:CONFIG]`` for the Hub, the folder name (file name without
        extension) for a local path, with ``:CONFIG`` appended when a config is given."""
        if self.is_local:
            p = Path(os.path.abspath(self.path))
            base = p.stem if p.is_file() or p.suffix.lower() in _DATA_EXTENSIONS else p.name
            base = base or str(p)
        else:
            base = self.path
        return f"{base}:{self.config}" if self.config else base

    def __str__(self) -> str:
        return f"{self.path}:{self.config}" if self.config else self.path


def dataset_key(spec: str | DatasetSpec) -> str:
    """The key under which results for ``spec`` are stored (see :attr:`DatasetSpec.name`)."""
    return _as_spec(spec).name


def _as_spec(spec: str | DatasetSpec) -> DatasetSpec:
    return spec if isinstance(spec, DatasetSpec) else DatasetSpec.parse(spec)


def _has_data_files(folder: Path) -> bool:
    for _root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith((".", "_"))]
        if any(os.path.splitext(f)[1].lower() in _DATA_EXTENSIONS for f in files if not f.startswith(".")):
            return True
    return False


def _is_saved_dataset(folder: Path) -> bool:
    return (folder / "dataset_dict.json").is_file() or (
        (folder / "state.json").is_file() and (folder / "dataset_info.json").is_file()
    )


def _card_declares_data(readme: Path) -> bool:
    """Whether a README card's YAML header declares configs or features (a Hub-style dataset)."""
    try:
        text = readme.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    if not text.startswith("---"):
        return False
    header = text[3:].split("\n---", 1)[0]
    return re.search(r"^(configs|dataset_info)\s*:", header, flags=re.MULTILINE) is not None


def _is_dataset_dir(folder: Path) -> bool:
    """Whether ``folder`` itself is one dataset (rather than a folder of datasets)."""
    if _is_saved_dataset(folder) or _card_declares_data(folder / "README.md"):
        return True
    try:
        entries = list(folder.iterdir())
    except OSError:
        return False
    split_names = {alias for aliases in _SPLIT_ALIASES.values() for alias in aliases} | {"data"}
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_file() and entry.suffix.lower() in _DATA_EXTENSIONS:
            return True
        if entry.is_dir() and entry.name.lower() in split_names:
            return True
    return False


def expand_dataset_specs(specs: Iterable[str]) -> list[str]:
    """Expands local folders that hold several datasets into one spec per dataset.

    A local folder that is not itself a dataset (no data files or split folders at its top, not a
    ``save_to_disk`` folder, no README card declaring configs or features) but whose sub-folders are datasets, like a zoo's
    ``datasets/`` folder with one folder per dataset, becomes the paths of those sub-folders,
    sorted by name. Every other spec (Hub ids, dataset folders, files) passes through unchanged.
    Duplicates are dropped, keeping the first occurrence.
    """
    out: list[str] = []
    seen: set[str] = set()

    def add(item: str) -> None:
        if item not in seen:
            seen.add(item)
            out.append(item)

    for spec in specs:
        folder = Path(os.path.expanduser(spec.strip()))
        if folder.is_dir() and not _is_dataset_dir(folder):
            children = sorted(
                (c for c in folder.iterdir() if c.is_dir() and not c.name.startswith(".")),
                key=lambda c: c.name,
            )
            members = [c for c in children if _is_dataset_dir(c) or _has_data_files(c)]
            if members:
                for child in members:
                    add(os.path.join(spec.strip(), child.name))
                continue
        add(spec)
    return out
