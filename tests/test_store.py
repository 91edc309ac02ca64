"""The store's named methods that replaced raw SQL in its callers, and the package's public surface."""

from __future__ import annotations

from pathlib import Path

import pytest

import hfselect.store
from hfselect.errors import RepositoryError
from hfselect.starters import result_sources
from hfselect.store import ModelRepository, Protocol, Study

PROTOCOL = Protocol(epochs=2, learning_rate=1e-3, batch_size=8, seed=0)


@pytest.fixture
def repository(tmp_path: Path) -> ModelRepository:
    with ModelRepository(tmp_path / "repo.sqlite") as repo:
        yield repo


def test_sql_is_not_handed_out() -> None:
    # Callers get named methods; raw connections and SQL stay inside hfselect.store.
    for name in ("query", "transaction"):
        assert not hasattr(ModelRepository, name)


def test_public_names_are_exported_by_the_package() -> None:
    for name in hfselect.store.__all__:
        assert getattr(hfselect.store, name) is not None
    assert {"ModelRepository", "Protocol", "TABLES", "Study", "Trial", "parse_matrix"} <= set(
        hfselect.store.__all__
    )


def test_results_by_protocol_counts_ok_results_and_curves(repository: ModelRepository) -> None:
    repository.record_result("m1", "d1", 0.8, PROTOCOL, curve=[0.7, 0.8])
    repository.record_result("m2", "d1", 0.6, PROTOCOL)  # no curve
    repository.record_result("m2", "d2", None, PROTOCOL, status="failed", error="boom")
    repository.record_results([("m1", "d2", 0.5), ("m3", "d2", 0.4)], Protocol(metric="f1"))
    summary = {row["protocol"]: row for row in repository.results_by_protocol()}
    assert list(summary) == sorted([PROTOCOL.key, "imported-f1"])
    assert summary[PROTOCOL.key] == {
        "protocol": PROTOCOL.key,
        "results": 2,  # the failed result is left out
        "models": 2,
        "datasets": 1,
        "metrics": ["accuracy"],
        "epochs": 2,
        "curves": 1,
    }
    imported = summary["imported-f1"]
    assert (imported["results"], imported["models"], imported["epochs"], imported["curves"]) == (
        2,
        2,
        None,
        0,
    )
    assert imported["metrics"] == ["f1"]


def test_result_sources_label_each_protocol(repository: ModelRepository) -> None:
    repository.record_result("m1", "d1", 0.8, PROTOCOL, curve=[0.7, 0.8])
    repository.record_results([("m1", "d2", 0.5)])
    sources = {row["protocol"]: row for row in result_sources(repository)}
    assert sources[PROTOCOL.key]["source"] == "benchmarked here (2 epochs)"
    assert sources[PROTOCOL.key]["curves"] == 1 and "epochs" not in sources[PROTOCOL.key]
    assert sources["imported"]["source"] == "imported (protocol unknown)"


def test_study_ids_lists_every_study_sorted(repository: ModelRepository) -> None:
    assert repository.study_ids() == []
    Study(repository, "second", target="t")
    Study(repository, "first", target="t")
    Study(repository, "first", target="t")  # opening a study again does not add one
    assert repository.study_ids() == ["first", "second"]


def fill_two_datasets(repository: ModelRepository) -> None:
    for model in ("m1", "m2"):
        repository.upsert_model(model, source="local", location=f"/elsewhere/{model}")
        for dataset, score in (("kept", 0.7), ("target", 0.9)):
            repository.record_result(model, dataset, score, PROTOCOL, curve=[score - 0.1, score])
    Study(repository, "s1", target="target").record_point("m1", 1, 0.5, None)


def test_copy_without_dataset_removes_the_target_and_relocates_models(
    repository: ModelRepository, tmp_path: Path
) -> None:
    fill_two_datasets(repository)
    zoo = tmp_path / "zoo"
    (zoo / "m1").mkdir(parents=True)
    copy_path = repository.copy_without_dataset(
        tmp_path / "copies" / "held-out.sqlite",
        "target",
        locations={"m1": zoo / "m1", "unknown": zoo / "unknown"},
    )
    assert copy_path == tmp_path / "copies" / "held-out.sqlite"
    with ModelRepository(copy_path, create=False) as copy:
        assert list(copy.performance_matrix().columns) == ["kept"]
        assert set(copy.curves().dataset) == {"kept"}
        # Everything else is copied as it is, the target's own dataset row and the study included.
        assert {row["name"] for row in copy.datasets()} == {"kept", "target"}
        assert copy.study_ids() == ["s1"]
        assert copy.model_location("m1") == str(zoo / "m1")
        assert copy.get_model("m2")["location"] == "/elsewhere/m2"
        assert copy.get_model("unknown") is None
    # The source is left alone.
    assert set(repository.performance_matrix().columns) == {"kept", "target"}
    assert repository.get_model("m1")["location"] == "/elsewhere/m1"


def test_copy_without_dataset_replaces_an_old_copy_and_refuses_to_overwrite_itself(
    repository: ModelRepository, tmp_path: Path
) -> None:
    fill_two_datasets(repository)
    destination = tmp_path / "copy.sqlite"
    repository.copy_without_dataset(destination, "kept")
    repository.copy_without_dataset(destination, "target")
    with ModelRepository(destination, create=False) as copy:
        assert list(copy.performance_matrix().columns) == ["kept"]
    with pytest.raises(RepositoryError, match="onto itself"):
        repository.copy_without_dataset(repository.path, "target")
    assert set(repository.performance_matrix().columns) == {"kept", "target"}


def test_copy_without_dataset_into_an_unwritable_place_is_one_line(
    repository: ModelRepository, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(RepositoryError, match="cannot copy the repository") as error:
        repository.copy_without_dataset(blocker / "copy.sqlite", "target")
    assert "\n" not in str(error.value)
