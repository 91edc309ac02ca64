"""Whether a model or dataset spec names something on this machine or a Hub repository.

A spec is what a user types for a model or a dataset: a Hub id (``owner/name``, or ``name``) or a
local path. This module is the one place that tells them apart; models, datasets and the store's
export all ask it.
"""

from __future__ import annotations

import os
from collections.abc import Collection

__all__ = ["is_local_path"]


def is_local_path(spec: str, *, file_suffixes: Collection[str] = ()) -> bool:
    """Whether ``spec`` names a local file or folder rather than a Hub repository.

    It does when it exists on disk, or when it can only be a path whether it exists or not: it
    starts with ``/``, ``.`` or ``~``, has more than one ``/`` (a Hub id has at most one), holds a
    ``\\``, or ends with one of ``file_suffixes`` (e.g. ``.csv`` for a dataset, compared in lower
    case). So a missing path is reported as missing instead of being looked up on the Hub.

    Args:
        spec: A model or dataset spec.
        file_suffixes: File extensions (with their dot) that only a local file can end with.
    """
    if spec.startswith(("/", ".", "~")) or spec.count("/") > 1 or "\\" in spec:
        return True
    if file_suffixes and os.path.splitext(spec)[1].lower() in file_suffixes:
        return True
    return os.path.exists(os.path.expanduser(spec))
