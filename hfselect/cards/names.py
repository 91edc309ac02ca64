"""How reports name things: tokens masked, local paths shortened, Hub ids told from local folders.

Shared by the report's schema (:mod:`hfselect.cards.selection_report`), its card and its plot.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# Hugging Face user tokens ("hf_" + 34 letters and digits) and legacy org tokens; 16+ characters so
# that names such as ``hf_transfer`` are left alone.
_TOKEN_PATTERN = re.compile(r"\b(hf|api_org)_[A-Za-z0-9]{16,}")
# ``--token VALUE`` / ``--token=VALUE`` / ``token=VALUE`` in a recorded command line.
_TOKEN_OPTION = re.compile(r"(--?token[= ]|\btoken=)(\S+)", re.IGNORECASE)
# A Hub repository id: ``name`` or ``namespace/name`` (the Hub's own character set). Used with
# fullmatch: ``$`` with match would also accept a trailing newline ("org/model\n").
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")
_NAMESPACED_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def redact_secrets(value: Any, *, secret: str | None = None) -> Any:
    """``value`` (a string, or lists/dicts of them) with anything that looks like a token replaced.

    Replaces Hugging Face token patterns, the value after a ``--token`` option, and ``secret`` (the
    token actually in use, whatever its shape) by ``***``. Used on every report before it is
    written, rendered or pushed.
    """
    if isinstance(value, str):
        if secret and len(secret) >= 8:  # a real token; masking a short string would garble the text
            value = value.replace(secret, "***")
        value = _TOKEN_OPTION.sub(lambda match: match.group(1) + "***", value)
        return _TOKEN_PATTERN.sub("***", value)
    if isinstance(value, Mapping):
        return {key: redact_secrets(item, secret=secret) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_secrets(item, secret=secret) for item in value]
    return value


def home_as_tilde(text: str) -> str:
    """``text`` with the home folder written ``~`` (a published report should not name the user)."""
    home = str(Path.home())
    return text.replace(home, "~") if len(home) > 1 else text


def finite(value: Any) -> float | None:
    """A float, or None for missing/NaN/inf (JSON reports carry NaN as null, but be lenient)."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def display_path(value: str) -> str:
    """The last component of a local path (the card must not reveal a home folder)."""
    return Path(value.rstrip("/\\")).name or value


def is_hub_repo_id(value: str) -> bool:
    """Whether ``value`` is a Hub repository id: ``NAME`` or ``NAMESPACE/NAME`` (nothing else in it)."""
    return bool(_REPO_ID.fullmatch(value))


def is_hub_model_id(model_id: str | None, spec: str | None = None) -> bool:
    """Whether ``model_id`` names a Hub model (``namespace/name``) rather than a local folder.

    A candidate loaded from a local folder has its folder as ``spec``; a Hub candidate's spec is its
    id. Names without a namespace are ambiguous (a folder name looks the same) and count as local.
    """
    if not model_id or not _NAMESPACED_ID.fullmatch(model_id):
        return False
    return spec is None or spec == model_id


def split_hub_dataset(target: str | None) -> tuple[str, str | None] | None:
    """``(dataset_id, config)`` when ``target`` is a Hub dataset spec (``ID`` or ``ID:CONFIG``), else None.

    Local paths (absolute, starting with ``.`` or ``~``, or an existing file or folder) are not Hub ids.
    """
    if not target or "\\" in target or target.startswith((".", "/", "~")):
        return None
    dataset_id, _, config = target.partition(":")
    if not _REPO_ID.fullmatch(dataset_id) or (config and not re.fullmatch(r"[\w.-]+", config)):
        return None
    if Path(target).exists() or Path(dataset_id).exists():
        return None
    return dataset_id, config or None


def target_name(target: str) -> str:
    """How a card names a target: its Hub id (and config), or a local dataset's folder name."""
    hub = split_hub_dataset(target)
    if hub is not None:
        return hub[0] + (f" ({hub[1]})" if hub[1] else "")
    return display_path(target) if target else "unknown"


def model_name(model_id: str) -> str:
    """How a card names a model: its id, or a local folder's last component when the id is a path.

    (The callback names a run after ``name_or_path``, an absolute folder for a local model.)
    """
    if model_id.startswith(("/", "~", ".")) or "\\" in model_id or model_id.count("/") > 1:
        return display_path(model_id)
    return model_id
