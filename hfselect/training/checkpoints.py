"""A candidate's checkpoint folder: a safe name, made and removed only by hfselect, read back on resume.

Fine selection (fixed or budgeted, here or on Ray) trains each candidate in its own folder under the
run's output. hfselect writes a marker file into every folder it makes and removes only such a
folder, so a user's folder at that path is never trained into nor deleted.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from hfselect.errors import HfSelectError

logger = logging.getLogger(__name__)


# Written into every checkpoint folder hfselect makes: only such a folder is ever removed.
CHECKPOINT_MARKER = ".hfselect-checkpoints"


def checkpoint_folder_name(model_id: str) -> str:
    """A model id as one safe folder name: ``/`` becomes ``--``, and ``.`` or ``..`` are quoted."""
    name = model_id.replace("/", "--").replace("\\", "--")
    return name if name not in ("", ".", "..") else f"model-{name.encode().hex()}"


def check_checkpoint_folder(directory: Path) -> None:
    """Refuse a checkpoint path where something hfselect did not make already is.

    Raises:
        HfSelectError: ``directory`` exists, is not empty and was not made by hfselect: training
            would write into, and a drop would remove, someone else's files.
    """
    foreign = directory.exists() and not (directory / CHECKPOINT_MARKER).is_file()
    if foreign and (not directory.is_dir() or any(directory.iterdir())):
        raise HfSelectError(
            f"{directory} exists and was not made by hfselect; choose another --output or --study"
        )


def make_checkpoint_folder(directory: Path) -> None:
    """Create a candidate's checkpoint folder, marked as hfselect's (see :func:`check_checkpoint_folder`)."""
    check_checkpoint_folder(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / CHECKPOINT_MARKER).touch()


def remove_checkpoint_folder(directory: Path, *, inside: Path | None = None) -> None:
    """Remove a dropped candidate's checkpoints: only a folder :func:`make_checkpoint_folder` made,
    and with ``inside`` (the run's checkpoint folder) only one under it, symbolic links resolved."""
    if inside is not None and not directory.resolve().is_relative_to(inside.resolve()):
        logger.warning("left %s in place: it is outside %s", directory, inside)
        return
    if (directory / CHECKPOINT_MARKER).is_file() and not directory.is_symlink():
        shutil.rmtree(directory, ignore_errors=True)


def latest_checkpoint(directory: Path) -> str | None:
    """The latest checkpoint folder in a candidate's ``directory``, or None before its first epoch."""
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(directory)) if directory.is_dir() else None


def checkpoint_state(checkpoint: str) -> dict[str, Any]:
    """A checkpoint's ``trainer_state.json``: its epoch and log history."""
    return json.loads((Path(checkpoint) / "trainer_state.json").read_text())
