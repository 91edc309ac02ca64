"""Model repository snapshots on the Hub: push as a dataset of Parquet tables, pull, and ``hf://`` paths.

A snapshot is the ``hfselect repo export`` layout under ``data/`` (one ``<table>.parquet`` per table)
plus a dataset card whose ``configs:`` metadata gives each table its own configuration, so the Hub's
dataset viewer shows them and ``datasets.load_dataset(REPO, "results")`` loads one. Pulling
downloads the Parquet files and merges them with :meth:`ModelRepository.import_parquet`.

``--repository hf://datasets/USER/NAME[@REVISION]`` names a snapshot on the Hub: it is pulled into a
SQLite file under ``~/.cache/hfselect/hub/`` and pulled again only when the Hub's commit changed.
That file is a mirror: it is replaced whenever the snapshot changes, so write to a local repository.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pandas as pd
from huggingface_hub import DatasetCard, DatasetCardData, HfApi, snapshot_download
from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

from hfselect.cards.markdown import Markdown, code, render_card, url
from hfselect.cards.names import is_hub_repo_id
from hfselect.cards.push import push_files
from hfselect.cards.report import MISSING, PAPER_URL
from hfselect.errors import HubError, RepositoryError
from hfselect.hub.client import TRANSPORT_ERRORS, hub_error, is_network_error, is_transient
from hfselect.store import TABLES, ModelRepository, default_repository_path
from hfselect.validation import check_revision

logger = logging.getLogger(__name__)

TEMPLATE_PATH = Path(__file__).with_name("dataset_card_template.md")
DATA_DIR = "data"
TAGS = ("hfselect", "model-selection", "model-repository", "benchmark-results", "learning-curves")

TABLE_DESCRIPTIONS = {
    "models": "a model: Hub id (or local folder name), commit sha, architecture, model type, task, library, "
    "parameters, labels, hidden size, license, downloads, likes, gating, tags, card metadata, dates",
    "datasets": "a benchmark dataset: number of labels, label names, modality, fingerprint, split sizes",
    "results": "a model fine-tuned on a dataset under a protocol: final score, metric, status (ok or failed, "
    "and why), and the protocol: epochs, learning rate, batch size, seed, sample sizes, max length",
    "curves": "one point of a learning curve: a (model, dataset, protocol) pair's validation score after an epoch",
    "proxy_scores": "a cached proxy score (LEEP, LogME, NCE, H-score, kNN) of a model on a dataset sample",
    "studies": "a selection study: target, configuration, status",
    "study_trials": "one run of a study: state, epochs trained, final and predicted final score, why it stopped",
    "study_curves": "one evaluation of a study run: epoch, score, predicted final score",
    "crawl_log": "what the crawler did with a listed model: stored, or skipped and why",
}

_HF_PATH = re.compile(r"^hf://datasets/(?P<user>[\w.-]+)/(?P<name>[\w.-]+?)(?:@(?P<revision>[^/]+))?/?$")
_FULL_SHA = re.compile(r"^[0-9a-f]{40}$")


def _open(repository: ModelRepository | str | os.PathLike[str] | None) -> tuple[ModelRepository, bool]:
    """The repository, and whether this call opened it (and so must close it)."""
    if isinstance(repository, ModelRepository):
        return repository, False
    return ModelRepository(repository), True


def _size_category(rows: int) -> str:
    """The Hub's ``size_categories`` bucket for a row count."""
    for limit, name in (
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
    ):
        if rows < limit:
            return name
    return "1M<n<10M" if rows < 10_000_000 else "10M<n<100M"


def _protocols(results: pd.DataFrame) -> list[dict[str, Any]]:
    """One entry per benchmark protocol found in the results, most results first."""
    if results.empty:
        return []
    out = []
    for key, frame in results.groupby("protocol", sort=False):
        first = frame.iloc[0]

        def value(column: str, row: Any = first) -> Any:
            item = row.get(column)
            return None if item is None or item != item else item

        out.append(
            {
                "key": str(key),
                "metric": str(first["metric"]),
                "epochs": value("epochs"),
                "learning_rate": value("learning_rate"),
                "batch_size": value("batch_size"),
                "max_length": value("max_length"),
                "train_samples": value("train_samples"),
                "eval_samples": value("eval_samples"),
                "seed": value("seed"),
                "results": len(frame),
                "models": int(frame["model_id"].nunique()),
                "datasets": int(frame["dataset"].nunique()),
            }
        )
    return sorted(out, key=lambda p: -p["results"])


def repository_snapshot(
    repository: ModelRepository | str | os.PathLike[str] | None, *, source: str | None = None
) -> dict[str, Any]:
    """What a repository holds, for a report's ``repository`` section and the snapshot card.

    Returns counts per table, the schema version, how many models have benchmark results, how many
    benchmark datasets there are, the protocols found in the results (settings and sizes) and
    ``source`` (e.g. the ``hf://`` snapshot it came from; local paths are best left out of reports).
    """
    store, owned = _open(repository)
    try:
        results = store.results()
        snapshot = {
            "counts": store.counts(),
            "schema_version": store.schema_version,
            "models_with_results": int(results["model_id"].nunique()) if not results.empty else 0,
            "benchmark_datasets": int(results["dataset"].nunique()) if not results.empty else 0,
            "protocols": _protocols(results),
        }
    finally:
        if owned:
            store.close()
    if source:
        snapshot["source"] = source
    return snapshot


def _number(value: Any, digits: int | None = None) -> str:
    if value is None:
        return MISSING
    if digits is not None and isinstance(value, float):
        return f"{value:g}"
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def render_repository_card(
    repository: ModelRepository | str | os.PathLike[str] | None,
    repo_id: str,
    *,
    pretty_name: str | None = None,
) -> DatasetCard:
    """The dataset card of a repository snapshot: one viewer configuration per non-empty table.

    Args:
        repository: the repository (or its path).
        repo_id: the dataset's ``USER/NAME``, used in the usage examples.
        pretty_name: the card's title; default "hfselect model repository (USER/NAME)".

    Raises:
        HubError: ``repo_id`` is not a Hub repository id.
    """
    if not is_hub_repo_id(repo_id):
        raise HubError(f"{repo_id!r} is not a Hub dataset id: use NAME or USER/NAME (letters, digits, - _ .)")
    store, owned = _open(repository)
    try:
        snapshot = repository_snapshot(store)
        results = store.results(status=None)
        datasets = sorted(store.results()["dataset"].unique()) if snapshot["benchmark_datasets"] else []
    finally:
        if owned:
            store.close()
    counts = snapshot["counts"]
    filled = [table for table in TABLES if counts.get(table)]
    default = "results" if "results" in filled else (filled[0] if filled else None)
    configs = [
        {
            "config_name": table,
            "data_files": [{"split": "train", "path": f"{DATA_DIR}/{table}.parquet"}],
            **({"default": True} if table == default else {}),
        }
        for table in filled
    ]
    title = pretty_name or f"hfselect model repository ({repo_id})"
    card_data = DatasetCardData(
        pretty_name=title,
        size_categories=[_size_category(max(counts.get("results", 0), counts.get("models", 0)))],
        tags=list(TAGS),
        configs=configs or None,
        hfselect={
            "schema_version": snapshot["schema_version"],
            "counts": {table: int(rows) for table, rows in counts.items()},
            "protocols": [p["key"] for p in snapshot["protocols"]],
        },
    )
    protocols = []
    for p in snapshot["protocols"]:
        train = _number(p["train_samples"]) if p["train_samples"] is not None else "all"
        evaluation = _number(p["eval_samples"]) if p["eval_samples"] is not None else "all"
        imported = p["key"].startswith("imported")
        protocols.append(
            {
                **{k: _number(v, 1 if k == "learning_rate" else None) for k, v in p.items()},
                "samples": MISSING if imported else f"{train} / {evaluation}",
            }
        )
    shown = Markdown(", ").join(code(name) for name in datasets[:40])
    return render_card(
        DatasetCard,
        card_data,
        TEMPLATE_PATH,
        # Shown inside code blocks and a URL, where escaping would show: checked to be a plain id instead.
        repo_id=Markdown(repo_id),
        paper_url=url(PAPER_URL),
        tables=[
            {"name": table, "rows": counts.get(table, 0), "description": TABLE_DESCRIPTIONS.get(table, "")}
            for table in TABLES
        ],
        protocols=protocols,
        datasets=shown,
        more_datasets=max(0, len(datasets) - 40),
        models_with_results=snapshot["models_with_results"],
        benchmark_datasets=snapshot["benchmark_datasets"],
        ok_results=int((results["status"] == "ok").sum()) if not results.empty else 0,
        curve_points=counts.get("curves", 0),
        schema_version=snapshot["schema_version"],
    )


def push_repository(
    repository: ModelRepository | str | os.PathLike[str] | None,
    repo_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    create_pr: bool = False,
    commit_message: str | None = None,
    include_local_paths: bool = False,
) -> str:
    """Publish the repository as a Hub dataset of Parquet tables (``data/<table>.parquet``) with its card.

    Local paths (local models' folders, local targets) are left out unless ``include_local_paths``.

    One commit adds every table (empty ones too, so a pull reproduces the store exactly) and the
    card, and removes tables of an older snapshot that no longer exist. Returns the dataset's URL
    (the pull request's with ``create_pr``).

    Raises:
        HubError: no token, a token that cannot write, or another Hub failure.
    """
    store, owned = _open(repository)
    try:
        with tempfile.TemporaryDirectory(prefix="hfselect-snapshot-") as work:
            written = store.export_parquet(work, include_local_paths=include_local_paths)
            card = render_repository_card(store, repo_id)
            files: dict[str, bytes | Path] = {
                f"{DATA_DIR}/{name}.parquet": path.read_bytes() for name, path in written.items()
            }
            files["README.md"] = str(card).encode()
            counts = store.counts()
    finally:
        if owned:
            store.close()
    message = commit_message or "hfselect repository snapshot: " + ", ".join(
        f"{counts[name]} {name}" for name in ("models", "results", "curves") if name in counts
    )
    return push_files(
        files,
        repo_id,
        repo_type="dataset",
        private=private,
        create_pr=create_pr,
        token=token,
        commit_message=message,
        delete=lambda path: path.startswith(f"{DATA_DIR}/") and path.endswith(".parquet"),
    )


def pull_repository(
    repo_id: str,
    repository: ModelRepository | str | os.PathLike[str] | None,
    *,
    revision: str | None = None,
    token: str | None = None,
) -> dict[str, int]:
    """Download a snapshot pushed by :func:`push_repository` and merge it into ``repository``.

    Rows are merged as by ``hfselect repo import`` (a row replaces the stored one with the same key).
    Returns the number of rows read per table.

    Nothing is written until the snapshot is downloaded and checked, and a repository file this
    call created is removed again when the pull fails.

    Raises:
        HubError: the dataset cannot be found or downloaded.
        RepositoryError: the dataset holds no hfselect tables, or a table the repository refuses.
        InvalidValueError: ``revision`` is not a branch, tag or commit name.
    """
    if revision is not None:
        check_revision("revision", revision)
    try:
        folder = Path(
            snapshot_download(
                repo_id,
                repo_type="dataset",
                revision=revision,
                allow_patterns=[f"{DATA_DIR}/*.parquet", "*.parquet"],
                token=token,
            )
        )
    except (HfHubHTTPError, OfflineModeIsEnabled, OSError, ValueError, *TRANSPORT_ERRORS) as error:
        raise hub_error(error, what=f"the dataset {repo_id}") from error
    tables = folder / DATA_DIR if any((folder / DATA_DIR).glob("*.parquet")) else folder
    if not any(tables.glob("*.parquet")):
        raise RepositoryError(
            f"the dataset {repo_id} holds no hfselect tables (data/<table>.parquet); "
            "publish one with `hfselect repo push`"
        )
    new_file = (
        not isinstance(repository, ModelRepository)
        and not (
            Path(repository).expanduser() if repository is not None else default_repository_path()
        ).exists()
    )
    store, owned = _open(repository)
    try:
        imported = store.import_parquet(tables)
    except BaseException:
        if owned and new_file:  # a failed pull leaves no new, empty repository behind
            store.close()
            for leftover in ("", "-wal", "-shm"):
                Path(f"{store.path}{leftover}").unlink(missing_ok=True)
        raise
    finally:
        if owned:
            store.close()
    logger.info("pulled %s: %s", repo_id, imported)
    return imported


def hub_cache_dir() -> Path:
    """Where ``hf://`` repositories are mirrored: ``$XDG_CACHE_HOME/hfselect/hub`` (``~/.cache/...``)."""
    from hfselect.store import hfselect_cache

    return hfselect_cache() / "hub"


def _read_state(path: Path) -> Mapping[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def resolve_repository_path(
    value: str, *, token: str | None = None, cache_dir: str | os.PathLike[str] | None = None
) -> str:
    """Map ``hf://datasets/USER/NAME[@REVISION]`` to a local SQLite mirror; return other values unchanged.

    The snapshot is pulled into ``<cache>/USER--NAME[@REVISION].sqlite`` on first use and pulled again
    (into a fresh file, swapped in atomically) when the Hub's commit for that revision changed. Offline
    or when the Hub cannot be reached, an existing mirror is used as it is.

    Raises:
        HubError: a malformed ``hf://`` value, or a snapshot that cannot be fetched with no mirror to use.
    """
    if not value.startswith("hf://"):
        return value
    match = _HF_PATH.match(value)
    if match is None:
        raise HubError(
            f"{value}: a repository on the Hub is named hf://datasets/USER/NAME or hf://datasets/USER/NAME@REVISION"
        )
    user, name = match["user"], match["name"]
    revision = check_revision("revision", unquote(match["revision"])) if match["revision"] else None
    repo_id = f"{user}/{name}"
    root = Path(cache_dir) if cache_dir is not None else hub_cache_dir()
    suffix = "@" + re.sub(r"[^\w.-]", "_", revision) if revision else ""
    path = root / f"{user}--{name}{suffix}.sqlite"
    state_path = path.with_name(path.name + ".json")
    state = _read_state(state_path) if path.exists() else {}

    if revision and _FULL_SHA.match(revision) and state.get("sha") == revision:
        return str(path)  # a commit never changes: no need to ask the Hub
    try:
        sha = HfApi().repo_info(repo_id, repo_type="dataset", revision=revision, token=token).sha
    except Exception as error:
        usable = state.get("sha") and (
            isinstance(error, OfflineModeIsEnabled) or is_network_error(error) or is_transient(error)
        )
        if usable:
            logger.warning(
                "cannot check %s on the Hub (%s); using the copy pulled at commit %s",
                repo_id,
                type(error).__name__,
                str(state["sha"])[:8],
            )
            return str(path)
        raise hub_error(error, what=f"the dataset {repo_id}") from error
    if state.get("sha") == sha:
        return str(path)

    root.mkdir(parents=True, exist_ok=True)
    handle, partial_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=root)
    os.close(handle)
    partial = Path(partial_name)
    partial.unlink()  # ModelRepository creates the file itself
    try:
        with ModelRepository(partial) as mirror:
            pull_repository(repo_id, mirror, revision=sha, token=token)
        # A stale WAL next to the old file must not be replayed onto the new one.
        for extra in ("-wal", "-shm"):
            Path(str(path) + extra).unlink(missing_ok=True)
        os.replace(partial, path)
    finally:
        for leftover in (partial, Path(str(partial) + "-wal"), Path(str(partial) + "-shm")):
            leftover.unlink(missing_ok=True)
    state_path.write_text(json.dumps({"repo_id": repo_id, "revision": revision, "sha": sha}))
    logger.info("pulled %s at %s into %s", repo_id, sha[:8], path)
    return str(path)
