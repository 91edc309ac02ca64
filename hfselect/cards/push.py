"""Pushing selection reports to the Hub, with one commit and without ever leaking the token.

The token comes from the usual huggingface_hub sources (the ``token`` argument, ``HF_TOKEN``, the
login stored by ``hf auth login``). It is passed to the client calls and nowhere else: it never
reaches a card, a report, a log line or an error message, and every file is checked for it before
it is pushed. Failures the user can act on (no token, a rejected or read-only token, a card the Hub
refuses) become one-line :class:`~hfselect.errors.HubError` messages that say what to do.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, get_token
from huggingface_hub.errors import HfHubHTTPError, LocalTokenNotFoundError

from hfselect.cards.names import redact_secrets, target_name
from hfselect.cards.report import write_report_folder
from hfselect.cards.selection_report import REPORT_JSON, SelectionReport
from hfselect.errors import HfSelectError, HubError
from hfselect.hub.client import TRANSPORT_ERRORS, describe_hub_error, status_code

logger = logging.getLogger(__name__)

REPO_TYPES = ("model", "dataset")
TOKENS_URL = "https://huggingface.co/settings/tokens"
# Files of a saved model that are never pushed: the Trainer's pickled arguments (not needed to use
# the model, and a pickle may hold anything, a hub_token included) and the folder's own card.
MODEL_FILES_SKIPPED = frozenset({"training_args.bin", "README.md"})
# Files of a model folder small and textual enough to be checked for the token before pushing.
_SCANNED_SUFFIXES = frozenset({".json", ".txt", ".md", ".yaml", ".yml", ".model", ".py", ".csv"})
_SCAN_LIMIT_BYTES = 64 * 1024 * 1024


def resolve_token(token: str | None = None) -> str:
    """The token to write with: ``token``, else ``HF_TOKEN``, else the stored login.

    Raises:
        HubError: no token anywhere (one line saying how to log in).
    """
    token = token or get_token()
    if not token:
        raise HubError("no Hugging Face token: run `hf auth login` or set HF_TOKEN (with write access)")
    return token


def _scrub(text: str, token: str | None) -> str:
    """One line of ``text``, with the token removed should a server ever echo it."""
    line = (text.strip().splitlines() or [""])[0]
    return line.replace(token, "***") if token else line


def write_error(error: BaseException, repo_id: str, *, repo_type: str, token: str | None) -> HubError:
    """A one-line :class:`HubError` for a failed write to ``repo_id`` (never holding the token)."""
    code = status_code(error)
    if isinstance(error, LocalTokenNotFoundError):
        message = "no Hugging Face token: run `hf auth login` or set HF_TOKEN (with write access)"
    elif code == 401:
        message = (
            "the Hub rejected your Hugging Face token (401 Unauthorized): run `hf auth login` again "
            "or set HF_TOKEN to a valid token"
        )
    elif code == 403:
        message = (
            f"your token cannot write to {repo_id} (403 Forbidden): use a token with write access "
            f"({TOKENS_URL}), or push to a namespace you can write to"
        )
    elif isinstance(error, ValueError) and "metadata" in str(error).lower():
        # huggingface_hub validates README.md's YAML with the Hub before a commit.
        message = f"the Hub rejected the card of {repo_id}: {_scrub(str(error), token)}"
    else:
        message = describe_hub_error(error, what=f"the {repo_type} repository {repo_id}")
    return HubError(_scrub(message, token))


def contains_secret(data: bytes, token: str) -> bool:
    """Whether ``data`` holds ``token`` (as UTF-8 bytes)."""
    return bool(token) and token.encode() in data


def push_files(
    files: Mapping[str, bytes | Path],
    repo_id: str,
    *,
    repo_type: str = "dataset",
    private: bool = False,
    create_pr: bool = False,
    token: str | None = None,
    commit_message: str = "Upload with hfselect",
    delete: Callable[[str], bool] | None = None,
) -> str:
    """Create ``repo_id`` if needed and push ``files`` (path in repo -> bytes or local file) in one commit.

    ``delete`` picks files already in the repository to remove in the same commit (those not being
    pushed again), e.g. the tables of an older snapshot. Returns the repository's URL, or the pull
    request's with ``create_pr``.

    Raises:
        HubError: no token, a token that cannot write, a file holding the token, or any Hub failure.
    """
    if repo_type not in REPO_TYPES:
        raise ValueError(f"repo_type must be one of {', '.join(REPO_TYPES)}, not {repo_type!r}")
    token = resolve_token(token)
    operations: list[CommitOperationAdd | CommitOperationDelete] = []
    for path_in_repo, content in files.items():
        if isinstance(content, bytes):
            data = content
        elif Path(content).suffix in _SCANNED_SUFFIXES and Path(content).stat().st_size <= _SCAN_LIMIT_BYTES:
            data = Path(content).read_bytes()
        else:
            data = b""  # weights: streamed from disk by the client, not read here
        if contains_secret(data, token):
            raise HubError(
                f"refusing to push {path_in_repo}: it contains your Hugging Face token; remove it and push again"
            )
        source = content if isinstance(content, bytes) else str(content)
        operations.append(CommitOperationAdd(path_in_repo=path_in_repo, path_or_fileobj=source))
    api = HfApi()
    try:
        url = api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True, token=token)
        repo_id = url.repo_id  # a bare NAME gets the user's namespace
        if delete is not None:
            existing = api.list_repo_files(repo_id, repo_type=repo_type, token=token)
            operations += [
                CommitOperationDelete(path_in_repo=path)
                for path in existing
                if path not in files and delete(path)
            ]
        info = api.create_commit(
            repo_id,
            operations,
            commit_message=commit_message,
            repo_type=repo_type,
            create_pr=create_pr,
            token=token,
        )
    except (HfHubHTTPError, LocalTokenNotFoundError, ValueError, OSError, *TRANSPORT_ERRORS) as error:
        raise write_error(error, repo_id, repo_type=repo_type, token=token) from error
    result = info.pr_url if create_pr and info.pr_url else str(info.repo_url)
    logger.info("pushed %d file(s) to %s", len(files), result)
    return result


def _model_files(model_dir: str | os.PathLike[str]) -> dict[str, Path]:
    folder = Path(model_dir)
    if not (folder / "config.json").is_file():
        raise HfSelectError(f"{folder} is not a saved model folder (no config.json)")
    return {
        path.relative_to(folder).as_posix(): path
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name not in MODEL_FILES_SKIPPED and not path.name.startswith(".")
    }


def push_report(
    directory: str | os.PathLike[str],
    repo_id: str,
    *,
    repo_type: str = "dataset",
    private: bool = False,
    create_pr: bool = False,
    token: str | None = None,
    model_dir: str | os.PathLike[str] | None = None,
    commit_message: str | None = None,
) -> str:
    """Push a selection report folder (what :func:`write_report_folder` wrote) to the Hub in one commit.

    The card is rendered again from ``report.json`` for ``repo_type`` (a dataset card, or a model
    card with a ``model-index``), and ``README.md``, ``report.json`` and ``learning_curves.png`` are
    pushed, without any absolute local path (:meth:`SelectionReport.public`: the command line, the
    saved model's folder, local specs); nothing else of the folder (checkpoints stay local).

    Args:
        directory: the report folder (or its ``report.json``).
        repo_id: ``USER/NAME`` (or ``NAME`` for your own namespace); created when missing.
        repo_type: ``"dataset"`` (default) or ``"model"``.
        private: create the repository private (an existing one keeps its visibility).
        create_pr: open a pull request instead of committing to ``main``.
        token: a token with write access; default ``HF_TOKEN`` or the stored login.
        model_dir: also push this saved model folder (the selected, fine-tuned model) at the root of
            a model repository, so the card is its model card.
        commit_message: default "Add hfselect selection report for TARGET".

    Returns:
        The repository's URL (the pull request's with ``create_pr``).

    Raises:
        HubError: no token, a token that cannot write (401/403), or another Hub failure.
        HfSelectError: ``directory`` holds no report.
    """
    if model_dir is not None and repo_type != "model":
        raise ValueError(
            "model_dir goes with repo_type='model': a model's weights belong in a model repository"
        )
    source = Path(directory)
    report = SelectionReport.from_json(source if source.is_file() else source / REPORT_JSON)
    token = resolve_token(token)
    # Whatever shape the token has, a copy of it in the report (a command line, a note) is masked.
    report = SelectionReport.from_dict(redact_secrets(report.to_dict(), secret=token))
    with tempfile.TemporaryDirectory(prefix="hfselect-report-") as work:
        written = write_report_folder(
            report, work, repo_type=repo_type, includes_model=model_dir is not None, public=True
        )
        files: dict[str, bytes | Path] = {name: path.read_bytes() for name, path in written.items()}
        if model_dir is not None:
            for name, path in _model_files(model_dir).items():
                files.setdefault(name, path)
        message = commit_message or f"Add hfselect selection report for {target_name(report.target)}"
        return push_files(
            files, repo_id, repo_type=repo_type, private=private, create_pr=create_pr, token=token,
            commit_message=message,
        )  # fmt: skip


def push_study_report(
    repository: Any,
    study_id: str,
    repo_id: str,
    *,
    metric: str | None = None,
    repo_type: str = "dataset",
    private: bool = False,
    create_pr: bool = False,
    token: str | None = None,
) -> str:
    """Build the report of a study in ``repository`` (no recall section), render it and push it.

    What :class:`~hfselect.callbacks.ConvergenceTrendCallback` calls for ``push_to_hub=``. See
    :meth:`SelectionReport.from_study` and :func:`push_report` for the arguments.
    """
    token = resolve_token(token)
    report = SelectionReport.from_study(repository, study_id, metric=metric)
    with tempfile.TemporaryDirectory(prefix="hfselect-study-") as work:
        write_report_folder(report, work, repo_type=repo_type, public=True)
        return push_report(
            work, repo_id, repo_type=repo_type, private=private, create_pr=create_pr, token=token,
            commit_message=f"Add hfselect report of study {study_id}",
        )  # fmt: skip
