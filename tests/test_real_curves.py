"""benchmarks/real_curves.py: selection replayed on learning curves in Quick-Tune's layout."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.test_benchmarks_smoke import _load

QUICKTUNE = Path(__file__).resolve().parents[2] / "shared" / "anchors" / "quicktune"
ISSUE_METHODS = {"brute_force", "successive_halving", "two_phase_paper", "hfselect"}
BUDGET = 12


def _write_quicktune_layout(folder: Path) -> dict[str, dict[str, str]]:
    """A tiny meta-dataset: 4 datasets, 6 models with 2 configs per pair, 1 model never complete.

    Returns dataset -> model -> the config id the benchmark must use (the first full-length one).
    """
    rng = np.random.default_rng(0)
    datasets, models = [f"D{i}" for i in range(4)], [f"net{i}" for i in range(7)]
    perf: dict[str, dict[str, list[float]]] = {"info": {"metric": "Top1 Accuracy in %"}}  # type: ignore[dict-item]
    cost: dict[str, dict[str, list[float]]] = {"info": {}}  # type: ignore[dict-item]
    rows, runs = [], {}
    config = 1000
    for dataset in datasets:
        perf[dataset], cost[dataset], runs[dataset] = {}, {}, {}
        for index, model in enumerate(models):
            for draw in range(2):
                config += 1
                final = 20 + 10 * index + rng.uniform(-15, 15)  # later models are better, noisily
                pace = rng.uniform(1, 6)
                length = BUDGET
                if model == "net6" or (model == "net5" and draw == 0):
                    length = 5  # stopped early: net6 is never a candidate, net5 uses its second draw
                curve = [final * (1 - math.exp(-(epoch + 1) / pace)) for epoch in range(length)]
                perf[dataset][str(config)] = curve
                cost[dataset][str(config)] = [10.0 * (index + 1) + rng.uniform(0, 1) for _ in range(length)]
                rows.append(
                    [str(config), *(1 if m == model else 0 for m in models), 10 ** -rng.uniform(2, 5)]
                )
                if length == BUDGET and model not in runs[dataset]:
                    runs[dataset][model] = str(config)
    (folder / "curves").mkdir(parents=True)
    (folder / "curves" / "perf.json").write_text(json.dumps(perf))
    (folder / "curves" / "cost.json").write_text(json.dumps(cost))
    header = ["", *(f"cat:model:{model}" for model in models), "lr"]
    (folder / "table.csv").write_text("\n".join(",".join(map(str, row)) for row in [header, *rows]) + "\n")
    return runs


def _check_schema(report: dict, targets: list[str]) -> None:
    assert list(report["targets"]) == targets
    for rows in report["targets"].values():
        assert set(rows) >= ISSUE_METHODS
        for row in rows.values():
            assert set(row) == {"selected", "cost_seconds", "normalized_regret"}
            assert row["cost_seconds"] > 0 and 0.0 <= row["normalized_regret"] <= 1.0
        assert rows["brute_force"]["normalized_regret"] == 0.0
        assert rows["successive_halving"]["cost_seconds"] < rows["brute_force"]["cost_seconds"]
    for row in report["summary"].values():
        assert set(row) == {"cost_seconds", "mean_normalized_regret"}
    assert set(report["diagnosis"]["per_target"]) == set(targets)
    assert set(report["uncertainty"]) == set(report["summary"])
    for method, row in report["uncertainty"].items():
        interval = row["mean_normalized_regret"]
        assert interval["low"] <= report["summary"][method]["mean_normalized_regret"] <= interval["high"]
        assert row["vs_successive_halving"] in {"lower", "higher", "tie"}
        assert 0.0 <= row["goal_share"] <= 1.0
    assert report["uncertainty"]["successive_halving"]["vs_successive_halving"] == "tie"
    # Successive halving never costs 0.75x of itself, brute force never costs less than it.
    assert report["uncertainty"]["successive_halving"]["goal_share"] == 0.0
    assert report["uncertainty"]["brute_force"]["goal_share"] == 0.0
    assert report["diagnosis"]["mean"]["successive_halving_winner_seconds"] > 0
    assert set(report["trend_mae"]) >= {"headroom", "kmeans", "current"}
    for errors in report["trend_mae"].values():
        assert set(errors) == {"1", "3", "5", "10"} and all(0 <= value <= 1 for value in errors.values())


def test_goal_share_counts_the_replicates_meeting_both_halves_of_the_goal() -> None:
    """Regret at most successive halving's and cost at most 0.75x its, on the same replicates."""
    report = _load("real_curves_report")

    def row(regret: float, cost: float) -> dict[str, float | str]:
        return {"selected": "m", "normalized_regret": regret, "cost_seconds": cost}

    per_target = {
        f"T{i}": {
            "successive_halving": row(0.1 * (i % 2), 100.0),
            "cheaper_and_as_good": row(0.1 * (i % 2), 50.0),
            "cheaper_but_worse": row(0.1 * (i % 2) + 0.05, 50.0),
            "as_good_but_costly": row(0.0, 90.0),
            "worse_on_one_target": row(0.1 * (i % 2) + (0.5 if i == 0 else 0.0), 50.0),
        }
        for i in range(6)
    }
    shares = {method: row["goal_share"] for method, row in report.uncertainty(per_target).items()}
    assert shares["cheaper_and_as_good"] == 1.0
    assert shares["cheaper_but_worse"] == 0.0 and shares["as_good_but_costly"] == 0.0
    # Only the replicates that leave T0 out meet it: (5/6)^6 of them, about a third.
    assert 0.25 < shares["worse_on_one_target"] < 0.42


def test_real_curves_on_a_tiny_synthetic_layout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = _write_quicktune_layout(tmp_path / "data")
    perf = json.loads((tmp_path / "data" / "curves" / "perf.json").read_text())
    seconds = json.loads((tmp_path / "data" / "curves" / "cost.json").read_text())
    out = tmp_path / "report.json"
    real_curves = _load("real_curves")
    assert real_curves.main(["--data", str(tmp_path / "data"), "--json", str(out)]) == 0
    assert "successive_halving" in capsys.readouterr().out
    report = json.loads(out.read_text())
    _check_schema(report, ["D0", "D1", "D2", "D3"])
    for dataset, rows in report["targets"].items():
        # The protocol: each model's first full-length config; brute force trains them all.
        finals = {model: perf[dataset][config][-1] for model, config in runs[dataset].items()}
        assert rows["brute_force"]["selected"] == max(finals, key=finals.get)
        assert rows["brute_force"]["cost_seconds"] == pytest.approx(
            sum(sum(seconds[dataset][config]) for config in runs[dataset].values())
        )
        assert all(row["selected"] != "net6" for row in rows.values())  # never a full-length run
        winner = rows["hfselect"]["selected"]
        assert rows["hfselect"]["cost_seconds"] >= sum(seconds[dataset][runs[dataset][winner]])

    # Recall quality: every scope with every proxy stand-in; a larger K never does worse.
    rules = report["recall"]["mean"]
    for stand_in in real_curves.RECALL_PROXIES:
        for scope in real_curves.SCOPES:
            row = rules[f"{stand_in}, {scope}"]
            regrets = [row[f"top{k}_regret"] for k in real_curves.RECALL_KS]
            assert regrets == sorted(regrets, reverse=True) and all(0 <= r <= 1 for r in regrets)
            assert all(0 <= row[f"top{k}_hit"] <= 1 for k in real_curves.RECALL_KS)

    assert real_curves.main(["--data", str(tmp_path / "data"), "--targets", "D2", "--json", str(out)]) == 0
    assert list(json.loads(out.read_text())["targets"]) == ["D2"]


def test_real_curves_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    real_curves = _load("real_curves")
    assert real_curves.main(["--data", str(tmp_path / "absent")]) == 2
    printed = capsys.readouterr().err
    assert printed.startswith("error: ") and "perf.json is missing" in printed and printed.count("\n") == 1
    _write_quicktune_layout(tmp_path / "data")
    assert real_curves.main(["--data", str(tmp_path / "data"), "--targets", "NOPE"]) == 2
    assert "unknown target(s) NOPE" in capsys.readouterr().err


def test_diverged_and_untimed_epochs_end_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A NaN score (a diverged run) or a missing epoch time ends the run there; the JSON stays valid."""
    runs = _write_quicktune_layout(tmp_path / "data")
    perf_path, cost_path = (tmp_path / "data" / "curves" / name for name in ("perf.json", "cost.json"))
    perf, cost = json.loads(perf_path.read_text()), json.loads(cost_path.read_text())
    diverged, untimed = runs["D0"]["net4"], runs["D1"]["net3"]
    perf["D0"][diverged][7] = float("nan")
    cost["D1"][untimed] = cost["D1"][untimed][:-1]
    perf_path.write_text(json.dumps(perf))  # json writes NaN as the bare token, as Python reads it
    cost_path.write_text(json.dumps(cost))
    real_curves = _load("real_curves")

    data = real_curves.load_curves(tmp_path / "data")
    assert data.truncated == 2
    assert data.scores["D0"][diverged] == pytest.approx([v / 100 for v in perf["D0"][diverged][:7]])
    assert len(data.scores["D1"][untimed]) == len(data.seconds["D1"][untimed]) == BUDGET - 1
    # Each model falls back on its next full-length config, if it has one, as with a short run.
    assert data.runs("D0")["net4"] != diverged and data.runs("D1")["net3"] != untimed

    out = tmp_path / "report.json"
    assert real_curves.main(["--data", str(tmp_path / "data"), "--json", str(out)]) == 0

    def no_nan(token: str) -> float:
        raise AssertionError(f"{token} in the JSON")

    report = json.loads(out.read_text(), parse_constant=no_nan)
    _check_schema(report, ["D0", "D1", "D2", "D3"])
    assert report["data"]["truncated_runs"] == 2 and report["data"]["skipped_targets"] == []
    assert "2 runs cut at a non-finite score or their last timed epoch" in capsys.readouterr().out


def test_a_target_whose_finals_are_all_equal_has_no_spearman(tmp_path: Path) -> None:
    _write_quicktune_layout(tmp_path / "data")
    perf_path = tmp_path / "data" / "curves" / "perf.json"
    perf = json.loads(perf_path.read_text())
    perf["D2"] = {config: [50.0] * len(curve) for config, curve in perf["D2"].items()}
    perf_path.write_text(json.dumps(perf))
    real_curves = _load("real_curves")
    target = real_curves.make_target(real_curves.load_curves(tmp_path / "data"), "D2")
    quality = real_curves.recall_quality(target)
    assert all(row["spearman"] is None and row["top1_regret"] == 0.0 for row in quality.values())


@pytest.mark.skipif(
    not QUICKTUNE.is_dir(), reason="the Quick-Tune curves (shared/anchors/quicktune) are not here"
)
def test_real_curves_on_two_quicktune_targets(tmp_path: Path) -> None:
    perf = json.loads((QUICKTUNE / "curves" / "perf.json").read_text())
    # The two datasets with the fewest runs: the quickest to replay.
    targets = sorted((name for name in perf if name != "info"), key=lambda name: len(perf[name]))[:2]
    out = tmp_path / "report.json"
    real_curves = _load("real_curves")
    assert (
        real_curves.main(["--data", str(QUICKTUNE), "--targets", ",".join(targets), "--json", str(out)]) == 0
    )
    report = json.loads(out.read_text())
    _check_schema(report, targets)
    assert report["data"]["budget_epochs"] == 50


def test_diagnosis_splits_regret_and_cost_exactly(tmp_path: Path) -> None:
    _write_quicktune_layout(tmp_path / "data")
    real_curves = _load("real_curves")
    data = real_curves.load_curves(tmp_path / "data")
    for name in data.datasets:
        target = real_curves.make_target(data, name)
        found = real_curves.diagnose(target)
        mine = found["hfselect"]
        selected = real_curves.hfselect_method()(target)
        # What recall lost plus what halving lost is hfselect's regret.
        assert mine["recall_regret"] + mine["selection_regret"] == pytest.approx(
            selected["normalized_regret"]
        )
        assert mine["recall_regret"] == min(target.normalized_regret(m) for m in mine["candidates"])
        if mine["best_recalled_dropped"] is not None:
            assert mine["best_recalled_dropped"]["epoch"] < target.budget
        # The winner's run plus the dropped runs is successive halving's whole cost.
        halving = found["successive_halving"]
        plain = real_curves.methods()["successive_halving"](target)
        total = halving["winner_seconds"] + sum(halving["dropped_seconds_by_epoch"].values())
        assert total == pytest.approx(plain["cost_seconds"])
        assert all(int(epoch) < target.budget for epoch in halving["dropped_seconds_by_epoch"])


def test_probe_recall_pays_one_epoch_of_every_model(tmp_path: Path) -> None:
    _write_quicktune_layout(tmp_path / "data")
    real_curves = _load("real_curves")
    data = real_curves.load_curves(tmp_path / "data")
    target = real_curves.make_target(data, "D1")
    probe = {model: curve[0] for model, curve in target.curves.items()}
    recalled = real_curves.recall(target, 2, real_curves.DEFAULT_SCOPE, probe)
    row = real_curves.probe_recall(lambda pool: 2)(target)
    assert row["selected"] in recalled
    probe_cost = target.cost(dict.fromkeys(target.curves, 1))
    winner_rest = sum(target.seconds[row["selected"]][1:])
    assert row["cost_seconds"] >= probe_cost + winner_rest - 1e-9
    # Only the two recalled runs go on after the probe: at most their whole budget on top of it.
    at_most = probe_cost + sum(sum(target.seconds[m][1:]) for m in recalled)
    assert row["cost_seconds"] <= at_most + 1e-9
    assert row["normalized_regret"] == target.normalized_regret(row["selected"])


def test_warmup_epochs_come_from_the_table(tmp_path: Path) -> None:
    runs = _write_quicktune_layout(tmp_path / "data")
    table = tmp_path / "data" / "table.csv"
    lines = table.read_text().splitlines()
    net0 = {config for model_runs in runs.values() for model, config in model_runs.items() if model == "net0"}
    # net0's runs warm up for 5 epochs; every other run has none.
    rewritten = [lines[0] + ",warmup_epochs"] + [
        line + (",5" if line.split(",")[0] in net0 else ",0") for line in lines[1:]
    ]
    table.write_text("\n".join(rewritten) + "\n")
    real_curves = _load("real_curves")
    data = real_curves.load_curves(tmp_path / "data")
    target = real_curves.make_target(data, "D0")
    assert target.warmup == {"net0": 5}
    # Plain halving over every model with rungs at 1, 2, 4, 8: net0 is kept at least to epoch 8.
    row = real_curves.select(target, list(target.curves), None, rungs=[1, 2, 4, 8], warmup=True)
    replay = real_curves.replay_halving(
        target.curves, target.budget, rungs=[1, 2, 4, 8], warmup_epochs=target.warmup
    )
    assert replay.epochs["net0"] >= 8 and row["selected"] == replay.selected


def _write_protocol_layout(folder: Path) -> None:
    """10 datasets where the protocol decides: a run at lr 1e-3 ends at 0.9, any other lr at 0.3.

    Three models, four configs per pair (lr 1e-2, 1e-3, 1e-4, 1e-5); on D0 the first config of
    "big" has lr 1e-2 and that of "small" lr 1e-3, so the run with the better protocol is small's.
    """
    perf: dict[str, dict[str, list[float]]] = {}
    cost: dict[str, dict[str, list[float]]] = {}
    rows, config = [], 0
    models = ["big", "mid", "small"]
    for index in range(10):
        dataset = f"D{index}"
        perf[dataset], cost[dataset] = {}, {}
        for model in models:
            rates = [1e-2, 1e-3, 1e-4, 1e-5] if model != "small" or index != 0 else [1e-3, 1e-2, 1e-4, 1e-5]
            for rate in rates:
                config += 1
                final = (90.0 if rate == 1e-3 else 30.0) + models.index(model)
                perf[dataset][str(config)] = [final * (epoch + 1) / BUDGET for epoch in range(BUDGET)]
                cost[dataset][str(config)] = [1.0] * BUDGET
                rows.append([str(config), *(int(m == model) for m in models), rate])
    (folder / "curves").mkdir(parents=True)
    (folder / "curves" / "perf.json").write_text(json.dumps(perf))
    (folder / "curves" / "cost.json").write_text(json.dumps(cost))
    (folder / "meta").mkdir()
    (folder / "meta" / "descriptors.json").write_text(
        json.dumps({f"D{i}": [100 * (i + 1), 5] for i in range(10)})
    )
    header = ["", *(f"cat:model:{model}" for model in models), "lr"]
    (folder / "table.csv").write_text("\n".join(",".join(map(str, row)) for row in [header, *rows]) + "\n")


def test_learned_prior_ranks_runs_by_their_protocol(tmp_path: Path) -> None:
    _write_protocol_layout(tmp_path / "data")
    real_curves = _load("real_curves")
    data = real_curves.load_curves(tmp_path / "data")
    target = real_curves.make_target(data, "D0")
    # A run's features: the table's numeric columns (3 model columns, lr), then the 2 descriptors.
    assert target.features["small"] == (0.0, 0.0, 1.0, 1e-3, 100.0, 5.0)
    assert len(target.benchmark_runs) == 9 * 12
    learned = real_curves.learned_prior(target)
    # Only small's run on D0 has the good learning rate: the learned prior says so ...
    assert learned["small"] > 0.8 > 0.4 > max(learned["big"], learned["mid"])
    # ... while the protocol prior, blind to the protocol, ranks the models as they are on average.
    protocol = real_curves.protocol_prior(target)
    assert protocol["small"] > protocol["mid"] > protocol["big"]
    assert protocol["small"] - protocol["big"] < 0.05
    assert real_curves.recall(target, 1, "every", learned) == ["small"]


def test_benchmark_curves_are_grouped_by_their_dataset(tmp_path: Path) -> None:
    # Held-out errors (the auto margin) leave out a run's whole dataset, as with the library's
    # repository curves: every benchmark curve carries its dataset, and never the target's.
    _write_quicktune_layout(tmp_path / "data")
    real_curves = _load("real_curves")
    data = real_curves.load_curves(tmp_path / "data")
    target = real_curves.make_target(data, "D0")
    groups = {curve.group for curves in target.benchmark_curves.values() for curve in curves}
    assert groups == {"D1", "D2", "D3"}


def test_protocol_trend_reads_the_protocol_where_the_curves_agree() -> None:
    # Every run starts at 0.1; only its learning rate says whether it ends at 0.9 or at 0.3. A
    # predictor of the curve's shape alone cannot tell the two apart after one epoch.
    protocol = _load("real_curves_protocol")

    runs = []
    for dataset in ("A", "B", "C", "D"):
        for draw in range(12):  # enough runs for the regression's leaves (20 runs at least)
            for rate in (1e-2, 1e-3):
                final = 0.9 if rate == 1e-3 else 0.3
                curve = (0.1, *np.linspace(0.1, final, BUDGET)[1:])
                runs.append(protocol.BenchmarkRun(dataset, (rate, float(draw)), curve))
    regressions = protocol.ProtocolRegressions(runs)
    good = protocol.ProtocolTrendPredictor(regressions, (1e-3, 0.0))
    bad = protocol.ProtocolTrendPredictor(regressions, (1e-2, 0.0))
    assert good.predict_curve([0.1]) == pytest.approx(0.9, abs=0.05)
    assert bad.predict_curve([0.1]) == pytest.approx(0.3, abs=0.05)
    # Held out by dataset (4 folds, each a whole dataset), the rule still holds: small errors for
    # every run, and the auto margin's bound comes from them; mid-epoch there is no error to give.
    errors = good.holdout_errors(1)
    assert len(errors) == len(runs) and max(errors) < 0.05
    assert good.error_bound(1) < 0.05 and math.isnan(good.error_bound(1.5))
    assert protocol.ProtocolRegressions(runs[:24]).holdout_errors(1) == []  # one dataset: nothing held out


def test_targets_give_each_candidate_a_protocol_trend(tmp_path: Path) -> None:
    _write_protocol_layout(tmp_path / "data")
    real_curves = _load("real_curves")
    data = real_curves.load_curves(tmp_path / "data")
    target = real_curves.make_target(data, "D0")
    predictors = target.predictors("protocol", ["small", "big"])
    assert predictors["small"].features == target.features["small"]
    assert predictors["small"].regressions is predictors["big"].regressions  # fitted once per target
    # small's run on D0 has the good learning rate; after three epochs its curve and protocol say so.
    assert predictors["small"].predict_curve(target.curves["small"][:3]) > 0.8
    assert predictors["big"].predict_curve(target.curves["big"][:3]) < 0.4


def test_coverage_candidates_take_the_quantile_of_the_best_models_rank_share() -> None:
    coverage = _load("real_curves_coverage")
    ranks = [coverage.BestRank(f"D{i}", rank, 10) for i, rank in enumerate([1, 2, 2, 3, 8])]
    # Rank shares 0.1, 0.2, 0.2, 0.3, 0.8: 3 of 10 candidates held the best on 80% of them.
    assert coverage.coverage_candidates(ranks, 10, 0.75) == 3
    assert coverage.coverage_candidates(ranks, 20, 0.75) == 6  # the share scales to the target's pool
    assert coverage.coverage_candidates(ranks, 10, 0.9) == 8
    assert coverage.coverage_candidates(ranks[:1], 10, 0.9) == 2  # halving needs a choice
    assert coverage.coverage_candidates(ranks, 5, 1.0) == 4  # the worst share, 0.8, of 5
    assert coverage.coverage_candidates(ranks, 1, 0.9) == 1  # never more than the pool
    assert coverage.coverage_candidates([], 7, 0.9) == 2


def test_best_model_ranks_never_see_the_target(tmp_path: Path) -> None:
    _write_quicktune_layout(tmp_path / "data")
    real_curves = _load("real_curves")
    coverage = _load("real_curves_coverage")
    data = real_curves.load_curves(tmp_path / "data")
    seen: list[tuple[str, list[str]]] = []

    def ranker(target: Any, scopes: Sequence[str]) -> dict[str, list[str]]:
        # Records who plays the target and what it learns from, then ranks as the benchmark does.
        seen.append((target.name, target.benchmarks))
        return real_curves.recall_orders(target, scopes)

    ranks = coverage.best_model_ranks(data, "D0", ("every", "evidence"), ranker)
    # Each other dataset plays the target once, learning from neither D0 nor itself.
    assert [name for name, _ in seen] == ["D1", "D2", "D3"]
    assert all("D0" not in benchmarks and name not in benchmarks for name, benchmarks in seen)
    for scope, scope_ranks in ranks.items():
        assert [rank.dataset for rank in scope_ranks] == ["D1", "D2", "D3"]
        for rank in scope_ranks:
            target = real_curves.make_target(coverage.without_dataset(data, "D0"), rank.dataset)
            order = real_curves.recall_orders(target, (scope,))[scope]
            assert rank.pool == len(target.curves) == 6 and 1 <= rank.rank <= rank.pool
            assert order[rank.rank - 1] == max(target.final, key=target.final.get)


def test_coverage_rows_are_opt_in(tmp_path: Path) -> None:
    _write_quicktune_layout(tmp_path / "data")
    real_curves = _load("real_curves")
    out = tmp_path / "report.json"
    assert real_curves.main(["--data", str(tmp_path / "data"), "--targets", "D1", "--json", str(out)]) == 0
    assert "coverage_candidates" not in json.loads(out.read_text())
    args = ["--data", str(tmp_path / "data"), "--targets", "D1", "--coverage-candidates", "--json", str(out)]
    assert real_curves.main(args) == 0
    report = json.loads(out.read_text())
    _check_schema(report, ["D1"])
    counts = report["coverage_candidates"]["D1"]
    assert len(counts) == len(real_curves.COVERAGE_SCOPES) * len(real_curves.COVERAGES)
    for row, count in counts.items():
        assert row in report["targets"]["D1"] and 2 <= count <= 6
