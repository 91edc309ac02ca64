"""Finding and loading candidate models, with hfselect's safety defaults.

A model is a Hub id or a local ``save_pretrained`` folder (:func:`hfselect.specs.is_local_path`
tells them apart); a local folder holding several model folders stands for all of them. Its commit
sha (:func:`resolve_model_sha`) keys everything cached about it. Loading never runs remote code
(``trust_remote_code=False``) and reads safetensors weights only unless the caller allows pickle
files.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hfselect.errors import ModelLoadError
from hfselect.specs import is_local_path

logger = logging.getLogger(__name__)

# Models already warned about in this process (fine selection loads a candidate once per round).
_WARNED_CUSTOM_CODE: set[str] = set()


def is_model_folder(path: Path) -> bool:
    """A folder that ``from_pretrained`` can load: it has a ``config.json``."""
    return path.is_dir() and (path / "config.json").is_file()


def expand_model_specs(specs: Iterable[str]) -> list[str]:
    """Hub ids and model folders as given; a folder of model folders becomes each of them (sorted).

    Raises:
        ModelLoadError: A spec is a path (see :func:`hfselect.specs.is_local_path`) that does not exist.
    """
    expanded: list[str] = []
    for spec in specs:
        path = Path(spec).expanduser()
        if not path.exists() and is_local_path(spec):
            raise ModelLoadError(f"model {spec}: the local folder {path} does not exist")
        if path.is_dir() and not is_model_folder(path):
            children = sorted(child for child in path.iterdir() if child.is_dir())
            if not children:
                raise ModelLoadError(f"{spec} is a folder but holds no model folders (no config.json)")
            expanded.extend(str(child) for child in children)
        else:
            expanded.append(spec)
    return expanded


def model_key(spec: str) -> str:
    """The id a model is stored under: its Hub id, or a local folder's name."""
    path = Path(spec).expanduser()
    if path.exists():
        return path.resolve().name
    return spec


def local_model_sha(folder: str | os.PathLike[str]) -> str:
    """A content hash for a local model folder, standing in for a Hub commit sha in caches.

    Hashes the config and the weight files' names and sizes: cheap for large checkpoints, and
    re-saving a model with other weights changes it in practice.
    """
    folder = Path(folder)
    digest = hashlib.sha1()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(folder)).encode())
            digest.update(str(path.stat().st_size).encode())
            if path.name == "config.json":
                digest.update(path.read_bytes())
    return digest.hexdigest()


def hub_model_sha(model_id: str, *, token: str | bool | None = None, max_time_s: float = 30.0) -> str:
    """The current commit sha of a Hub model, from one ``model_info`` call (nothing is downloaded).

    Transient Hub failures are retried for at most ``max_time_s`` (0: one attempt).

    Raises:
        ModelLoadError: The Hub does not know the model, cannot be reached or gives no sha.
    """
    from huggingface_hub import HfApi

    from hfselect.hub.client import call_with_retries, describe_hub_error

    try:
        info = call_with_retries(
            lambda: HfApi().model_info(model_id, token=token),
            max_time_s=max_time_s,
            waiting_for=f"the Hub to describe model {model_id}",
        )
    except Exception as error:
        raise ModelLoadError(describe_hub_error(error, what=f"model {model_id}")) from error
    if not info.sha:
        raise ModelLoadError(f"model {model_id}: the Hub gave no commit sha")
    return info.sha


def resolve_model_sha(model_spec: str, *, token: str | bool | None = None) -> tuple[str, str | None]:
    """The sha that keys a model's cached results, and the revision to load it at.

    A local folder: :func:`local_model_sha`, revision ``None``. A Hub id: :func:`hub_model_sha`,
    which is also the revision to load, so what is stored under it comes from exactly those weights.

    Raises:
        ModelLoadError: A path that does not exist, or the Hub does not know the model or cannot be
            reached.
    """
    path = Path(model_spec).expanduser()
    if path.exists():
        return local_model_sha(path), None
    if is_local_path(model_spec):
        # Not a Hub id ("owner/name") but a path: say so rather than ask the Hub.
        raise ModelLoadError(f"model {model_spec}: no such local folder")
    sha = hub_model_sha(model_spec, token=token)
    return sha, sha


def warn_if_custom_code_ignored(spec: str, config: Any) -> bool:
    """Warn (once per model) when a config names custom code that hfselect loads as a built-in class.

    A ``config.json`` with ``auto_map`` ships its own model classes. hfselect never runs them
    (``trust_remote_code=False``): when ``model_type`` is a built-in one, transformers loads the
    built-in class instead, which may not be the model its author shipped. Returns whether it warned.
    """
    auto_map = getattr(config, "auto_map", None)
    if not auto_map or spec in _WARNED_CUSTOM_CODE:
        return False
    _WARNED_CUSTOM_CODE.add(spec)
    logger.warning(
        "%s ships custom code (auto_map in config.json) that hfselect does not run; it is loaded as the "
        "built-in %r model instead, which may not be the model its author intended",
        spec,
        getattr(config, "model_type", None),
    )
    return True


def _pinned(token: str | bool | None, revision: str | None) -> dict[str, Any]:
    # Never remote code; a revision only when pinned, so an unpinned call asks for the default branch.
    arguments: dict[str, Any] = {"trust_remote_code": False, "token": token}
    if revision is not None:
        arguments["revision"] = revision
    return arguments


def load_config(
    spec: str, *, token: str | bool | None = None, revision: str | None = None, allow_pickle: bool = False
) -> Any:
    """A model's config, without running its custom code (see :func:`warn_if_custom_code_ignored`).

    Raises:
        ModelLoadError: One line naming the model and the cause.
    """
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(spec, **_pinned(token, revision))
    except Exception as error:
        raise ModelLoadError(
            f"cannot load model {spec}: {describe_load_error(error, allow_pickle)}"
        ) from error
    warn_if_custom_code_ignored(spec, config)
    return config


def load_pretrained(
    auto_class: Any,
    spec: str,
    *,
    config: Any,
    allow_pickle: bool = False,
    token: str | bool | None = None,
    revision: str | None = None,
    **options: Any,
) -> Any:
    """``auto_class.from_pretrained(spec, ...)`` with hfselect's safety defaults: never remote code,
    safetensors weights only unless ``allow_pickle``. ``options`` go to ``from_pretrained``.

    Raises:
        ModelLoadError: One line naming the model and the cause.
    """
    try:
        return auto_class.from_pretrained(
            spec,
            config=config,
            use_safetensors=None if allow_pickle else True,
            **_pinned(token, revision),
            **options,
        )
    except Exception as error:
        raise ModelLoadError(
            f"cannot load model {spec}: {describe_load_error(error, allow_pickle)}"
        ) from error


def load_classifier(
    spec: str,
    *,
    num_labels: int,
    id2label: dict[int, str] | None = None,
    allow_pickle: bool = False,
    token: str | bool | None = None,
) -> Any:
    """Load ``spec`` as a sequence classifier with a ``num_labels`` head.

    The pretrained head is kept when it already has ``num_labels`` outputs and re-initialised
    otherwise (``ignore_mismatched_sizes``), which is how fine-tuning on a new label set works.
    Raises :class:`ModelLoadError` with one line naming the model and the cause.
    """
    from transformers import AutoModelForSequenceClassification

    label_names = id2label or {index: f"LABEL_{index}" for index in range(num_labels)}
    config = load_config(spec, token=token, allow_pickle=allow_pickle)
    config.num_labels = num_labels
    config.id2label = dict(label_names)
    config.label2id = {name: index for index, name in label_names.items()}
    return load_pretrained(
        AutoModelForSequenceClassification,
        spec,
        config=config,
        allow_pickle=allow_pickle,
        token=token,
        ignore_mismatched_sizes=True,
    )


def load_tokenizer_or_processor(
    spec: str, *, modality: str = "text", token: str | bool | None = None, revision: str | None = None
) -> Any:
    """The tokenizer (text) or image processor (image) saved with a model, at ``revision`` if given.

    Raises:
        ModelLoadError: One line naming the model and the cause.
    """
    from transformers import AutoImageProcessor, AutoTokenizer

    # A revision only when pinned, so an unpinned call passes exactly what it always did.
    pinned = {} if revision is None else {"revision": revision}
    try:
        loader = AutoImageProcessor if modality == "image" else AutoTokenizer
        return loader.from_pretrained(spec, trust_remote_code=False, token=token, **pinned)
    except Exception as error:
        raise ModelLoadError(
            f"cannot load the {'image processor' if modality == 'image' else 'tokenizer'} "
            f"of {spec}: {describe_load_error(error, False)}"
        ) from error


def describe_load_error(error: BaseException, allow_pickle: bool) -> str:
    """A one-line cause for a failed ``from_pretrained``."""
    text = " ".join(str(error).split()) or type(error).__name__
    if isinstance(error, json.JSONDecodeError) or "JSON" in type(error).__name__:
        return f"config.json is not valid JSON ({text[:120]})"
    lowered = text.lower()
    if "safetensors" in lowered and not allow_pickle:
        return "no safetensors weights (pass --allow-pickle to load pickle files you trust)"
    if "trust_remote_code" in lowered or "custom code" in lowered:
        return "it needs custom code, which hfselect never runs"
    if "unrecognized model" in lowered or "model_type" in lowered:
        return f"unsupported architecture ({text[:160]})"
    return text[:200]
