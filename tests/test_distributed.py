"""Bench and select on Ray: the same results as without, killed workers, Ctrl-C, resuming.

One local Ray session (2 CPUs) serves the whole module; hfselect uses a session the process
already holds, so each test pays no start-up.
"""

from __future__ import annotations

import _thread
import os
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from hfselect.api import bench
from hfselect.cli import main
from hfselect.errors import HfSelectError
from hfselect.store import ModelRepository
from hfselect.training.bench import BenchConfig, attempt_pair, plan_jobs, run_bench
from hfselect.training.distributed import (
    RayFineSelection,
    RayResources,
    bench_on_ray,
    import_ray,
    storage_path,
)
from hfselect.training.selection import FineSelection, SelectConfig

CONFIG = BenchConfig(epochs=2, learning_rate=1e-2, batch_size=16, max_length=32)


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    """A local Ray with 2 CPUs for the module (workers inherit the test environment)."""
    ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=2, log_to_driver=False)  # a new Ray, even if one runs
    yield ray
    ray.shutdown()


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Train in this process as a Ray task with one CPU does (bit-identical floating point)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def results_table(path: Path) -> pd.DataFrame:
    """Every result and curve point of a repository, without timings."""
    with ModelRepository(path) as repository:
        results = repository.results(status=None)[["model_id", "dataset", "score", "status"]]
        curves = repository.curves()[["model_id", "dataset", "epoch", "score"]]
    curve_lists = curves.groupby(["model_id", "dataset"])["score"].apply(list).rename("curve").reset_index()
    return results.merge(curve_lists, on=["model_id", "dataset"], how="left").reset_index(drop=True)


def test_bench_through_ray_gives_the_sequential_results_table(
    ray_cluster: Any, tiny_assets: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    models, data = [str(tiny_assets / "models")], [str(tiny_assets / "datasets")]
    with one_torch_thread(), ModelRepository(tmp_path / "sequential.sqlite") as repository:
        run_bench(repository, models, data, CONFIG, progress=False)
    options = ["--epochs", "2", "--learning-rate", "1e-2", "--batch-size", "16", "--max-length", "32"]
    command = ["bench", "--models", *models, "--datasets", *data, *options, "--quiet"]
    assert main([*command, "--repository", str(tmp_path / "ray.sqlite"), "--ray"]) == 0
    printed = capsys.readouterr().out
    sequential, on_ray = results_table(tmp_path / "sequential.sqlite"), results_table(tmp_path / "ray.sqlite")
    assert len(sequential) == 6 and (sequential["status"] == "ok").all()
    pd.testing.assert_frame_equal(sequential, on_ray)
    assert "6 pairs done, 0 already in the repository, 0 failed" in printed
    # Rerunning resumes: every pair is done under this protocol.
    assert main([*command, "--repository", str(tmp_path / "ray.sqlite"), "--ray"]) == 0
    assert "0 pairs done, 6 already in the repository" in capsys.readouterr().out


def test_a_killed_worker_loses_nothing(ray_cluster: Any, tiny_assets: Path, tmp_path: Path) -> None:
    """bert-a's worker dies on its first attempt (retried: done), distil-b's on every one (failed)."""
    marker = tmp_path / "bert-a-was-killed-once"

    def dies_on_some_attempts(model_spec: str, dataset_spec: str, config: BenchConfig) -> Any:
        name = Path(model_spec).name
        if name == "distil-b" or (name == "bert-a" and not marker.exists()):
            marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)  # what the OOM killer or a lost node does
        return attempt_pair(model_spec, dataset_spec, config)

    models = [str(tiny_assets / "models" / name) for name in ("bert-a", "distil-b", "bert-headless")]
    jobs = plan_jobs(models, [str(tiny_assets / "datasets" / "sentiment")])
    with ModelRepository(tmp_path / "repo.sqlite") as repository:
        summary = bench_on_ray(
            repository,
            jobs,
            CONFIG,
            resources=RayResources(max_retries=1),
            progress=False,
            pair_function=dies_on_some_attempts,
        )
        assert marker.exists()
        assert sorted(result.model_id for result in summary.done) == ["bert-a", "bert-headless"]
        [failed] = summary.failed
        assert failed.model_id == "distil-b" and "worker died on all 2 attempts" in failed.error
        stored = repository.results(status=None).set_index("model_id")
        assert stored.loc["bert-a", "status"] == "ok" and len(repository.curves(model_id="bert-a")) == 2
        assert (
            stored.loc["distil-b", "status"] == "failed" and "worker died" in stored.loc["distil-b", "error"]
        )
        # A rerun keeps the finished pairs and trains the failed one again.
        rerun = bench_on_ray(repository, jobs, CONFIG, progress=False)
        assert rerun.skipped == 2 and [result.model_id for result in rerun.done] == ["distil-b"]
        assert (repository.results(status=None)["status"] == "ok").all()


def test_a_node_downloads_a_hub_model_once(
    ray_cluster: Any, local_hub: Any, tiny_assets: Path, tmp_path: Path
) -> None:
    """Two tasks on this node train the same Hub model at once: its weights are fetched once (the Hub cache)."""
    local_hub.add_model("ray-once/bert-a", tiny_assets / "models" / "bert-a")
    for name in ("sentiment", "topic"):
        local_hub.add_dataset(f"ray-once/{name}", tiny_assets / "datasets" / name)
    with ModelRepository(tmp_path / "repo.sqlite") as repository:
        summary = bench(
            ["ray-once/bert-a"],
            ["ray-once/sentiment", "ray-once/topic"],
            repository,
            config=CONFIG,
            progress=False,
            ray_address="local",
        )
    assert len(summary.done) == 2, summary.failed
    assert local_hub.count("GET", r"ray-once/bert-a/resolve/[^/]+/model\.safetensors") == 1


def test_ctrl_c_cancels_the_tasks_and_keeps_every_finished_pair(
    ray_cluster: Any, tiny_assets: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    def distil_b_never_ends(model_spec: str, dataset_spec: str, config: BenchConfig) -> Any:
        if Path(model_spec).name == "distil-b":
            time.sleep(600)
        return attempt_pair(model_spec, dataset_spec, config)

    path = tmp_path / "repo.sqlite"

    def interrupt_after_the_first_result() -> None:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            try:
                with closing(sqlite3.connect(path, timeout=1)) as connection:
                    if connection.execute("SELECT COUNT(*) FROM results").fetchone()[0]:
                        break
            except sqlite3.Error:
                pass  # the bench is writing: look again (an exception here would end the watcher silently)
            time.sleep(0.2)
        _thread.interrupt_main()  # Ctrl-C

    models = [str(tiny_assets / "models" / name) for name in ("bert-a", "distil-b")]
    jobs = plan_jobs(models, [str(tiny_assets / "datasets" / "sentiment")])
    # Ctrl-C as a terminal delivers it. A test run started in the background by a non-interactive
    # shell inherits SIGINT ignored, and then interrupt_main() does nothing and the test would hang.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous))
    with ModelRepository(path) as repository:
        watcher = threading.Thread(target=interrupt_after_the_first_result, daemon=True)
        watcher.start()
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            bench_on_ray(repository, jobs, CONFIG, progress=False, pair_function=distil_b_never_ends)
        assert time.monotonic() - started < 240
        assert list(repository.results(status=None)["model_id"]) == ["bert-a"]

    # The never-ending task was cancelled: both CPUs take new tasks at once.
    def nothing() -> None:
        return None

    task = ray_cluster.remote(nothing).options(num_cpus=1)
    ready, _ = ray_cluster.wait([task.remote() for _ in range(2)], num_returns=2, timeout=60)
    assert len(ready) == 2


def test_select_through_ray_picks_the_same_model_with_the_same_decisions(
    ray_cluster: Any, tiny_assets: Path, benchmarked: Path, tmp_path: Path
) -> None:
    candidates = [str(tiny_assets / "models" / name) for name in ("bert-a", "distil-b", "bert-headless")]
    target = str(tiny_assets / "datasets" / "topic")
    results = {}
    for mode in ("sequential", "ray"):
        config = SelectConfig(
            epochs=3,
            learning_rate=1e-2,
            batch_size=16,
            max_length=32,
            output_dir=str(tmp_path / mode),
            study=f"same-{mode}",
        )
        with ModelRepository(benchmarked) as repository:
            if mode == "sequential":
                with one_torch_thread():
                    results[mode] = FineSelection(repository, target, candidates, config).run()
            else:
                storage = tmp_path / "shared-storage"
                selection = RayFineSelection(repository, target, candidates, config, storage=str(storage))
                assert selection.checkpoint_dir("bert-a") == storage / "same-ray" / "bert-a"
                results[mode] = selection.run()
    sequential, on_ray = results["sequential"], results["ray"]
    assert on_ray.selected_model == sequential.selected_model
    assert on_ray.selected_score == sequential.selected_score
    assert on_ray.test_score == sequential.test_score
    assert on_ray.epochs_spent == sequential.epochs_spent
    assert [(c.model_id, c.curve, c.state, c.reason) for c in on_ray.candidates] == [
        (c.model_id, c.curve, c.state, c.reason) for c in sequential.candidates
    ]
    assert [r["decisions"] for r in on_ray.rounds] == [r["decisions"] for r in sequential.rounds]
    # The winner's checkpoint was written to the storage, and its model saved by the driver.
    assert (tmp_path / "shared-storage" / "same-ray" / on_ray.selected_model).is_dir()
    assert Path(on_ray.saved_to, "config.json").is_file()


def test_select_through_ray_runs_the_sync_schedule_only(tiny_assets: Path, benchmarked: Path) -> None:
    config = SelectConfig(schedule="async")
    with (
        ModelRepository(benchmarked) as repository,
        pytest.raises(HfSelectError, match="drop --schedule async"),
    ):
        RayFineSelection(repository, "target", [str(tiny_assets / "models" / "bert-a")], config)


def test_storage_is_a_folder_or_a_file_uri() -> None:
    assert storage_path("file:///shared/checkpoints") == Path("/shared/checkpoints")
    assert storage_path("/shared/checkpoints") == Path("/shared/checkpoints")
    with pytest.raises(HfSelectError, match="mount the bucket"):
        storage_path("s3://bucket/checkpoints")


def test_without_ray_installed_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` sees when Ray is not installed
    with pytest.raises(HfSelectError, match=r'pip install "hfselect\[ray\]"'):
        import_ray()


def test_bench_ray_without_ray_installed_is_one_line_error(
    tiny_assets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    command = ["bench", "--models", str(tiny_assets / "models" / "bert-a")]
    command += ["--datasets", str(tiny_assets / "datasets" / "topic"), "--quiet", "--ray"]
    assert main([*command, "--repository", str(tmp_path / "repo.sqlite")]) == 1
    assert capsys.readouterr().err.strip() == (
        'hfselect: error: --ray needs Ray, which is not installed: pip install "hfselect[ray]"'
    )
