"""Hostile and malformed input at the command line (issue 35): one clear line, a non-zero exit, nothing lost.

Every case runs before any work (no proxy, no training) and leaves the repository as it was.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bad_input import run_cli, run_failing, table_rows


def write_csv_dataset(folder: Path, rows: bytes) -> Path:
    """A local dataset folder whose only file is ``train.csv`` holding ``rows`` (under a text,label header)."""
    folder.mkdir(parents=True)
    (folder / "train.csv").write_bytes(b"text,label\n" + rows)
    return folder


# -- --proxy-scores that cannot be read (item 7) ------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "reason"),
    [("missing", "No such file"), ("latin-1", "not UTF-8"), ("folder", "Is a directory")],
)
def test_unreadable_proxy_scores_are_one_line(
    kind: str, reason: str, filled: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "scores.csv"
    if kind == "latin-1":
        path.write_bytes("model_id,score\norg/caf\xe9,0.5\n".encode("latin-1"))
    elif kind == "folder":
        path.mkdir()
    status, line = run_failing(["recall", "some/target", "--proxy-scores", str(path)], capsys, filled)
    assert status == 1 and f"cannot read proxy scores from {path}" in line and reason in line


# -- paths hfselect writes: files, folders, read-only (item 8) ----------------------------------


@pytest.fixture
def a_file(tmp_path: Path) -> Path:
    path = tmp_path / "a-file"
    path.write_text("the user's file\n")
    return path


@pytest.mark.parametrize(
    ("argv", "option", "expected"),
    [
        (["repo", "export", "{file}"], "DIR", "is a file, not a folder"),
        (["repo", "export", "{file}/sub"], "DIR", "is a file, not a folder"),
        (["zoo", "build", "{file}"], "DIR", "is a file, not a folder"),
        (["recall", "some/target", "--json", "{folder}"], "--json", "is a folder; give a file name"),
        (["select", "some/target", "--output", "{file}"], "--output", "is a file, not a folder"),
    ],
)
def test_an_output_path_of_the_wrong_kind_is_a_usage_error(
    argv: list[str],
    option: str,
    expected: str,
    a_file: Path,
    filled: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = [part.format(file=a_file, folder=tmp_path) for part in argv]
    status, line = run_failing(argv, capsys, filled)  # select: no study row either
    assert status == 2 and f"argument {option}:" in line and expected in line
    assert a_file.read_text() == "the user's file\n"


@pytest.mark.parametrize(
    "argv",
    [
        ["repo", "export", "{folder}/export"],
        ["zoo", "build", "{folder}/zoo"],
        ["recall", "some/target", "--json", "{folder}/recall.json"],
        ["select", "some/target", "--output", "{folder}/report"],
    ],
)
def test_an_output_path_in_a_read_only_folder_is_a_usage_error(
    argv: list[str],
    filled: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import hfselect.validation

    read_only = tmp_path / "read-only"
    read_only.mkdir()
    # chmod cannot make a folder read-only for root (the test machines' user): stand in for it.
    writable = hfselect.validation._writable
    monkeypatch.setattr(hfselect.validation, "_writable", lambda path: path != read_only and writable(path))
    status, line = run_failing([part.format(folder=read_only) for part in argv], capsys, filled)
    assert status == 2 and f"'{read_only}' is read-only" in line
    assert list(read_only.iterdir()) == []


def test_recall_json_makes_the_missing_folders_of_its_path(
    tiny_assets: Path, benchmarked: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "new" / "recall.json"
    proxy_scores = tmp_path / "scores.csv"
    proxy_scores.write_text("model_id,score\nbert-a,0.5\ndistil-b,0.4\nbert-headless,0.3\n")
    argv = ["recall", str(tiny_assets / "datasets" / "topic"), "--proxy-scores", str(proxy_scores)]
    status, _ = run_cli([*argv, "--json", str(path), "--repository", str(benchmarked)], capsys)
    assert status == 0 and path.is_file()


# -- numbers and names out of range (items 11, 12, 17) ------------------------------------------


def test_a_size_of_hundreds_of_digits_is_a_usage_error(
    filled: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, line = run_failing(["recall", "some/target", "--max-download", "9" * 400], capsys, filled)
    assert status == 2 and "argument --max-download:" in line and "too large" in line
    assert len(line) < 200  # the 400 digits are not echoed whole


def test_more_kmeans_clusters_than_models_says_how_many_models(
    filled: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["cluster", "--method", "kmeans", "--n-clusters", "99", "--k-largest", "1"]
    status, line = run_failing(argv, capsys, filled)
    assert status == 1 and "n_clusters is 99" in line and "only 3 models" in line


def test_an_empty_repository_path_is_refused_not_read_as_the_default(
    filled: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HFSELECT_REPOSITORY", str(filled))  # where '' used to write
    results = tmp_path / "results.csv"
    results.write_text("model_id,dataset,score\norg/new,data-9,0.5\n")
    before = table_rows(filled)
    status, lines = run_cli(["repo", "import-csv", str(results), "--repository", ""], capsys)
    assert status == 2 and "argument --repository: expected a repository file path, not ''" in lines[-1]
    assert table_rows(filled) == before
    from hfselect.api import opened_repository

    with pytest.raises(ValueError, match="repository must be"), opened_repository(""):
        pass


# -- targets a recall cannot rank on (items 19, 20) ---------------------------------------------


def test_a_one_class_target_is_refused_before_any_model_is_loaded(
    benchmarked: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import hfselect.training.proxy_scoring

    def no_model(*args: object, **kwargs: object) -> None:
        raise AssertionError("a model was loaded for a one-class target")

    monkeypatch.setattr(hfselect.training.proxy_scoring, "compute_model_outputs", no_model)
    target = write_csv_dataset(tmp_path / "one-class", b"".join(b"w%d good,1\n" % i for i in range(40)))
    status, line = run_failing(["recall", str(target), "--sample-size", "32", "--quiet"], capsys, benchmarked)
    assert status == 1 and "has one class only ('1')" in line and "--label-column" in line


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_a_dataset_file_not_in_utf8_is_named(
    suffix: str, benchmarked: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "latin"
    folder.mkdir()
    rows = [("caf\xe9 good", 0), ("bad w1", 1)] * 20
    if suffix == ".csv":
        text = "text,label\n" + "".join(f"{text},{label}\n" for text, label in rows)
    else:
        text = "".join(f'{{"text": "{text}", "label": {label}}}\n' for text, label in rows)
    (folder / f"train{suffix}").write_bytes(text.encode("latin-1"))
    status, lines = run_cli(["recall", str(folder), "--quiet", "--repository", str(benchmarked)], capsys)
    assert status == 1 and len(lines) == 1, lines  # no log lines of the loader beside it
    assert f"file '{folder / ('train' + suffix)}' is not UTF-8 text (byte 0xe9 at offset" in lines[0]
    assert "save it as UTF-8" in lines[0]
