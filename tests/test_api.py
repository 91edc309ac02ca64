"""The Python API is the pipeline: hfselect.recall and hfselect.select on the tiny test assets."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

import hfselect
from hfselect.cards import SCHEMA_VERSION, SelectionReport
from hfselect.config import DEFAULT_SCOPE, DEFAULT_TOP_K
from hfselect.core.recall_result import RecallResult


def test_public_names_are_there_and_import_hfselect_stays_light() -> None:
    for name in hfselect.__all__:
        assert getattr(hfselect, name) is not None, name
    assert hfselect.recall.__module__ == "hfselect.api" and hfselect.SelectionReport is SelectionReport
    with pytest.raises(AttributeError):
        _ = hfselect.no_such_name
    import subprocess
    import sys

    # `import hfselect` loads neither torch nor transformers nor scikit-learn.
    code = "import sys, hfselect; print(sorted({'torch', 'transformers', 'sklearn'} & set(sys.modules)))"
    started = time.perf_counter()
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]" and time.perf_counter() - started < 10


def test_recall_from_a_path_with_the_configured_defaults(tiny_assets: Path, benchmarked: Path) -> None:
    target = str(tiny_assets / "datasets" / "topic")
    result = hfselect.recall(target, benchmarked, top_k=2, sample_size=64, progress=False)
    assert isinstance(result, RecallResult) and result.target == target and len(result.models) == 2
    assert result.scope == DEFAULT_SCOPE and result.proxy == "logme"  # headless model: LogME for all
    assert set(result.proxied_models) == {"bert-a", "distil-b", "bert-headless"}
    again = RecallResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again.to_dict() == result.to_dict()
    # The precomputed proxies give the same ranking, and nothing is loaded.
    reused = hfselect.recall(target, str(benchmarked), top_k=2, proxy_scores=result.proxy_scores)
    assert reused.models == result.models and reused.proxied_models == []


def test_recall_checks_its_options_first(benchmarked: Path) -> None:
    with pytest.raises(ValueError, match="top_k"):
        hfselect.recall("any/target", benchmarked, top_k=0)
    assert hfselect.recall.__kwdefaults__["top_k"] == DEFAULT_TOP_K


def test_select_returns_the_report_it_writes(tiny_assets: Path, benchmarked: Path, tmp_path: Path) -> None:
    target = str(tiny_assets / "datasets" / "topic")
    events: list[str] = []
    recalled: list[RecallResult] = []
    report = hfselect.select(
        target, benchmarked, candidates=2, sample_size=64, output_dir=tmp_path / "out", progress=False,
        on_event=events.append, on_recall=recalled.append,
        epochs=2, learning_rate=1e-2, batch_size=16, max_length=32,
    )  # fmt: skip
    assert isinstance(report, SelectionReport) and report.schema_version == SCHEMA_VERSION
    assert report.recall is not None and report.recall.models == recalled[0].models
    assert report.selected_model in report.recall.models and report.schedule == "sync"
    assert report.metric == "accuracy" and report.selected_score is not None
    assert events[0] == f"== coarse recall: 2 candidates for {target} =="
    assert any(line.startswith("== fine selection (sync") for line in events)
    written = SelectionReport.from_json(tmp_path / "out")
    assert written.to_json() == report.to_json()  # (NaN in the snapshot: compare the text)
    card = (tmp_path / "out" / "README.md").read_text()
    assert "**Fine-selection schedule:** `sync`" in card  # the field the card used to leave empty
    assert (
        report.saved_to == str(tmp_path / "out" / "run" / "selected-model") and Path(report.saved_to).is_dir()
    )


def test_bench_resumes_what_the_repository_already_holds(tiny_assets: Path, benchmarked: Path) -> None:
    from hfselect.training.bench import BenchConfig
    from tests.conftest import TINY_BENCH

    models, datasets = [str(tiny_assets / "models")], [str(tiny_assets / "datasets" / "sentiment")]
    summary = hfselect.bench(models, datasets, benchmarked, config=BenchConfig(**TINY_BENCH), progress=False)
    assert summary.planned == summary.skipped == 3 and summary.done == summary.failed == []
    half = hfselect.bench(models, datasets, str(benchmarked), config=BenchConfig(**TINY_BENCH), shard=(1, 2))
    assert half.planned == 1 and half.skipped == 1  # every second pair of the sorted job list


def test_cluster_reads_the_repository(benchmarked: Path) -> None:
    summary = hfselect.cluster(benchmarked, k_largest=1)
    assert summary.models == 3 and summary.datasets == 1
    assert sorted(m for c in summary.clusters for m in c.members) == ["bert-a", "bert-headless", "distil-b"]
    with pytest.raises(hfselect.errors.HfSelectError, match="--method kmeans"):
        hfselect.cluster(benchmarked, n_clusters=2)


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any proxy computed fails the test: the arguments must be refused before."""
    import hfselect.training.proxy_scoring

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a proxy was computed before the arguments were checked")

    monkeypatch.setattr(hfselect.training.proxy_scoring, "score_models", refuse)


@pytest.mark.parametrize(
    ("argument", "error"),
    [
        ({"margin": "big"}, ValueError),
        ({"margin": -1}, ValueError),
        ({"schedule": "fast"}, ValueError),
        ({"predictor": "oracle"}, ValueError),
        ({"halving_order": "random"}, ValueError),
        ({"study": "../models"}, ValueError),
        ({"candidates": "4"}, ValueError),
        ({"proxy": "nope"}, ValueError),
        ({"scope": "most"}, ValueError),
        ({"max_download": -1}, ValueError),
        ({"split": ""}, ValueError),
        ({"output_dir": "{file}"}, ValueError),
        ({"proxy_scores": "abc"}, TypeError),
        ({"exclude_datasets": "topic"}, TypeError),
        ({"text_columns": "text"}, TypeError),
    ],
)
def test_select_checks_every_argument_before_any_work(
    argument: dict, error: type, filled: Path, tmp_path: Path, no_proxy: None
) -> None:
    from tests.bad_input import table_rows

    (tmp_path / "a-file").write_text("")
    name, value = next(iter(argument.items()))
    value = value.format(file=tmp_path / "a-file") if isinstance(value, str) else value
    before = table_rows(filled)
    options = {"output_dir": tmp_path / "out", name: value}
    with pytest.raises(error, match=name):
        hfselect.select("some/target", filled, **options)
    assert table_rows(filled) == before  # no cached proxy, no study left running
    assert not (tmp_path / "out").exists()


def test_api_errors_name_the_parameter_and_are_value_or_type_errors(filled: Path, no_proxy: None) -> None:
    import pandas as pd

    from hfselect.store import ModelRepository

    with pytest.raises(TypeError, match="target must be a dataset"):
        hfselect.recall(123, filled)
    with pytest.raises(ValueError, match="target must be a dataset"):
        hfselect.recall("", filled)
    with pytest.raises(ValueError, match="proxy must be one of"):
        hfselect.recall("some/target", filled, proxy="nope")
    with pytest.raises(TypeError, match="proxy_scores must be a mapping"):
        hfselect.coarse_recall(pd.DataFrame({"d": [0.5]}, index=["a"]), "abc")
    with pytest.raises(ValueError, match=r"proxy_scores\['a'\] must be a number"):
        hfselect.coarse_recall(pd.DataFrame({"d": [0.5]}, index=["a"]), {"a": "high"})
    with ModelRepository(filled) as repository, pytest.raises(TypeError, match="protocol must be a Protocol"):
        repository.record_results([("org/a", "data-0", 0.5)], None)
    with pytest.raises(ValueError, match="learning_rates"):
        hfselect.select("some/target", filled, budget_epochs=4, learning_rates="1e-5,fast")
