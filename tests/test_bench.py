"""The benchmark harness: results and learning curves, sharding, resuming, failures, Hub ids."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import datasets
import pandas as pd
import pytest

import hfselect.training.bench as bench
from hfselect.errors import HfSelectError
from hfselect.store import ModelRepository
from hfselect.training.bench import BenchConfig, plan_jobs, run_bench
from hfselect.training.metrics import metric_function

CONFIG = BenchConfig(epochs=2, learning_rate=1e-2, batch_size=16, max_length=32)
CLI_OPTIONS = [
    "--epochs",
    "2",
    "--learning-rate",
    "1e-2",
    "--batch-size",
    "16",
    "--max-length",
    "32",
    "--quiet",
]


def test_plan_jobs_shards_partition_the_sorted_job_list() -> None:
    models, data = ["m2", "m1", "m3"], ["d2", "d1"]
    shards = [plan_jobs(models, data, (index, 3)) for index in range(3)]
    everything = sorted(job for shard in shards for job in shard)
    assert everything == plan_jobs(models, data)
    assert len(everything) == len(set(everything)) == 6
    with pytest.raises(HfSelectError, match="not valid"):
        plan_jobs(models, data, (3, 3))


def test_two_shard_workers_fill_one_repository_exactly_once(tiny_assets: Path, tmp_path: Path) -> None:
    repository_path = tmp_path / "repo.sqlite"
    command = [sys.executable, "-m", "hfselect", "bench", "--models", str(tiny_assets / "models")]
    command += [
        "--datasets",
        str(tiny_assets / "datasets"),
        "--repository",
        str(repository_path),
        *CLI_OPTIONS,
    ]
    workers = [
        subprocess.Popen(
            [*command, "--shard", f"{index}/2"], env=os.environ.copy(), stdout=subprocess.PIPE, text=True
        )
        for index in range(2)
    ]
    outputs = [worker.communicate(timeout=300)[0] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], outputs

    subprocess.run(
        [
            sys.executable,
            "-m",
            "hfselect",
            "repo",
            "export",
            str(tmp_path / "export"),
            "--repository",
            str(repository_path),
        ],
        check=True,
        capture_output=True,
    )
    results = pd.read_parquet(tmp_path / "export" / "results.parquet")
    curves = pd.read_parquet(tmp_path / "export" / "curves.parquet")
    pairs = {
        (model, dataset)
        for model in ("bert-a", "distil-b", "bert-headless")
        for dataset in ("sentiment", "topic")
    }
    assert len(results) == 6 and set(zip(results.model_id, results.dataset, strict=True)) == pairs
    assert (results.status == "ok").all() and results.score.between(0, 1).all()
    assert (results.epochs == 2).all() and (results.learning_rate == 1e-2).all()
    assert len(curves) == 12
    assert sorted(curves.groupby(["model_id", "dataset"]).epoch.apply(list).tolist()) == [[1, 2]] * 6

    with ModelRepository(repository_path) as repository:
        dataset = {row["name"]: row for row in repository.datasets()}["topic"]
        assert dataset["num_labels"] == 3 and dataset["label_names"] == ["topic_0", "topic_1", "topic_2"]
        model = repository.get_model("bert-a")
        assert model["architecture"] == "BertForSequenceClassification" and model["source"] == "local"
        assert model["sha"] and model["num_parameters"] > 0
        assert model["location"] == str((tiny_assets / "models" / "bert-a").resolve())


def test_rerun_redoes_no_finished_pair(
    tiny_assets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trained: list[tuple[str, str]] = []
    real = bench.finetune_pair

    def interrupted_after_two(model_spec: str, dataset_spec: str, config: BenchConfig, **kwargs):
        if len(trained) == 2:
            raise KeyboardInterrupt  # what a kill does between two pairs
        trained.append((Path(model_spec).name, Path(dataset_spec).name))
        return real(model_spec, dataset_spec, config, **kwargs)

    monkeypatch.setattr(bench, "finetune_pair", interrupted_after_two)
    models, data = [str(tiny_assets / "models")], [str(tiny_assets / "datasets")]
    with ModelRepository(tmp_path / "repo.sqlite") as repository:
        with pytest.raises(KeyboardInterrupt):
            run_bench(repository, models, data, CONFIG, progress=False)
        assert repository.counts()["results"] == 2
        first = list(trained)
        trained.clear()
        monkeypatch.setattr(bench, "finetune_pair", real)
        summary = run_bench(repository, models, data, CONFIG, progress=False)
        assert summary.skipped == 2 and len(summary.done) == 4
        assert not {(r.model_id, r.dataset) for r in summary.done} & set(first)
        assert repository.counts()["results"] == 6


def test_bad_model_and_dataset_fail_with_one_line_and_the_run_goes_on(
    tiny_assets: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "models" / "broken"
    broken.mkdir(parents=True)
    (broken / "config.json").write_text("{not json")
    unlabeled = tmp_path / "datasets" / "unlabeled"
    unlabeled.mkdir(parents=True)
    datasets.Dataset.from_dict({"text": ["a b", "c d"] * 20}).to_parquet(unlabeled / "train.parquet")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "hfselect",
            "bench",
            "--models",
            str(broken),
            str(tiny_assets / "models" / "bert-a"),
            "--datasets",
            str(unlabeled),
            str(tiny_assets / "datasets" / "sentiment"),
            "--repository",
            str(tmp_path / "repo.sqlite"),
            *CLI_OPTIONS,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    failures = [line for line in result.stdout.splitlines() if line.startswith("failed: ")]
    assert len(failures) == 3  # broken x 2 datasets, bert-a x unlabeled
    assert all(len(line) < 300 for line in failures)
    assert any("broken on sentiment" in line and "config" in line.lower() for line in failures)
    assert any("bert-a on unlabeled" in line and "label" in line for line in failures)
    with ModelRepository(tmp_path / "repo.sqlite") as repository:
        ok = repository.results()
        assert list(zip(ok.model_id, ok.dataset, strict=True)) == [("bert-a", "sentiment")]
        failed = repository.results(status="failed")
        assert len(failed) == 3 and failed.error.str.len().gt(0).all()
        # The failed local model is stored with its folder: recall loads it from there, not the Hub.
        assert repository.get_model("broken")["location"] == str(broken.resolve())
        assert repository.model_location("broken") == str(broken.resolve())


def test_unknown_metric_is_refused_before_training(tiny_assets: Path, tmp_path: Path) -> None:
    # With the opt-in for Hub metric code (without it the config is refused at once): the metric
    # cannot be fetched, and that is said before any pair is trained.
    config = BenchConfig(epochs=1, metric="no-such-metric-anywhere", allow_hub_metric_code=True)
    with (
        ModelRepository(tmp_path / "repo.sqlite") as repository,
        pytest.raises(HfSelectError, match="cannot load metric"),
    ):
        run_bench(
            repository,
            [str(tiny_assets / "models" / "bert-a")],
            [str(tiny_assets / "datasets" / "topic")],
            config,
        )


def test_builtin_metrics() -> None:
    import numpy as np

    predictions, references = np.array([0, 1, 1, 0]), np.array([0, 1, 0, 0])
    assert metric_function("accuracy")(predictions, references) == pytest.approx(0.75)
    assert metric_function("f1")(predictions, references) == pytest.approx(0.7333333)
    assert metric_function("mcc")(predictions, references) == pytest.approx(0.5773503)


def test_hub_ids_give_the_same_results_as_local_folders(tiny_assets: Path, tmp_path: Path, hub) -> None:
    from huggingface_hub import HfApi

    api = HfApi(token="hf_test_token")
    for kind, name in (("models", "bert-a"), ("datasets", "topic")):
        repo_type = "model" if kind == "models" else "dataset"
        api.create_repo(f"zoo/{name}", repo_type=repo_type, exist_ok=True)
        api.upload_folder(folder_path=tiny_assets / kind / name, repo_id=f"zoo/{name}", repo_type=repo_type)
    with (
        ModelRepository(tmp_path / "local.sqlite") as local,
        ModelRepository(tmp_path / "hub.sqlite") as remote,
    ):
        run_bench(
            local,
            [str(tiny_assets / "models" / "bert-a")],
            [str(tiny_assets / "datasets" / "topic")],
            CONFIG,
            progress=False,
        )
        run_bench(remote, ["zoo/bert-a"], ["zoo/topic"], CONFIG, progress=False)
        local_results, hub_results = local.results(), remote.results()
        assert list(hub_results.model_id) == ["zoo/bert-a"] and list(hub_results.dataset) == ["zoo/topic"]
        assert hub_results.score.tolist() == pytest.approx(local_results.score.tolist(), abs=1e-9)
        assert remote.curves().score.tolist() == pytest.approx(local.curves().score.tolist(), abs=1e-9)
        assert remote.get_model("zoo/bert-a")["sha"] == hub.repo_sha("zoo/bert-a")


def _fake_finetune(trained: list[tuple[str, str]], delay_s: float = 0.0):
    """A fast stand-in for finetune_pair that logs which pairs it 'trained'."""
    import time

    def finetune(model_spec: str, dataset_spec: str, config: BenchConfig, **kwargs) -> bench.PairResult:
        trained.append((model_spec, dataset_spec))
        time.sleep(delay_s)
        return bench.PairResult(model_spec, dataset_spec, 0.5, [0.4, 0.5], delay_s)

    return finetune


MODELS, DATASETS = ["org/m1", "org/m2", "org/m3"], ["org/d1", "org/d2"]


def test_two_workers_without_shards_never_train_a_pair_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    trained: list[tuple[str, str]] = []
    monkeypatch.setattr(bench, "finetune_pair", _fake_finetune(trained, delay_s=0.05))
    # transformers' lazy imports are not thread-safe: import what each worker needs up front.
    from transformers import TrainerCallback  # noqa: F401

    path = tmp_path / "repo.sqlite"
    ModelRepository(path).close()
    summaries = []

    def worker() -> None:
        with ModelRepository(path) as repository:
            summaries.append(run_bench(repository, MODELS, DATASETS, CONFIG, progress=False))

    workers = [threading.Thread(target=worker) for _ in range(2)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    assert sorted(trained) == sorted((m, d) for m in MODELS for d in DATASETS)
    assert sum(len(s.done) for s in summaries) == 6
    assert all(len(s.done) + s.skipped + s.claimed_elsewhere == 6 for s in summaries)
    with ModelRepository(path) as repository:
        assert repository.counts()["results"] == 6 and repository.claims() == []


def test_a_live_claim_is_passed_over_and_an_expired_one_taken_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    trained: list[tuple[str, str]] = []
    monkeypatch.setattr(bench, "finetune_pair", _fake_finetune(trained))
    protocol = CONFIG.protocol
    with ModelRepository(tmp_path / "repo.sqlite") as repository:
        repository.claim_pair("org/m1", "org/d1", protocol, "alive", ttl_s=3600)
        repository.claim_pair("org/m1", "org/d2", protocol, "crashed", ttl_s=60, now=time.time() - 120)
        summary = run_bench(repository, ["org/m1"], DATASETS, CONFIG, progress=False)
        assert trained == [("org/m1", "org/d2")]
        assert summary.claimed_elsewhere == 1 and len(summary.done) == 1
        assert [claim["owner"] for claim in repository.claims()] == ["alive"]


@pytest.mark.parametrize(
    ("workers", "cores", "environ", "expected"),
    [
        (1, 16, {}, None),  # one worker: torch's default
        (2, 16, {}, 8),
        (4, 2, {}, 1),  # never below one thread
        (2, 16, {"OMP_NUM_THREADS": "3"}, None),  # the user's setting wins
    ],
)
def test_threads_per_worker_share_the_cores(workers: int, cores: int, environ: dict, expected) -> None:
    assert bench.threads_per_worker(workers, cores=cores, environ=environ) == expected


def test_a_missing_model_folder_is_named_before_any_training(tmp_path: Path) -> None:
    from hfselect.errors import ModelLoadError

    with ModelRepository(tmp_path / "repo.sqlite") as repository, pytest.raises(ModelLoadError) as error:
        run_bench(repository, [str(tmp_path / "no" / "such")], DATASETS, CONFIG, progress=False)
    assert str(error.value) == f"model {tmp_path}/no/such: the local folder {tmp_path}/no/such does not exist"


def _wait_for_claim(path: Path, timeout_s: float = 120.0) -> list[dict]:
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists():
            with ModelRepository(path, create=False) as repository:
                if claims := repository.claims():
                    return claims
        time.sleep(0.2)
    raise AssertionError("the worker never claimed a pair")


def test_after_a_sigkill_the_rerun_says_when_the_claim_expires_and_reclaim_takes_it_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import signal

    from hfselect.cli import main

    path = tmp_path / "repo.sqlite"
    argv = ["bench", "--models", "org/m1", "--datasets", "org/d1", *CLI_OPTIONS, "--repository", str(path)]
    # A worker that is killed (SIGKILL: no cleanup at all) while it trains its pair.
    script = (
        "import sys, time, hfselect.training.bench as bench\n"
        "bench.finetune_pair = lambda *args, **kwargs: time.sleep(3600)\n"
        "from hfselect.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    worker = subprocess.Popen([sys.executable, "-c", script, *argv], env=os.environ.copy())
    try:
        [claim] = _wait_for_claim(path)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=60)
    assert worker.returncode == -signal.SIGKILL

    trained: list[tuple[str, str]] = []
    monkeypatch.setattr(bench, "finetune_pair", _fake_finetune(trained))
    status = main(argv)  # an immediate rerun: the dead worker's claim still holds
    out = capsys.readouterr().out
    assert status == 0 and trained == []
    assert "1 being trained by another worker" in out
    assert f"held: org/m1 on org/d1 is claimed by worker {claim['owner']} until " in out
    # The claim lasts 10 minutes from the dead worker's last renewal; a slow machine may start the
    # rerun a minute later.
    assert re.search(
        r"\(in (9|10) min; a live worker renews it\); if that worker is dead, rerun with --reclaim", out
    )

    assert main([*argv, "--reclaim"]) == 0 and trained == [("org/m1", "org/d1")]
    assert "1 pairs done" in capsys.readouterr().out
    with ModelRepository(path) as repository:
        assert repository.claims() == [] and len(repository.results()) == 1


def test_held_claim_line_says_when_the_claim_expires() -> None:
    from hfselect.cli.bench import held_claim_line

    claim = {"model_id": "m", "dataset": "d", "owner": "host:1:abc", "expires_at": 1_800_000_000.0}
    line = held_claim_line(claim, now=1_800_000_000.0 - 590)
    assert line.startswith(
        "held: m on d is claimed by worker host:1:abc until 2027-01-15 08:00:00 UTC (in 10 min;"
    )
    assert line.endswith("if that worker is dead, rerun with --reclaim to train it now")
