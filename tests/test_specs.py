"""Telling a local path from a Hub id (hfselect.specs), and its users: models, datasets, the export."""

from __future__ import annotations

from pathlib import Path

import pytest

from hfselect.data import DatasetSpec
from hfselect.errors import DatasetError, ModelLoadError
from hfselect.models import expand_model_specs, resolve_model_sha
from hfselect.specs import is_local_path
from hfselect.store.local_paths import public_spec


@pytest.mark.parametrize("spec", ["/data/x", "./x", "../x", "~/x", "a/b/c", "a\\b"])
def test_what_can_only_be_a_path_is_local_even_when_missing(spec: str) -> None:
    assert is_local_path(spec)


@pytest.mark.parametrize("spec", ["imdb", "nyu-mll/glue", "org/model-1.5"])
def test_hub_ids_are_not_local(spec: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert not is_local_path(spec)


def test_an_existing_folder_is_local_and_suffixes_mark_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "org" / "model").mkdir(parents=True)
    assert is_local_path("org/model")  # shaped like a Hub id, but it is here
    assert not is_local_path("reviews.csv")
    assert is_local_path("reviews.csv", file_suffixes=(".csv",))
    assert is_local_path("Reviews.CSV", file_suffixes=(".csv",))


def test_models_datasets_and_the_export_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelLoadError, match="does not exist"):
        expand_model_specs(["./missing-model"])
    with pytest.raises(ModelLoadError, match="no such local folder"):
        resolve_model_sha("a/b/c")
    with pytest.raises(DatasetError, match="does not exist"):
        DatasetSpec.parse("a/b/c")
    assert public_spec("a/b/c") == "c" and public_spec("~/data/reviews") == "reviews"
    assert public_spec("org/name") == "org/name"
