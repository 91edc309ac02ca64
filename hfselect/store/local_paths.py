"""Keeping local paths out of what hfselect publishes.

The repository records where things live on this machine: ``models.location`` (the folder a local
model was benchmarked from) and ``studies.target`` (a local target dataset), and error messages may
quote a path. Those name home folders and users, so ``repo export`` and ``repo push`` publish the
tables without them unless asked (``--include-local-paths``): the location column is left out, a
local target is reduced to its folder name (how a local dataset is named everywhere else), and an
absolute path in a message is reduced to its last component.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from hfselect.specs import is_local_path

# Columns that only make sense on this machine: left out of a public export.
DROPPED_COLUMNS = {"models": ("location",)}
# Columns holding a dataset spec (a Hub id or a local path).
TARGET_COLUMNS = {"studies": ("target",)}
# Free-text columns that may quote a path.
MESSAGE_COLUMNS = {"results": ("error",), "crawl_log": ("reason",), "study_trials": ("reason",)}

# An absolute POSIX path (or ~/...) not preceded by a word character, ':' or '/', so URLs
# (https://...) and Hub ids (namespace/name) are left alone.
_ABSOLUTE_PATH = re.compile(r"(?<![\w:/.~-])(?:~/?|/)(?:[^\s/'\"`,;()\[\]]+/)*([^\s/'\"`,;:()\[\]]+)")


def public_spec(spec: str | None) -> str | None:
    """A spec fit to publish: a Hub id unchanged, a local path reduced to its last component."""
    if not isinstance(spec, str) or not is_local_path(spec):
        return spec  # None (NULL) or a Hub id
    return Path(spec.rstrip("/")).name or spec


def strip_local_paths(text: str | None) -> str | None:
    """``text`` with every absolute path replaced by its last component."""
    if not isinstance(text, str):
        return text  # None (NULL)
    return _ABSOLUTE_PATH.sub(lambda match: match.group(1), text)


def public_table(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of table ``name`` without local paths (see the module docstring)."""
    frame = frame.drop(columns=[c for c in DROPPED_COLUMNS.get(name, ()) if c in frame.columns])
    for column in TARGET_COLUMNS.get(name, ()):
        if column in frame.columns:
            frame[column] = frame[column].map(public_spec)
    for column in MESSAGE_COLUMNS.get(name, ()):
        if column in frame.columns:
            frame[column] = frame[column].map(strip_local_paths)
    return frame
