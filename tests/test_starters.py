"""Starter repositories: the paper's published matrices shipped as package data, `hfselect repo init`."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from hfselect.cli import build_parser, main
from hfselect.core.clustering import ModelClustering
from hfselect.errors import HfSelectError
from hfselect.starters import init_starter, load_starter, result_sources, starter_names
from hfselect.store import ModelRepository
from tests.bad_input import run_failing
from tests.test_clustering import (
    ANCHORS,
    CV_MULTI_MODEL_CLUSTERS,
    NLP_MULTI_MODEL_CLUSTERS,
    as_partition,
    load_anchor_matrix,
    needs_anchors,
)

ROOT = Path(__file__).resolve().parents[1]


def test_shipped_starters_hold_the_papers_matrices_with_their_provenance() -> None:
    assert starter_names() == ["paper-nlp", "paper-vision"]
    nlp, vision = load_starter("paper-nlp"), load_starter("paper-vision")
    assert (len(nlp.models), len(nlp.datasets), len(nlp.results())) == (39, 21, 39 * 21)
    assert (len(vision.models), len(vision.datasets), len(vision.results())) == (30, 6, 30 * 6)
    assert "bert-base-uncased" in nlp.models and "Jeevesh8/bert_ft_qqp-40" in nlp.models  # '--' became '/'
    for starter in (nlp, vision):
        assert "2404.00069" in starter.source and "MIT" in starter.license and "plasware" in starter.license
        assert starter.protocol_note.startswith("published, no learning curves")
    # The paper's names that pin down no loadable Hub id keep their name, and say why.
    unmapped = {d.paper_name: d for d in nlp.datasets if d.unmapped}
    assert set(unmapped) == {"xnli", "financial_phrasebank"}
    assert all(d.name == d.paper_name and "config" in d.note for d in unmapped.values())
    names = {d.paper_name: d.name for d in nlp.datasets}
    assert names["sst2"] == "nyu-mll/glue:sst2" and names["imdb"] == "stanfordnlp/imdb"
    assert {d.name for d in vision.datasets} >= {"uoft-cs/cifar10", "ylecun/mnist", "Matthijs/snacks"}
    license_file = ROOT / "hfselect" / "starter_data" / "LICENSE-two-phase-selection.txt"
    assert (
        "MIT License" in license_file.read_text()
        and "Copyright (c) 2023 plasware" in license_file.read_text()
    )


def test_cli_offers_every_shipped_starter(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    for name in starter_names():
        assert parser.parse_args(["repo", "init", "--starter", name]).starter == name
    with pytest.raises(SystemExit):
        parser.parse_args(["repo", "init", "--starter", "paper-audio"])
    assert "invalid choice: 'paper-audio'" in capsys.readouterr().err


def test_unknown_starter_names_the_ones_there_are() -> None:
    with pytest.raises(HfSelectError, match="paper-nlp, paper-vision"):
        load_starter("paper-audio")


@needs_anchors
def test_shipped_files_are_what_the_script_makes_from_the_release() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "make_starters.py"), "--check", "--anchors", str(ANCHORS)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    # The scores are the released ones, cell by cell.
    for kind, name in (("nlp", "paper-nlp"), ("cv", "paper-vision")):
        released = load_anchor_matrix(kind)
        starter = load_starter(name)
        assert list(released.index) == list(starter.models)
        for dataset, row in zip(starter.datasets, starter.scores, strict=True):
            assert list(released[dataset.paper_name]) == list(row)


def test_init_fills_a_repository_marked_with_source_and_protocol(tmp_path: Path) -> None:
    with ModelRepository(tmp_path / "repo.sqlite") as repository:
        repository.upsert_model("bert-base-uncased", source="hub", sha="abc")  # crawled before: kept
        init_starter(repository, "paper-nlp")
        init_starter(repository, "paper-nlp")  # again: the same rows, nothing doubled
        counts = repository.counts()
        assert (counts["models"], counts["datasets"], counts["results"], counts["curves"]) == (39, 21, 819, 0)
        assert repository.get_model("roberta-base")["source"] == "starter:paper-nlp"
        assert repository.get_model("bert-base-uncased")["sha"] == "abc"
        results = repository.results()
        assert set(results["protocol"]) == {"published-paper-nlp"}
        assert set(results[results["dataset"] == "nyu-mll/glue:cola"]["metric"]) == {"mcc"}
        assert {row["name"] for row in repository.datasets()} >= {"xnli", "nyu-mll/glue:sst2"}
        [source] = result_sources(repository)
        assert source["source"] == "starter paper-nlp: published, no learning curves"
        assert (source["results"], source["models"], source["curves"]) == (819, 39, 0)
        performance = repository.performance_matrix()
    # The paper's 16 clusters (8 of several models) at its threshold, from the repository.
    clustering = ModelClustering(threshold=0.09).fit(performance)
    assert clustering.n_clusters_ == 16
    multi = [members for members in clustering.clusters_ if len(members) > 1]
    assert as_partition(multi) == as_partition(NLP_MULTI_MODEL_CLUSTERS)


def test_vision_starter_clusters_as_the_paper_at_its_threshold(tmp_path: Path) -> None:
    with ModelRepository(tmp_path / "repo.sqlite") as repository:
        starter = init_starter(repository, "paper-vision")
        performance = repository.performance_matrix()
    clustering = ModelClustering(threshold=starter.threshold).fit(performance)
    assert starter.threshold == 0.03 and clustering.n_clusters_ == 6
    multi = [members for members in clustering.clusters_ if len(members) > 1]
    assert as_partition(multi) == as_partition(CV_MULTI_MODEL_CLUSTERS)


def test_repo_init_and_info_commands_say_what_was_stored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(tmp_path / "repo.sqlite")
    assert main(["repo", "init", "--starter", "paper-nlp", "--repository", path]) == 0
    out = capsys.readouterr().out
    assert "39 models (Hub ids) x 21 datasets, 819 results under protocol published-paper-nlp" in out
    assert "published, no learning curves" in out and "2404.00069" in out and "MIT" in out
    assert "map to no single Hub id and keep the paper's name: xnli, financial_phrasebank" in out
    assert main(["repo", "info", "--repository", path]) == 0
    info = capsys.readouterr().out
    assert "published-paper-nlp" in info and "starter paper-nlp: published, no learning curves" in info
    assert main(["cluster", "--repository", path]) == 0
    assert "16 clusters, 8 with several models" in capsys.readouterr().out


def test_recall_on_an_empty_repository_names_the_starter_command(tmp_path: Path) -> None:
    from hfselect.api import recall

    with ModelRepository(tmp_path / "empty.sqlite") as repository, pytest.raises(HfSelectError) as error:
        recall("stanfordnlp/imdb", repository)
    assert "hfselect repo init --starter paper-nlp" in str(error.value)


@pytest.mark.parametrize("failing_table", ["models", "results"])
def test_repo_init_is_all_or_nothing_when_a_write_fails(
    failing_table: str, filled: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A write that fails half way (as a full disk would): the 38th starter model, or the results.
    starter = load_starter("paper-nlp")
    condition = f"NEW.model_id = '{starter.models[37]}'" if failing_table == "models" else "1"
    connection = sqlite3.connect(filled)
    connection.execute(
        f"CREATE TRIGGER full_disk BEFORE INSERT ON {failing_table} WHEN {condition} "
        "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
    )
    connection.commit()
    connection.close()
    status, line = run_failing(["repo", "init", "--starter", "paper-nlp"], capsys, filled)
    assert (
        status == 1
        and line == f"hfselect: error: cannot use the repository {filled}: database or disk is full"
    )
    with ModelRepository(filled) as repository:  # nothing of the starter: not 37 of its 39 models
        assert repository.counts()["models"] == 3 and repository.get_model(starter.models[0]) is None


def test_atomic_keeps_every_write_or_none(tmp_path: Path) -> None:
    with ModelRepository(tmp_path / "repo.sqlite") as repository:
        with pytest.raises(RuntimeError), repository.atomic():
            repository.upsert_model("org/a")
            repository.record_results([("org/a", "d", 0.5)])
            raise RuntimeError("a failure after two writes")
        assert repository.counts()["models"] == 0 and repository.counts()["results"] == 0
        with repository.atomic():
            repository.upsert_model("org/a")
            repository.record_results([("org/a", "d", 0.5)])
        assert repository.counts()["results"] == 1
