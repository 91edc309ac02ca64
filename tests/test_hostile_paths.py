"""A study name is never a path, and hfselect never removes a folder it did not make."""

from __future__ import annotations

from pathlib import Path

import pytest

import hfselect
from hfselect.errors import HfSelectError, InvalidValueError
from hfselect.training.checkpoints import (
    CHECKPOINT_MARKER,
    checkpoint_folder_name,
    make_checkpoint_folder,
    remove_checkpoint_folder,
)
from hfselect.validation import check_study_name
from tests.bad_input import run_failing

BAD_NAMES = [
    "../../../models",
    "a/b",
    "..",
    ".hidden",
    "-x",
    "x-",
    "a..b",
    "a--b",
    "",
    "x" * 97,
    "a b",
    "hf_x\n",
]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_study_name_is_held_to_hub_repo_name_rules(name: str) -> None:
    with pytest.raises(InvalidValueError, match="like a Hub repo's"):
        check_study_name("study", name)


def test_good_study_names_pass() -> None:
    for name in ("my-target", "select-0a1b2c", "v1.2_run", "x" * 96, "A"):
        assert check_study_name("study", name) == name


def test_select_refuses_a_path_as_study_and_leaves_the_users_folder(
    tiny_assets: Path, benchmarked: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    user_model = tmp_path / "models" / "bert-a"
    user_model.mkdir(parents=True)
    (user_model / "weights.bin").write_bytes(b"the user's own model")
    target = str(tiny_assets / "datasets" / "topic")
    argv = ["select", target, "--study", "../../../models", "--output", str(tmp_path / "out")]
    status, line = run_failing(argv, capsys, benchmarked)
    assert status == 2 and "like a Hub repo's" in line
    assert (user_model / "weights.bin").read_bytes() == b"the user's own model"
    assert not (tmp_path / "out").exists()
    with pytest.raises(InvalidValueError, match="study must be"):
        hfselect.select(target, benchmarked, study="../models", output_dir=tmp_path / "out2")
    assert not (tmp_path / "out2").exists()


def test_the_callback_refuses_a_path_as_study() -> None:
    from hfselect.callbacks import ConvergenceTrendCallback

    with pytest.raises(ValueError, match="study must be"):
        ConvergenceTrendCallback(study="../../models")


def test_only_folders_hfselect_made_are_removed(tmp_path: Path) -> None:
    users = tmp_path / "users"
    users.mkdir()
    (users / "keep.txt").write_text("mine")
    remove_checkpoint_folder(users)  # no marker: left alone
    assert (users / "keep.txt").read_text() == "mine"
    with pytest.raises(HfSelectError, match="was not made by hfselect"):
        make_checkpoint_folder(users)  # nor trained into
    ours = tmp_path / "ours" / "model"
    make_checkpoint_folder(ours)
    make_checkpoint_folder(ours)  # again: a resumed run
    assert (ours / CHECKPOINT_MARKER).is_file()
    (ours / "checkpoint-1").mkdir()
    remove_checkpoint_folder(ours)
    assert not ours.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    make_checkpoint_folder(empty)  # an empty folder holds nothing to lose
    assert (empty / CHECKPOINT_MARKER).is_file()


def test_a_model_id_is_one_safe_folder_name() -> None:
    assert checkpoint_folder_name("org/model") == "org--model"
    assert checkpoint_folder_name("../../etc") == "..--..--etc"  # one component, inside the study's folder
    for name in ("..", ".", ""):
        assert checkpoint_folder_name(name) not in ("..", ".", "") and "/" not in checkpoint_folder_name(name)


def test_a_users_folder_at_a_checkpoint_path_is_refused_before_the_study_and_kept(
    tiny_assets: Path, benchmarked: Path, tmp_path: Path
) -> None:
    from tests.bad_input import table_rows

    output = tmp_path / "out"
    users = output / "run" / "checkpoints" / "mine" / "distil-b"
    users.mkdir(parents=True)
    (users / "weights.bin").write_bytes(b"the user's own model")
    before = table_rows(benchmarked)
    scores = {"bert-a": 0.5, "distil-b": 0.4, "bert-headless": 0.3}  # precomputed: nothing is loaded
    with pytest.raises(HfSelectError, match="was not made by hfselect"):
        hfselect.select(
            str(tiny_assets / "datasets" / "topic"), benchmarked, candidates=3, proxy_scores=scores,
            study="mine", output_dir=output, progress=False,
        )  # fmt: skip
    assert (users / "weights.bin").read_bytes() == b"the user's own model"
    assert table_rows(benchmarked) == before  # no study row, no trial


def test_a_marked_folder_outside_the_checkpoint_root_is_never_removed(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere" / "model"
    make_checkpoint_folder(outside)  # even one that carries the marker
    root = tmp_path / "out" / "checkpoints"
    root.mkdir(parents=True)
    remove_checkpoint_folder(outside, inside=root)
    assert (outside / CHECKPOINT_MARKER).is_file()
    (root / "link").symlink_to(outside.parent)  # nor through a link inside the root
    remove_checkpoint_folder(root / "link" / "model", inside=root)
    assert (outside / CHECKPOINT_MARKER).is_file()
    inside = root / "study" / "model"
    make_checkpoint_folder(inside)
    remove_checkpoint_folder(inside, inside=root)
    assert not inside.exists()
