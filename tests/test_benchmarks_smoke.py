"""Smoke tests of the benchmark scripts in ``benchmarks/``: tiny configurations, valid JSON out."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str) -> ModuleType:
    # benchmarks/ is a folder of scripts, not a package: load the file itself, with its folder on
    # the path as when it is run (for benchmarks/_shared.py).
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_paper_matrices_reduced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paper_matrices = _load("paper_matrices")
    if not (paper_matrices.DEFAULT_ANCHORS / "nlp_matrix.tsv").is_file():
        pytest.skip("the paper's released matrices (shared/anchors/two-phase-selection) are not here")
    out = tmp_path / "paper.json"
    code = paper_matrices.main(
        ["--sigmas", "0,0.05", "--seeds", "2", "--ks", "3,15", "--random-draws", "50", "--json", str(out)]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "leave-one-dataset-out" in printed and "recall:representatives" in printed
    report = json.loads(out.read_text())
    assert report["benchmark"] == "paper_matrices" and set(report["matrices"]) == {"nlp", "cv"}
    nlp = report["matrices"]["nlp"]
    assert (nlp["n_models"], nlp["n_datasets"]) == (39, 21)
    paper_cut, silhouette_cut = nlp["clustering"]
    assert paper_cut["threshold"] == 0.09 and silhouette_cut["threshold"] == "silhouette"
    assert paper_cut["proxies_representatives"] == paper_cut["multi_model_clusters"]
    loo = nlp["leave_one_out"]
    assert {row["method"] for row in loo["summary"]} == set(paper_matrices.METHODS)
    assert {row["k"] for row in loo["summary"]} == {3, 15}
    assert all(0.0 <= row["hit_rate"] <= 1.0 and row["mean_regret"] >= 0.0 for row in loo["summary"])
    for row in loo["summary"]:  # every mean comes with its bootstrap interval
        low, high = row["hit_rate_interval"]
        assert 0.0 <= low <= row["hit_rate"] <= high <= 1.0
        assert row["regret_interval"][0] <= row["mean_regret"] <= row["regret_interval"][1]
    # With the exact proxy (sigma 0), ranking by the proxy alone always finds the best model.
    exact = [r for r in loo["summary"] if r["sigma"] == 0 and r["method"] == "proxy-only"]
    assert exact and all(r["hit_rate"] == 1.0 for r in exact)
    assert (
        loo["proxies_needed"]["recall:representatives"]["mean"] < loo["proxies_needed"]["recall:all"]["mean"]
    )
    assert len(loo["per_target"]) == 21
    assert report["matrices"]["cv"]["leave_one_out"]["k_largest"] == 4  # 5 datasets left: k lowered


def test_paper_matrices_skips_without_anchors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paper_matrices = _load("paper_matrices")
    out = tmp_path / "skipped.json"
    assert paper_matrices.main(["--anchors", str(tmp_path / "absent"), "--json", str(out)]) == 0
    assert "skipped: anchors not found" in capsys.readouterr().out
    assert json.loads(out.read_text())["skipped"] == "anchors not found"


def test_stages_tiny(tmp_path: Path) -> None:
    out = tmp_path / "stages.json"
    # A subprocess: the script points the Hugging Face caches at its own scratch folder before it
    # imports the libraries, which an import into this (already configured) process cannot do.
    command = [
        sys.executable,
        str(BENCHMARKS / "stages.py"),
        "--crawl-models", "30", "--crawl-changed", "0.1",
        "--sample", "32", "--repeats", "1", "--max-models", "1",
        "--train-size", "32", "--eval-size", "16", "--epochs", "1",
        "--json", str(out),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "(a) proxy scoring" in done.stdout and "(b) crawler" in done.stdout and "(c)" in done.stdout
    report = json.loads(out.read_text())
    assert report["machine"]["cpu_count"] >= 1 and "load_average" in report["machine"]

    proxy = report["proxy"]
    assert {row["dataset"] for row in proxy} == {"short (5 words)", "long (8-48 words)"}
    for row in proxy:
        assert row["batched_examples_per_s"] > 0 and row["one_at_a_time_examples_per_s"] > 0
        assert row["max_feature_difference"] < 1e-4  # both paths compute the same outputs

    runs = {run["crawl"].split()[0]: run for run in report["crawl"]["runs"]}
    assert runs["cold"]["new"] == 30 and runs["cold"]["failed"] == {}
    assert runs["warm"]["unchanged"] == 30 and runs["warm"]["http_requests"] < runs["cold"]["http_requests"]
    assert runs["incremental"]["updated"] == report["crawl"]["changed"] == 3

    callback = report["callback"]
    assert callback["evaluations"] == len(callback["overhead_s"]) >= 1
    assert callback["overhead_mean_s"] >= 0 and callback["eval_mean_s"] > 0
    assert set(callback["decisions"]) == {"continue"}


def test_selection_replay_tiny(tiny_assets: Path, tiny_zoo_benchmarks: Path, tmp_path: Path) -> None:
    # The same zoo twice: two runs to aggregate, with no training beyond the shared fixture's.
    first, second = tmp_path / "zoo-a.sqlite", tmp_path / "zoo-b.sqlite"
    for repository in (first, second):
        repository.write_bytes(tiny_zoo_benchmarks.read_bytes())
    out = tmp_path / "replay.json"
    replay = _load("selection_replay")
    common = ["--sample-size", "32", "--bootstrap", "200"]
    argv = ["--repository", str(first), str(second), "--zoo", str(tiny_assets), str(tiny_assets), *common]
    assert replay.main([*argv, "--candidates", "2", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["zoo"] == {"models": 3, "datasets": 2, "epochs": 3}
    assert [run["training_seed"] for run in report["runs"]] == [0, 0]
    # The same zoo: the same choices (the costs hold each run's own measured proxy times).
    choices = [
        {
            (target, method): row["selected"]
            for target, rows in run["per_target"].items()
            for method, row in rows.items()
        }
        for run in report["runs"]
    ]
    assert choices[0] == choices[1]
    summary = report["summary"]
    assert {"brute_force", "proxy_top1", "successive_halving", "two_phase_paper", "hfselect"} <= set(summary)
    assert summary["brute_force"]["cost_epochs"] == 9  # 3 models x 3 epochs
    assert "mean_rerun_regret" not in summary["hfselect"]  # one training seed: nothing to rerun on
    for method, row in summary.items():
        assert row["cost_epochs"] > 0 and 0 <= row["mean_regret"] <= row["max_regret"] <= 1
        low, high = row["regret_interval"]
        assert low <= row["mean_regret"] <= high
        assert row["mean_regret"] <= row["worst_run_mean_regret"] <= row["max_regret"]
        assert len(row["per_run_mean_regret"]) == 2
        if method != "hfselect":
            assert row["regret_vs_hfselect"] in {"lower", "higher", "tie"}
    for run in report["runs"]:
        assert run["protocol"]["seed"] == run["training_seed"] and run["protocol"]["epochs"] == 3
        for rows in run["per_target"].values():
            ours = rows["hfselect"]
            assert len(ours["candidates"]) == 2 and ours["selected"] in ours["candidates"]
            assert ours["finetune_epochs"] <= ours["candidates_brute_force_epochs"] == 6
            assert ours["cost"] > ours["finetune_epochs"]  # the proxies are counted too
    record = report["provenance"]
    assert record["training_seeds"] == [0] and "selection_replay" in record["command"]
    assert record["packages"]["torch"] and record["torch_threads"] >= 1 and "source_revision" in record
    # The proxies are cached: a second run computes none. --seeds picks the runs.
    cache = first.with_suffix(".proxies.json")
    before = cache.read_text()
    single = ["--repository", str(first), "--zoo", str(tiny_assets), *common]
    assert replay.main([*single, "--seeds", "0", "--json", str(out)]) == 0 and cache.read_text() == before
    assert [run["training_seed"] for run in json.loads(out.read_text())["runs"]] == [0]
    with pytest.raises(SystemExit):  # no results with training seed 1
        replay.main([*single, "--seeds", "1"])


def test_ray_bench_tiny(tiny_assets: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("ray")
    out = tmp_path / "ray_bench.json"
    arguments = [
        "--zoo",
        str(tiny_assets),
        "--models",
        "1",
        "--epochs",
        "1",
        "--workers",
        "1",
        "--rounds",
        "1",
    ]
    assert _load("ray_bench").main([*arguments, "--json", str(out)]) == 0
    assert "overhead per pair" in capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["pairs"] == 2 and [run["setting"] for run in report["runs"]] == [
        "sequential",
        "ray, 1 worker(s)",
    ]
    assert report["runs"][1]["same_results_as_sequential"] is True
    assert all(run["failed"] == 0 and run["wall_s"] > 0 for run in report["runs"])
    assert set(report["speedup"]) == {"sequential", "ray, 1 worker(s)"}


def test_selection_replay_rerun_scores() -> None:
    # A pick is scored on the other training seeds' runs of the same protocol, averaged; results of
    # another protocol (here another learning rate) never count, and a missing cell means no rerun.
    replay = _load("selection_replay")
    rows = []
    for seed, lr, a, b in [
        (0, 1e-3, 0.9, 0.5),
        (1, 1e-3, 0.4, 0.8),
        (2, 1e-3, 0.6, 0.6),
        (1, 5e-3, 0.0, 0.0),
    ]:
        for model, score in (("a", a), ("b", b)):
            rows.append(
                {"model_id": model, "dataset": "t", "score": score, "seed": seed, "learning_rate": lr}
                | {"epochs": 5, "batch_size": 32, "train_samples": None, "eval_samples": None}
                | {"max_length": 32, "metric": "accuracy"}
            )
    results = pd.DataFrame(rows)
    own = results[(results["seed"] == 0) & (results["learning_rate"] == 1e-3)]
    test = own.pivot(index="model_id", columns="dataset", values="score")
    rerun = replay.rerun_scores(results, own.iloc[0], test)
    assert rerun is not None
    assert rerun.loc["a", "t"] == pytest.approx(0.5) and rerun.loc["b", "t"] == pytest.approx(0.7)
    # Seed 0 picks a (0.9 against 0.5); on a rerun b is better by 0.2.
    assert replay.rerun_scores(results[results["seed"] == 0], own.iloc[0], test) is None
    missing = results[~((results["model_id"] == "b") & (results["seed"] != 0))]
    assert replay.rerun_scores(missing, own.iloc[0], test) is None


def test_real_text_recall_rules_leave_one_dataset_out() -> None:
    # Three datasets, three models: "big" is best everywhere, and the proxy says so on every target
    # but "c", where it ranks "small" first. Every rule is reported at each K; K = 3 always hits.
    real_text = _load("real_text")
    test = {d: {"big": 0.9, "mid": 0.6, "small": 0.3} for d in ("a", "b", "c")}
    proxies = {}
    for target in test:
        order = (
            {"big": -1.0, "mid": -2.0, "small": -3.0}
            if target != "c"
            else {"big": -2.0, "mid": -3.0, "small": -1.0}
        )
        for model, value in order.items():
            proxies[f"{model}|{target}"] = {"scores": dict.fromkeys(real_text.RULE_PROXIES, value)}
    rules = real_text.recall_rules(proxies, test, ks=(1, 3))
    assert set(rules) == {f"{p}, {s}" for p in real_text.RULE_PROXIES for s in real_text.SCOPES}
    every = rules["logme, every"]
    assert every["hit@1"] == pytest.approx(2 / 3) and every["regret@1"] == pytest.approx(0.6 / 3)
    assert all(row["hit@3"] == 1.0 and row["regret@3"] == 0.0 for row in rules.values())
