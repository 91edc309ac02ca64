"""The model repository store: schema, writes, concurrency, export/import, matrix import."""

from __future__ import annotations

import contextlib
import multiprocessing
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from hfselect.errors import RepositoryError
from hfselect.store import (
    MIGRATIONS,
    SCHEMA_VERSION,
    TABLES,
    ModelRepository,
    Protocol,
    parse_matrix,
)
from hfselect.store.studies import RUNNING, Study, Trial

ANCHORS = Path(__file__).resolve().parents[2] / "shared" / "anchors" / "two-phase-selection"


@pytest.fixture
def repository(tmp_path: Path) -> ModelRepository:
    with ModelRepository(tmp_path / "repo.sqlite") as repo:
        yield repo


def fill(repository: ModelRepository) -> None:
    """Put at least one row in every table."""
    repository.upsert_model(
        "org/bert",
        sha="a" * 40,
        architecture="BertForSequenceClassification",
        model_type="bert",
        num_labels=2,
        id2label={"0": "neg", "1": "pos"},
        tags=["transformers", "text-classification"],
        card_data={"license": "mit"},
        has_safetensors=True,
        crawled_at="2026-01-01T00:00:00+00:00",
    )
    repository.upsert_dataset("imdb", num_labels=2, label_names=["neg", "pos"], modality="text")
    protocol = Protocol(epochs=3, learning_rate=1e-3, batch_size=32, seed=0, metric="accuracy")
    repository.record_result("org/bert", "imdb", 0.91, protocol, curve=[0.7, 0.85, 0.9], duration_s=1.5)
    repository.record_result("org/broken", "imdb", None, protocol, status="failed", error="no weights")
    repository.log_crawl("org/bert", "a" * 40, "stored")
    # A cached proxy score, written directly: hfselect.training.proxy_scoring writes the cache while it scores models.
    with contextlib.closing(sqlite3.connect(repository.path)) as connection, connection:
        connection.execute(
            "INSERT INTO proxy_scores (model_id, model_sha, dataset, dataset_fingerprint, proxy, sample_size, "
            "seed, score) VALUES ('org/bert', 'aaa', 'imdb', 'fp', 'leep', 1000, 0, -0.5)"
        )
    study = Study(repository, "s1", target="imdb")
    study.set_trial(Trial("org/bert", RUNNING))
    study.record_point("org/bert", 1, 0.7, None)


def test_new_file_has_current_schema_and_pragmas(repository: ModelRepository) -> None:
    assert repository.schema_version == SCHEMA_VERSION == len(MIGRATIONS)
    # Foreign keys are per connection: tests/test_repository_faults.py checks that they are enforced.
    with contextlib.closing(sqlite3.connect(repository.path)) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        model_columns = {row[1] for row in connection.execute("PRAGMA table_info(models)")}
    assert set(repository.counts()) == set(TABLES)
    required = {
        "model_id", "sha", "architecture", "model_type", "pipeline_tag", "library", "num_parameters",
        "num_labels", "id2label", "license", "downloads", "likes", "gated", "has_safetensors", "tags",
        "card_data", "last_modified", "crawled_at",
    }  # fmt: skip
    assert required <= model_columns


def test_reopening_keeps_data_and_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "repo.sqlite"
    with ModelRepository(path) as repository:
        repository.upsert_model("org/a", sha="1")
    with ModelRepository(path) as repository:
        assert repository.get_model("org/a")["sha"] == "1"
    connection = sqlite3.connect(path)
    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    connection.close()
    with pytest.raises(RepositoryError, match="newer than this hfselect"):
        ModelRepository(path)


def test_version_1_file_is_migrated_forward(tmp_path: Path) -> None:
    path = tmp_path / "v1.sqlite"
    connection = sqlite3.connect(path)
    connection.executescript(MIGRATIONS[0] + "; PRAGMA user_version = 1;")
    connection.execute("INSERT INTO models (model_id, sha) VALUES ('org/old', 'abc')")
    connection.commit()
    connection.close()
    with ModelRepository(path) as repository:
        assert repository.schema_version == SCHEMA_VERSION
        assert repository.get_model("org/old")["location"] is None
        assert repository.model_location("org/old") == "org/old"
        repository.upsert_model("local-model", location=str(tmp_path))
        assert repository.model_location("local-model") == str(tmp_path)


def test_not_a_database_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "garbage.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(RepositoryError, match="not a usable hfselect repository"):
        ModelRepository(path)


def test_environment_variable_sets_default_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HFSELECT_REPOSITORY", str(tmp_path / "env.sqlite"))
    with ModelRepository() as repository:
        assert repository.path == tmp_path / "env.sqlite"
    assert (tmp_path / "env.sqlite").exists()


def test_result_curve_and_matrix(repository: ModelRepository) -> None:
    fill(repository)
    protocol = Protocol(epochs=3, learning_rate=1e-3, batch_size=32, seed=0)
    assert repository.completed_pairs(protocol) == {("org/bert", "imdb"), ("org/broken", "imdb")}
    assert repository.completed_pairs(protocol, include_failed=False) == {("org/bert", "imdb")}
    assert repository.completed_pairs(Protocol(epochs=5)) == set()
    curves = repository.curves(model_id="org/bert")
    assert curves[["epoch", "score"]].values.tolist() == [[1, 0.7], [2, 0.85], [3, 0.9]]
    matrix = repository.performance_matrix()
    assert matrix.loc["org/bert", "imdb"] == pytest.approx(0.91)
    assert "org/broken" not in matrix.index  # failed pairs have no score
    # Re-recording replaces the result and its curve together.
    repository.record_result("org/bert", "imdb", 0.93, protocol, curve=[0.8, 0.93])
    assert repository.curves(model_id="org/bert")["score"].tolist() == [0.8, 0.93]
    assert repository.performance_matrix().loc["org/bert", "imdb"] == pytest.approx(0.93)


def test_json_fields_round_trip(repository: ModelRepository) -> None:
    fill(repository)
    model = repository.get_model("org/bert")
    assert model["id2label"] == {"0": "neg", "1": "pos"}
    assert model["tags"] == ["transformers", "text-classification"]
    assert model["has_safetensors"] == 1


def test_export_import_round_trips_every_table(repository: ModelRepository, tmp_path: Path) -> None:
    fill(repository)
    written = repository.export_parquet(tmp_path / "export")
    assert sorted(path.name for path in written.values()) == sorted(f"{name}.parquet" for name in TABLES)
    results = pd.read_parquet(tmp_path / "export" / "results.parquet")
    assert {"model_id", "dataset", "score"} <= set(results.columns)
    curves = pd.read_parquet(tmp_path / "export" / "curves.parquet")
    assert {"model_id", "dataset", "epoch", "score"} <= set(curves.columns)

    with ModelRepository(tmp_path / "copy.sqlite") as copy:
        copy.import_parquet(tmp_path / "export")
        for name in TABLES:
            original, imported = repository.table(name), copy.table(name)
            assert len(original) > 0, name
            pd.testing.assert_frame_equal(original, imported, check_dtype=False, obj=name)
        # Importing again merges: no duplicates.
        copy.import_parquet(tmp_path / "export")
        assert copy.counts() == repository.counts()


def test_import_keeps_newer_model_rows(repository: ModelRepository, tmp_path: Path) -> None:
    repository.upsert_model("org/a", sha="old", crawled_at="2026-01-01T00:00:00+00:00")
    repository.export_parquet(tmp_path / "old")
    repository.upsert_model("org/a", sha="new", crawled_at="2026-02-01T00:00:00+00:00")
    repository.import_parquet(tmp_path / "old")
    assert repository.get_model("org/a")["sha"] == "new"


def test_import_of_missing_folder_is_clear(repository: ModelRepository, tmp_path: Path) -> None:
    with pytest.raises(RepositoryError, match="not a folder"):
        repository.import_parquet(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RepositoryError, match="holds none of the tables"):
        repository.import_parquet(tmp_path / "empty")


def write_matrix(tmp_path: Path) -> tuple[Path, Path]:
    matrix = tmp_path / "matrix.tsv"
    matrix.write_text("org--a\torg--b\tsolo\n0.5\t0.6\t0.7\n0.1\t0.2\t0\n")
    names = tmp_path / "datasets.txt"
    names.write_text("glue/sst2\nimdb\n")
    return matrix, names


def test_import_matrix_reads_paper_layout(repository: ModelRepository, tmp_path: Path) -> None:
    matrix, names = write_matrix(tmp_path)
    assert repository.import_matrix(matrix, names) == 6
    table = repository.performance_matrix()
    assert list(table.index) == ["org/a", "org/b", "solo"]
    assert list(table.columns) == ["glue/sst2", "imdb"]
    assert table.loc["org/b", "glue/sst2"] == pytest.approx(0.6)
    assert table.loc["solo", "imdb"] == 0


def test_import_matrix_checks_shape(repository: ModelRepository, tmp_path: Path) -> None:
    matrix, names = write_matrix(tmp_path)
    names.write_text("only-one\n")
    with pytest.raises(RepositoryError, match="names 1 datasets"):
        repository.import_matrix(matrix, names)
    matrix.write_text("a\tb\n0.1\n")
    with pytest.raises(RepositoryError, match="1 scores for 2 models"):
        repository.import_matrix(matrix, names)


def test_import_csv_long_form(repository: ModelRepository, tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    path.write_text("model_id,dataset,score\norg/a,imdb,0.5\norg/b,imdb,0.75\n")
    assert repository.import_csv(path) == 2
    assert repository.performance_matrix().loc["org/b", "imdb"] == pytest.approx(0.75)
    path.write_text("model,score\n")
    with pytest.raises(RepositoryError, match="lacks the column"):
        repository.import_csv(path)


@pytest.mark.skipif(not ANCHORS.exists(), reason="paper anchors not present")
def test_paper_matrices_parse() -> None:
    nlp = parse_matrix(ANCHORS / "nlp_matrix.tsv", ANCHORS / "nlp_datasets.txt")
    assert len(nlp) == 21 and all(len(scores) == 39 for scores in nlp.values())
    assert all("--" not in model_id for model_id in next(iter(nlp.values())))
    cv = parse_matrix(ANCHORS / "cv_matrix.tsv", ANCHORS / "cv_datasets.txt")
    assert len(cv) == 6 and all(len(scores) == 30 for scores in cv.values())


def _write_rows(path: str, worker: int, count: int) -> None:
    with ModelRepository(path) as repository:
        protocol = Protocol(epochs=1, seed=worker)
        for index in range(count):
            repository.record_result(
                f"model-{worker}", f"dataset-{index}", index / count, protocol, curve=[0.5]
            )


def test_concurrent_writers_lose_no_row(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.sqlite")
    ModelRepository(path).close()
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_write_rows, args=(path, worker, 500)) for worker in range(4)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=240)
        assert process.exitcode == 0
    with ModelRepository(path) as repository:
        counts = repository.counts()
        assert counts["results"] == 2000
        assert counts["curves"] == 2000
        assert counts["models"] == 4
        assert counts["datasets"] == 500


# -- claims: concurrent bench workers never train one pair twice ------------------------------------

PROTOCOL = Protocol(epochs=2, learning_rate=1e-3, batch_size=8, seed=0)


def _train_every_pair_with_claims(path: Path, owner: str, pairs: list[tuple[str, str]], log: list) -> None:
    """A fake bench worker: claim each pair, 'train' it (log it), record the result, release."""
    with ModelRepository(path) as repository:
        for model_id, dataset in pairs:
            if repository.claim_pair(model_id, dataset, PROTOCOL, owner) != "claimed":
                continue
            log.append((model_id, dataset, owner))
            repository.record_result(model_id, dataset, 0.5, PROTOCOL, curve=[0.4, 0.5])
            repository.release_claim(model_id, dataset, PROTOCOL, owner)


def test_threads_sharing_a_repository_train_each_pair_exactly_once(tmp_path: Path) -> None:
    import threading

    pairs = [(f"model-{m}", f"data-{d}") for m in range(6) for d in range(4)]
    path = tmp_path / "repo.sqlite"
    ModelRepository(path).close()
    log: list[tuple[str, str, str]] = []
    workers = [
        threading.Thread(target=_train_every_pair_with_claims, args=(path, f"w{i}", pairs, log))
        for i in range(4)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    trained = [(model_id, dataset) for model_id, dataset, _ in log]
    assert sorted(trained) == sorted(pairs)  # every pair once, none twice
    with ModelRepository(path) as repository:
        assert repository.counts()["results"] == len(pairs) and repository.claims() == []


def test_a_claim_is_refused_while_held_and_once_the_pair_is_done(repository: ModelRepository) -> None:
    assert repository.claim_pair("m", "d", PROTOCOL, "a", now=100.0) == "claimed"
    assert repository.claim_pair("m", "d", PROTOCOL, "b", now=101.0) == "held"
    assert repository.claim_pair("m", "d", PROTOCOL, "a", now=102.0) == "claimed"  # its own claim
    repository.record_result("m", "d", 0.9, PROTOCOL)
    repository.release_claim("m", "d", PROTOCOL, "a")
    assert repository.claim_pair("m", "d", PROTOCOL, "b", now=103.0) == "done"
    # Another protocol is another pair.
    assert repository.claim_pair("m", "d", Protocol(epochs=3), "b", now=103.0) == "claimed"


def test_an_expired_claim_is_taken_over_and_a_renewed_one_is_not(repository: ModelRepository) -> None:
    assert repository.claim_pair("m", "d", PROTOCOL, "crashed", ttl_s=60, now=0.0) == "claimed"
    assert repository.claim_pair("m", "d", PROTOCOL, "other", ttl_s=60, now=59.0) == "held"
    assert repository.claim_pair("m", "d", PROTOCOL, "other", ttl_s=60, now=61.0) == "claimed"
    assert repository.claims()[0]["owner"] == "other"
    # The crashed worker lost its claim: it cannot renew it, and releasing it does nothing.
    assert repository.claim_pair("m", "d", PROTOCOL, "crashed", ttl_s=60, now=62.0) == "held"
    repository.release_claim("m", "d", PROTOCOL, "crashed")
    assert repository.claims()[0]["owner"] == "other"
    # A heartbeat (claiming again) keeps a long training claimed.
    assert repository.claim_pair("m", "d", PROTOCOL, "other", ttl_s=60, now=100.0) == "claimed"
    assert repository.claim_pair("m", "d", PROTOCOL, "third", ttl_s=60, now=150.0) == "held"


def test_a_failure_is_not_retried_by_a_concurrent_worker_but_is_by_a_later_run(
    repository: ModelRepository,
) -> None:
    repository.record_result("m", "d", None, PROTOCOL, status="failed", error="boom")
    [failed_at] = repository.results(status="failed")["created_at"]
    assert repository.claim_pair("m", "d", PROTOCOL, "same-run", failed_since=failed_at) == "done"
    assert repository.claim_pair("m", "d", PROTOCOL, "later-run", failed_since="9999") == "claimed"


def test_copy_benchmarks_leaves_out_the_held_out_dataset(tmp_path: Path) -> None:
    with (
        ModelRepository(tmp_path / "all.sqlite") as source,
        ModelRepository(tmp_path / "copy.sqlite") as copy,
    ):
        for dataset, score in (("kept", 0.8), ("target", 0.9)):
            source.upsert_dataset(dataset, num_labels=2)
            source.upsert_model("m", location="/models/m", source="local")
            source.record_result("m", dataset, score, PROTOCOL, curve=[score - 0.1, score])
        assert copy.copy_benchmarks(source, exclude_datasets=["target"]) == 1
        # Again: the same rows, and the source was detached (attaching it twice would fail).
        assert copy.copy_benchmarks(source, exclude_datasets=["target"]) == 1
        assert list(copy.performance_matrix().columns) == ["kept"]
        assert set(copy.curves().dataset) == {"kept"} and len(copy.curves()) == 2
        assert [d["name"] for d in copy.datasets()] == ["kept"]
        assert copy.get_model("m")["location"] == "/models/m"
        assert copy.counts()["results"] == 1
