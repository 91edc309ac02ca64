"""Shared pytest configuration and fixtures."""

# ==================================================================================================
# Local Hugging Face Hub (tests/hub): environment + fixtures
#
# huggingface_hub, datasets and transformers read HF_ENDPOINT, the cache folders and the telemetry
# switches once, at import time. So this block runs at conftest import, before any test module
# imports them: it reserves a free port, points HF_ENDPOINT at it and moves every cache into a
# fresh temporary folder. The session-scoped ``local_hub`` fixture then serves on that port.
# Nothing in the test session can reach the real Hub: every client default points here.
# ==================================================================================================

from __future__ import annotations

import atexit
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


def _reserve_port() -> int:
    """A port that was free a moment ago (the server binds it again with SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


_HUB_PORT = _reserve_port()
_HUB_URL = f"http://127.0.0.1:{_HUB_PORT}"
_HF_TMP = tempfile.mkdtemp(prefix="hfselect-tests-hf-")
atexit.register(shutil.rmtree, _HF_TMP, ignore_errors=True)

for _name in (
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "HF_TOKEN_PATH",
    "HF_HUB_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "HF_DATASETS_OFFLINE",
    "HUGGINGFACE_CO_STAGING",  # would override HF_ENDPOINT
    "HUGGINGFACE_HUB_CACHE",  # legacy names, read before the new ones
    "HUGGINGFACE_ASSETS_CACHE",
    "HF_HUB_ENABLE_HF_TRANSFER",
    "TRANSFORMERS_CACHE",
):
    os.environ.pop(_name, None)
os.environ.update(
    {
        "HF_ENDPOINT": _HUB_URL,
        "HF_HOME": _HF_TMP,
        "HF_HUB_CACHE": os.path.join(_HF_TMP, "hub"),
        "HF_ASSETS_CACHE": os.path.join(_HF_TMP, "assets"),
        "HF_DATASETS_CACHE": os.path.join(_HF_TMP, "datasets"),
        "HF_XET_CACHE": os.path.join(_HF_TMP, "xet"),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_XET": "1",  # the local hub never offers Xet anyway; this makes it explicit
        "HF_HUB_DISABLE_UPDATE_CHECK": "1",
        "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
)

# If a plugin imported huggingface_hub before this file, HF_ENDPOINT came too late; the fixture
# below then refuses to run rather than let tests talk to the real Hub.
_HUB_IMPORTED_TOO_EARLY = [m for m in ("huggingface_hub", "datasets", "transformers") if m in sys.modules]

from tests.hub.server import LocalHub  # noqa: E402  (after the environment is set, on purpose)


def _check_clients_point_here(url: str) -> None:
    from huggingface_hub import constants

    problems = [f"{m} was imported before tests/conftest.py" for m in _HUB_IMPORTED_TOO_EARLY]
    if url != constants.ENDPOINT:
        problems.append(f"huggingface_hub.constants.ENDPOINT is {constants.ENDPOINT!r}, not {url!r}")
    if "datasets" in sys.modules and url != sys.modules["datasets"].config.HF_ENDPOINT:
        problems.append("datasets.config.HF_ENDPOINT does not point at the local hub")
    if problems:
        raise RuntimeError("Refusing to run Hub tests: " + "; ".join(problems))


def _clear_client_state() -> None:
    """Forget what clients cache in memory between tests (file system listings, repo lookups)."""
    from huggingface_hub import HfFileSystem

    HfFileSystem.clear_instance_cache()


@pytest.fixture
def hf_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty client-side cache (huggingface_hub, transformers, datasets) for one test.

    The server's commit shas are deterministic, so without this a test can find files a previous
    test downloaded at the same sha, and request counts would depend on test order. The
    environment variables are set too, for subprocesses started by the test.
    """
    from huggingface_hub import constants

    root = tmp_path_factory.mktemp("hf-cache")
    hub_cache, datasets_cache = root / "hub", root / "datasets"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub_cache))  # read at call time
    monkeypatch.setenv("HF_HUB_CACHE", str(hub_cache))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(datasets_cache))
    import datasets.config

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", datasets_cache)
    monkeypatch.setattr(datasets.config, "DOWNLOADED_DATASETS_PATH", datasets_cache / "downloads")
    monkeypatch.setattr(
        datasets.config, "EXTRACTED_DATASETS_PATH", datasets_cache / "downloads" / "extracted"
    )
    return root


@pytest.fixture(scope="session")
def local_hub() -> Iterator[LocalHub]:
    """The session's local Hub, on the port ``HF_ENDPOINT`` points to (default clients use it)."""
    _check_clients_point_here(_HUB_URL)
    hub = LocalHub(port=_HUB_PORT)
    try:
        hub.start()
    except OSError as err:
        raise RuntimeError(f"Could not bind the local hub to {_HUB_URL} (port taken meanwhile?)") from err
    yield hub
    hub.stop()


@pytest.fixture
def hub(local_hub: LocalHub, hf_cache: Path) -> Iterator[LocalHub]:
    """The session's local Hub, emptied (no repos, faults, requests or required token).

    Comes with a fresh client cache (see ``hf_cache``), so what a test downloads is what it asked
    for, whatever ran before.
    """
    local_hub.reset()
    _clear_client_state()
    yield local_hub
    # A fault left unconsumed or a required token must not leak into the next test.
    local_hub.clear_faults()
    local_hub.require_token = None


@pytest.fixture
def isolated_hub() -> Iterator[LocalHub]:
    """A fresh local Hub on its own free port.

    Default clients do not know it: pass ``endpoint=isolated_hub.url`` (``HfApi(endpoint=...)``,
    ``hf_hub_download(..., endpoint=...)``).
    """
    with LocalHub() as fresh:
        yield fresh


# ==================================================================================================
# End of the local Hub section
# ==================================================================================================


# ==================================================================================================
# Tiny models and datasets (tests/assets.py), built once per session
# ==================================================================================================


@pytest.fixture(scope="session")
def tiny_assets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``models/`` (bert-a, distil-b, bert-headless) and ``datasets/`` (sentiment, topic) in one folder."""
    from tests.assets import make_dataset, make_model

    root = tmp_path_factory.mktemp("tiny-assets")
    make_model(root / "models" / "bert-a", "bert", seed=0)
    make_model(root / "models" / "distil-b", "distilbert", seed=1)
    make_model(root / "models" / "bert-headless", "bert", headless=True, seed=2)
    make_dataset(root / "datasets" / "sentiment", "sentiment", seed=0)
    make_dataset(root / "datasets" / "topic", "topic", seed=1)
    return root


# The fine-tuning protocol of the benchmarked tiny fixtures below.
TINY_BENCH = {"epochs": 3, "learning_rate": 1e-2, "batch_size": 16, "max_length": 32}


def _checkpoint_wal(path: Path) -> None:
    """Checkpoint the WAL into the main file, so a byte copy of it is the whole repository."""
    import sqlite3

    connection = sqlite3.connect(path)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()


@pytest.fixture(scope="session")
def tiny_benchmarks(tiny_assets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository file with the tiny models benchmarked on the sentiment dataset (3 epochs of curves).

    Shared by the session: copy it before writing to it.
    """
    from hfselect.store import ModelRepository
    from hfselect.training.bench import BenchConfig, run_bench

    path = tmp_path_factory.mktemp("tiny-benchmarks") / "repo.sqlite"
    with ModelRepository(path) as repository:
        run_bench(
            repository,
            [str(tiny_assets / "models")],
            [str(tiny_assets / "datasets" / "sentiment")],
            BenchConfig(**TINY_BENCH),
            progress=False,
        )
    _checkpoint_wal(path)
    return path


@pytest.fixture(scope="session")
def tiny_zoo_benchmarks(
    tiny_assets: Path, tiny_benchmarks: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """``tiny_benchmarks`` plus the topic dataset: every tiny model on both tiny datasets (a zoo to replay).

    Shared by the session: copy it before writing to it.
    """
    from hfselect.store import ModelRepository
    from hfselect.training.bench import BenchConfig, run_bench

    path = tmp_path_factory.mktemp("tiny-zoo-benchmarks") / "repo.sqlite"
    path.write_bytes(tiny_benchmarks.read_bytes())
    with ModelRepository(path) as repository:  # the sentiment pairs are done: only topic's are trained
        run_bench(
            repository,
            [str(tiny_assets / "models")],
            [str(tiny_assets / "datasets")],
            BenchConfig(**TINY_BENCH),
            progress=False,
        )
    _checkpoint_wal(path)
    return path


@pytest.fixture
def benchmarked(tiny_benchmarks: Path, tmp_path: Path) -> Path:
    """A private copy of the benchmarked tiny repository (tests add studies to it)."""
    copy = tmp_path / "benchmarked.sqlite"
    copy.write_bytes(tiny_benchmarks.read_bytes())
    return copy


@pytest.fixture
def offline_unless_local_hub(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Offline mode for a test that uses neither ``hub`` nor ``local_hub``: a stray Hub request fails at once."""
    import datasets
    import huggingface_hub.constants

    if not {"hub", "local_hub"} & set(request.fixturenames):
        monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    datasets.disable_progress_bars()


@pytest.fixture
def filled(tmp_path: Path) -> Path:
    """A repository file with 3 models benchmarked on 3 datasets and a crawl log entry (bad-input tests)."""
    from hfselect.store import ModelRepository, Protocol

    path = tmp_path / "repo.sqlite"
    with ModelRepository(path) as repository:
        scores = {"org/a": (0.9, 0.8, 0.7), "org/b": (0.5, 0.6, 0.4), "org/c": (0.85, 0.75, 0.72)}
        repository.record_results(
            [(model, f"data-{i}", score) for model, row in scores.items() for i, score in enumerate(row)],
            Protocol(epochs=2, learning_rate=1e-3, batch_size=8, seed=0),
        )
        repository.log_crawl("org/a", "a" * 40, "stored")
    return path
