"""Tests of hfselect.data: dataset specs, loading, column inference, splits and samples.

Preprocessing for a model is in ``tests/test_data_preprocess.py``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import datasets
import pytest
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value
from huggingface_hub import HfApi

from hfselect.data import (
    ClassificationData,
    ColumnInfo,
    DatasetSpec,
    dataset_key,
    expand_dataset_specs,
    infer_columns,
    load_classification_dataset,
    load_target_sample,
)
from hfselect.data.sampling import _stream_sample
from hfselect.errors import DatasetError, HfSelectError

SENTIMENT = ClassLabel(names=["neg", "pos"])


# Tests that do not use the local Hub run offline: a stray Hub request fails at once.
pytestmark = pytest.mark.usefixtures("offline_unless_local_hub")


def make_texts(n: int, prefix: str = "t") -> list[str]:
    """``n`` short texts, alternately "bad" and "good", each with its index."""
    return [f"{prefix}{i} good words here" if i % 2 else f"{prefix}{i} bad words there" for i in range(n)]


def write_zoo_folder(root: Path, name: str = "sst2-tiny", sizes=(40, 8, 8)) -> Path:
    """A folder as the offline zoo writes it: train/validation/test parquet plus a README card."""
    folder = root / name
    folder.mkdir(parents=True)
    features = Features({"text": Value("string"), "label": SENTIMENT})
    for split, n in zip(("train", "validation", "test"), sizes, strict=True):
        Dataset.from_dict(
            {"text": make_texts(n, split[:2]), "label": [i % 2 for i in range(n)]}, features=features
        ).to_parquet(str(folder / f"{split}.parquet"))
    (folder / "README.md").write_text("---\nlicense: mit\n---\n# sst2-tiny\nA tiny sentiment dataset.\n")
    return folder


def _rows(ds: Dataset, columns: list[str]) -> list[tuple]:
    return list(zip(*(ds[c] for c in columns), strict=True))


# ---------------------------------------------------------------------------------------------
# Specs and keys
# ---------------------------------------------------------------------------------------------


def test_parse_hub_ids_and_keys():
    spec = DatasetSpec.parse("nyu-mll/glue:sst2")
    assert spec == DatasetSpec(path="nyu-mll/glue", config="sst2", is_local=False)
    assert spec.name == "nyu-mll/glue:sst2" == dataset_key("nyu-mll/glue:sst2")
    assert DatasetSpec.parse("imdb") == DatasetSpec(path="imdb")
    assert DatasetSpec.parse(" stanfordnlp/imdb ").name == "stanfordnlp/imdb"


def test_parse_local_paths_win_and_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    folder = write_zoo_folder(tmp_path, "org")
    spec = DatasetSpec.parse(str(folder))
    assert spec.is_local and spec.config is None and spec.name == "org"
    # A local path with ":" in its name wins over ID:CONFIG parsing.
    weird = tmp_path / "name:cfg"
    weird.mkdir()
    assert DatasetSpec.parse(str(weird)) == DatasetSpec(path=str(weird), is_local=True)
    # FOLDER:CONFIG for an existing folder.
    assert DatasetSpec.parse(f"{folder}:main") == DatasetSpec(path=str(folder), config="main", is_local=True)
    assert DatasetSpec.parse(f"{folder}:main").name == "org:main"
    # A file's key is its name without extension; relative paths work.
    monkeypatch.chdir(tmp_path)
    Dataset.from_dict({"text": ["a"], "label": [0]}).to_csv("reviews.csv")
    assert DatasetSpec.parse("reviews.csv").name == "reviews"
    assert DatasetSpec.parse("org").is_local  # an existing relative folder beats the Hub id "org"


@pytest.mark.parametrize(
    "bad", ["", "  ", "./missing-folder", "/no/such/dir", "missing.csv", "bad id!", "a/b/c"]
)
def test_parse_errors_name_the_dataset(bad: str):
    with pytest.raises(DatasetError) as err:
        DatasetSpec.parse(bad)
    message = str(err.value)
    assert "\n" not in message
    if bad.strip():
        assert bad.strip() in message


# ---------------------------------------------------------------------------------------------
# Column inference
# ---------------------------------------------------------------------------------------------


def test_infer_columns_common_layouts():
    f = Features({"idx": Value("int32"), "sentence": Value("string"), "label": SENTIMENT})
    assert infer_columns(f) == ColumnInfo(["sentence"], "label", None, ["neg", "pos"])
    f = Features({"premise": Value("string"), "hypothesis": Value("string"), "label": Value("int64")})
    assert infer_columns(f).text_columns == ["premise", "hypothesis"]
    f = Features({"question": Value("string"), "sentence": Value("string"), "label": SENTIMENT})
    assert infer_columns(f).text_columns == ["question", "sentence"]
    f = Features({"question": Value("string"), "passage": Value("string"), "answer": Value("bool")})
    info = infer_columns(f, label_column="answer")
    assert (info.text_columns, info.label_column) == (["question", "passage"], "answer")
    # The only string column besides ids; a ClassLabel not named "label".
    f = Features(
        {"id": Value("string"), "utterance_text": Value("string"), "topic": ClassLabel(names=["a", "b"])}
    )
    assert infer_columns(f) == ColumnInfo(["utterance_text"], "topic", None, ["a", "b"])
    f = Features({"image": datasets.Image(), "labels": ClassLabel(names=["cat", "dog"])})
    info = infer_columns(f)
    assert (info.modality, info.image_column, info.text_columns) == ("image", "image", [])


def test_infer_columns_overrides_and_errors():
    f = Features({"body": Value("string"), "title": Value("string"), "stars": Value("int64")})
    info = infer_columns(f, text_columns=["title", "body"], label_column="stars")
    assert (info.text_columns, info.label_column) == (["title", "body"], "stars")
    with pytest.raises(DatasetError, match=r"'ds'.*no label column 'nope'"):
        infer_columns(f, label_column="nope", dataset="ds")
    with pytest.raises(DatasetError, match=r"'ds'.*no text column 'nope'"):
        infer_columns(f, text_columns=["nope"], label_column="stars", dataset="ds")
    with pytest.raises(DatasetError, match=r"'ds' has no usable label column"):
        infer_columns(Features({"text": Value("string")}), dataset="ds")
    f = Features({"a": Value("string"), "b": Value("string"), "label": SENTIMENT})
    with pytest.raises(DatasetError, match=r"'ds': cannot tell which column is the text.*--text-column"):
        infer_columns(f, dataset="ds")


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


def test_zoo_parquet_folder(tmp_path: Path):
    folder = write_zoo_folder(tmp_path)
    data = load_classification_dataset(str(folder))
    assert isinstance(data, ClassificationData)
    assert list(data.splits) == ["train", "validation", "test"]
    assert {k: v.num_rows for k, v in data.splits.items()} == {"train": 40, "validation": 8, "test": 8}
    assert data.split_origin == {"train": "train", "validation": "validation", "test": "test"}
    assert (data.text_columns, data.image_column, data.modality) == (["text"], None, "text")
    assert (data.label_names, data.num_labels, data.name) == (["neg", "pos"], 2, "sst2-tiny")
    for split in data.splits.values():
        assert split.column_names == ["text", "label"]
        assert split.features["label"] == SENTIMENT
    assert data.splits["validation"]["text"][0] == "va0 bad words there"
    again = load_classification_dataset(str(folder))
    assert again.fingerprint == data.fingerprint and len(data.fingerprint) == 32
    other = load_classification_dataset(str(folder), train_samples=10)
    assert other.fingerprint != data.fingerprint


def test_pair_columns_and_string_labels_sorted(tmp_path: Path):
    labels = ["neutral", "entailment", "contradiction"]
    rows = {
        "premise": [f"p{i}" for i in range(30)],
        "hypothesis": [f"h{i}" for i in range(30)],
        "gold": [labels[i % 3] for i in range(30)],
    }
    path = tmp_path / "nli.csv"
    Dataset.from_dict(rows).to_csv(str(path))
    data = load_classification_dataset(str(path), label_column="gold")
    assert data.text_columns == ["premise", "hypothesis"]
    assert data.label_names == ["contradiction", "entailment", "neutral"]
    assert data.name == "nli"
    truth = dict(zip(rows["premise"], rows["gold"], strict=True))
    seen = 0
    for split in data.splits.values():
        assert split.column_names == ["premise", "hypothesis", "label"]
        for premise, label in zip(split["premise"], split["label"], strict=True):
            assert data.label_names[label] == truth[premise]
            seen += 1
    assert seen == 30
    assert {k: v.num_rows for k, v in data.splits.items()} == {"train": 24, "validation": 3, "test": 3}


def test_overrides_and_integer_labels(tmp_path: Path):
    path = tmp_path / "reviews.jsonl"
    with path.open("w") as fh:
        for i in range(20):
            row = {
                "uid": f"u{i}",
                "review_body": f"body {i}",
                "headline": f"title {i}",
                "stars": [1, 3, 5][i % 3],
            }
            fh.write(json.dumps(row) + "\n")
    with pytest.raises(DatasetError, match=r"'.*reviews.jsonl' has no usable label column.*--label-column"):
        load_classification_dataset(str(path))
    with pytest.raises(DatasetError, match=r"'.*reviews.jsonl': cannot tell which column is the text"):
        load_classification_dataset(str(path), label_column="stars")
    data = load_classification_dataset(str(path), text_columns=["review_body"], label_column="stars")
    assert data.text_columns == ["review_body"] and data.label_column == "stars"
    assert data.label_names == ["1", "3", "5"]
    assert data.splits["train"].column_names == ["review_body", "label"]
    all_rows = sum(v.num_rows for v in data.splits.values())
    assert all_rows == 20
    # --split restricts to one split (here a slice) and carves from it.
    sliced = load_classification_dataset(
        str(path), text_columns=["review_body"], label_column="stars", split="train[:10]"
    )
    assert sum(v.num_rows for v in sliced.splits.values()) == 10


def test_save_to_disk_folder_with_dev_split(tmp_path: Path):
    features = Features({"sentence": Value("string"), "label": SENTIMENT})
    dd = DatasetDict(
        {
            "train": Dataset.from_dict(
                {"sentence": make_texts(30), "label": [i % 2 for i in range(30)]}, features=features
            ),
            "dev": Dataset.from_dict(
                {"sentence": make_texts(6, "d"), "label": [0, 1] * 3}, features=features
            ),
        }
    )
    dd.save_to_disk(str(tmp_path / "saved"))
    data = load_classification_dataset(str(tmp_path / "saved"), seed=3)
    assert data.split_origin == {"train": "train", "validation": "dev", "test": "carved from train"}
    assert {k: v.num_rows for k, v in data.splits.items()} == {"train": 27, "validation": 6, "test": 3}
    assert not list((tmp_path / "saved").rglob("cache-*")), (
        "loading must not write cache files into the folder"
    )
    # A single saved Dataset is the train split.
    dd["train"].save_to_disk(str(tmp_path / "single"))
    single = load_classification_dataset(str(tmp_path / "single"))
    assert {k: v.num_rows for k, v in single.splits.items()} == {"train": 24, "validation": 3, "test": 3}


def test_carving_is_deterministic_and_disjoint(tmp_path: Path):
    path = tmp_path / "train.parquet"
    Dataset.from_dict(
        {"text": [f"row {i}" for i in range(50)], "label": [i % 2 for i in range(50)]}
    ).to_parquet(str(path))
    a = load_classification_dataset(str(path), seed=7)
    b = load_classification_dataset(str(path), seed=7)
    c = load_classification_dataset(str(path), seed=8)
    assert {k: v.num_rows for k, v in a.splits.items()} == {"train": 40, "validation": 5, "test": 5}
    parts = {k: set(v["text"]) for k, v in a.splits.items()}
    assert parts["train"].isdisjoint(parts["validation"]) and parts["train"].isdisjoint(parts["test"])
    assert parts["validation"].isdisjoint(parts["test"])
    assert set.union(*parts.values()) == {f"row {i}" for i in range(50)}
    for split in ("train", "validation", "test"):
        assert a.splits[split]["text"] == b.splits[split]["text"]
    assert a.fingerprint == b.fingerprint
    assert a.splits["test"]["text"] != c.splits["test"]["text"]
    assert a.fingerprint != c.fingerprint


def test_glue_like_unlabeled_test_is_carved(tmp_path: Path):
    folder = tmp_path / "glue-like"
    folder.mkdir()
    features = Features({"idx": Value("int32"), "sentence": Value("string"), "label": SENTIMENT})
    for split, n, labels in (
        ("train", 40, [i % 2 for i in range(40)]),
        ("validation", 6, [0, 1] * 3),
        ("test", 6, [-1] * 6),
    ):
        Dataset.from_dict(
            {"idx": list(range(n)), "sentence": make_texts(n, split[:2]), "label": labels}, features=features
        ).to_parquet(str(folder / f"{split}.parquet"))
    data = load_classification_dataset(str(folder))
    assert data.split_origin["test"] == "carved from train"
    assert data.split_origin["validation"] == "validation"
    assert {k: v.num_rows for k, v in data.splits.items()} == {"train": 36, "validation": 6, "test": 4}
    assert all(t.startswith("tr") for t in data.splits["test"]["sentence"])
    assert min(data.splits["test"]["label"]) >= 0


def test_subsampling_is_deterministic(tmp_path: Path):
    folder = write_zoo_folder(tmp_path, sizes=(40, 20, 20))
    a = load_classification_dataset(str(folder), train_samples=12, eval_samples=5, seed=1)
    b = load_classification_dataset(str(folder), train_samples=12, eval_samples=5, seed=1)
    assert {k: v.num_rows for k, v in a.splits.items()} == {"train": 12, "validation": 5, "test": 5}
    assert a.splits["train"]["text"] == b.splits["train"]["text"]
    assert a.splits["validation"]["text"] == b.splits["validation"]["text"]
    big = load_classification_dataset(str(folder), train_samples=1000)
    assert big.splits["train"].num_rows == 40


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


def write_parquet(path: Path, columns: dict, features: Features | None = None) -> str:
    """``columns`` as one parquet file at ``path``; its path as a string (a dataset spec)."""
    Dataset.from_dict(columns, features=features).to_parquet(str(path))
    return str(path)


def test_error_no_label_column(tmp_path: Path):
    path = write_parquet(tmp_path / "nolabel.parquet", {"text": ["a", "b", "c"], "score": [0.5, 0.1, 0.7]})
    with pytest.raises(DatasetError) as err:
        load_classification_dataset(path)
    assert "nolabel.parquet" in str(err.value) and "no usable label column" in str(err.value)


def test_error_regression_labels(tmp_path: Path):
    path = write_parquet(tmp_path / "reg.parquet", {"text": ["a", "b", "c"], "label": [0.5, 0.1, 0.7]})
    with pytest.raises(DatasetError, match=r"reg.parquet.*non-integer"):
        load_classification_dataset(path)


def test_error_single_class(tmp_path: Path):
    path = write_parquet(tmp_path / "mono.parquet", {"text": make_texts(10), "label": ["pos"] * 10})
    with pytest.raises(DatasetError, match=r"mono.parquet.*fewer than two classes \(pos\)"):
        load_classification_dataset(path)
    # Two classes declared, but the train split holds one.
    folder = tmp_path / "mono-train"
    folder.mkdir()
    f = Features({"text": Value("string"), "label": SENTIMENT})
    write_parquet(folder / "train.parquet", {"text": make_texts(10), "label": [1] * 10}, f)
    write_parquet(folder / "validation.parquet", {"text": make_texts(2), "label": [0, 1]}, f)
    write_parquet(folder / "test.parquet", {"text": make_texts(2), "label": [0, 1]}, f)
    with pytest.raises(DatasetError, match=r"mono-train.*single class \(pos\)"):
        load_classification_dataset(str(folder))


def test_error_empty_split(tmp_path: Path):
    folder = tmp_path / "holey"
    folder.mkdir()
    f = Features({"text": Value("string"), "label": SENTIMENT})
    write_parquet(folder / "train.parquet", {"text": make_texts(10), "label": [0, 1] * 5}, f)
    write_parquet(folder / "validation.parquet", {"text": [], "label": []}, f)
    with pytest.raises(DatasetError, match=r"holey.*split 'validation' is empty"):
        load_classification_dataset(str(folder))


def test_error_unlabeled_train_and_too_small(tmp_path: Path):
    f = Features({"text": Value("string"), "label": SENTIMENT})
    path = write_parquet(tmp_path / "unlabeled.parquet", {"text": make_texts(4), "label": [-1] * 4}, f)
    with pytest.raises(DatasetError, match=r"unlabeled.parquet.*no labels"):
        load_classification_dataset(path)
    path = write_parquet(tmp_path / "tiny.parquet", {"text": make_texts(2), "label": [0, 1]}, f)
    with pytest.raises(DatasetError, match=r"tiny.parquet.*too few to carve"):
        load_classification_dataset(path)


def test_error_unknown_path_and_id(tmp_path: Path):
    with pytest.raises(DatasetError, match=r"does not exist"):
        load_classification_dataset(str(tmp_path / "missing"))
    with pytest.raises(DatasetError) as err:
        load_classification_dataset("hfselect-test/no-such-dataset")
    assert "hfselect-test/no-such-dataset" in str(err.value) and "\n" not in str(err.value)
    assert isinstance(err.value, HfSelectError)


def test_error_folder_without_data(tmp_path: Path):
    folder = tmp_path / "scripted"
    folder.mkdir()
    (folder / "scripted.py").write_text("import datasets\n")
    with pytest.raises(DatasetError, match=r"scripted.*no data files.*scripts are never run"):
        load_classification_dataset(str(folder))


def test_error_unknown_split(tmp_path: Path):
    folder = write_zoo_folder(tmp_path)
    with pytest.raises(DatasetError, match=r"sst2-tiny.*split"):
        load_classification_dataset(str(folder), split="nope")


# ---------------------------------------------------------------------------------------------
# Target samples
# ---------------------------------------------------------------------------------------------


def test_target_sample_local(tmp_path: Path):
    folder = write_zoo_folder(tmp_path, sizes=(40, 8, 8))
    sample, info = load_target_sample(str(folder), n=10, seed=2)
    assert sample.num_rows == 10 and sample.column_names == ["text", "label"]
    assert info == ColumnInfo(["text"], "label", None, ["neg", "pos"])
    again, _ = load_target_sample(str(folder), n=10, seed=2)
    assert sample["text"] == again["text"]
    assert all(t.startswith("tr") for t in sample["text"])
    full, _ = load_target_sample(str(folder), n=1000)
    assert full.num_rows == 40
    test_sample, _ = load_target_sample(str(folder), n=5, split="test")
    assert all(t.startswith("te") for t in test_sample["text"])


def test_target_sample_skips_unlabeled_and_rejects_unlabeled_split(tmp_path: Path):
    f = Features({"text": Value("string"), "label": SENTIMENT})
    folder = tmp_path / "partial"
    folder.mkdir()
    write_parquet(
        folder / "train.parquet", {"text": make_texts(10), "label": [0, 1, -1, 0, 1, -1, 0, 1, 0, 1]}, f
    )
    write_parquet(folder / "test.parquet", {"text": make_texts(3), "label": [-1, -1, -1]}, f)
    sample, _ = load_target_sample(str(folder), n=100)
    assert sample.num_rows == 8 and min(sample["label"]) == 0
    with pytest.raises(DatasetError, match=r"partial.*'test' has no labels"):
        load_target_sample(str(folder), split="test")


def test_stream_sample_matches_content(tmp_path: Path):
    """The streaming code path (used for Hub ids) on a local stream: seeded, labeled rows only."""
    folder = write_zoo_folder(tmp_path, sizes=(30, 4, 4))
    spec = DatasetSpec.parse(str(folder))
    stream = datasets.load_dataset(str(folder), streaming=True)["train"]
    a, features = _stream_sample(stream, 12, seed=5, spec=spec, text_columns=None, label_column=None)
    b, _ = _stream_sample(stream, 12, seed=5, spec=spec, text_columns=None, label_column=None)
    assert a.num_rows == 12 and a["text"] == b["text"] and features["label"] == SENTIMENT
    whole, _ = _stream_sample(stream, 100, seed=5, spec=spec, text_columns=None, label_column=None)
    local, _ = load_target_sample(str(folder), n=100)
    assert sorted(_rows(whole, ["text", "label"])) == sorted(_rows(local, ["text", "label"]))


# ---------------------------------------------------------------------------------------------
# Expansion of dataset folders
# ---------------------------------------------------------------------------------------------


def test_expand_dataset_specs(tmp_path: Path):
    zoo = tmp_path / "zoo" / "datasets"
    write_zoo_folder(zoo, "b-set")
    write_zoo_folder(zoo, "a-set")
    (zoo / "README.md").write_text("# the zoo's datasets\n")
    (zoo / "notes").mkdir()
    single = write_zoo_folder(tmp_path, "alone")
    expanded = expand_dataset_specs([str(zoo), "nyu-mll/glue:sst2", str(single), str(zoo / "a-set")])
    assert expanded == [str(zoo / "a-set"), str(zoo / "b-set"), "nyu-mll/glue:sst2", str(single)]
    # A Hub-style folder whose README declares configs is one dataset, not a collection.
    hubby = tmp_path / "hubby"
    (hubby / "cfg1").mkdir(parents=True)
    Dataset.from_dict({"text": ["a"], "label": [0]}).to_parquet(str(hubby / "cfg1" / "train.parquet"))
    (hubby / "README.md").write_text(
        "---\nconfigs:\n- config_name: cfg1\n  data_files: cfg1/*.parquet\n---\n"
    )
    assert expand_dataset_specs([str(hubby)]) == [str(hubby)]


# ---------------------------------------------------------------------------------------------
# The same folder pushed to a (local) Hub loads identically by id
# ---------------------------------------------------------------------------------------------


def _push(folder: Path, repo_id: str) -> None:
    api = HfApi()
    api.create_repo(repo_id, repo_type="dataset")
    api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="dataset")


def test_hub_dataset_loads_like_local_folder(hub, tmp_path: Path):
    folder = write_zoo_folder(tmp_path, sizes=(30, 6, 6))
    _push(folder, "org/sst2-tiny")

    local = load_classification_dataset(str(folder))
    remote = load_classification_dataset("org/sst2-tiny")
    assert remote.name == "org/sst2-tiny" and local.name == "sst2-tiny"
    assert (remote.text_columns, remote.label_names, remote.split_origin) == (
        local.text_columns,
        local.label_names,
        local.split_origin,
    )
    for split in ("train", "validation", "test"):
        assert remote.splits[split].features == local.splits[split].features
        assert remote.splits[split].to_dict() == local.splits[split].to_dict()

    # Streamed sample: the same rows (order comes from the streaming shuffle buffer).
    streamed, info = load_target_sample("org/sst2-tiny", n=100, seed=3)
    whole, local_info = load_target_sample(str(folder), n=100, seed=3)
    assert info == local_info
    assert streamed.features == whole.features
    assert sorted(_rows(streamed, ["text", "label"])) == sorted(_rows(whole, ["text", "label"]))
    again, _ = load_target_sample("org/sst2-tiny", n=7, seed=3)
    assert (
        again.num_rows == 7 and again["text"] == load_target_sample("org/sst2-tiny", n=7, seed=3)[0]["text"]
    )
    # Not streamed: exactly the local sample.
    plain, _ = load_target_sample("org/sst2-tiny", n=9, seed=3, streaming=False)
    assert plain.to_dict() == load_target_sample(str(folder), n=9, seed=3)[0].to_dict()


def test_hub_unknown_id_and_config(hub, tmp_path: Path):
    with pytest.raises(DatasetError) as err:
        load_classification_dataset("org/no-such-dataset")
    message = str(err.value)
    assert "'org/no-such-dataset' was not found on the Hub" in message and "\n" not in message
    with pytest.raises(DatasetError, match=r"org/no-such-dataset.*not found"):
        load_target_sample("org/no-such-dataset", n=5)
    _push(write_zoo_folder(tmp_path), "org/plain")
    with pytest.raises(DatasetError, match=r"'org/plain:nope'.*nope"):
        load_classification_dataset("org/plain:nope")


def test_local_folder_rebuilt_in_place_is_not_read_from_the_cache(tmp_path: Path, hf_cache: Path):
    # A zoo rebuilt into the same folder (another seed, other split sizes) must be loaded afresh:
    # datasets keys its prepared copy of a local folder by the folder's name and card only.
    from hfselect.zoo.build import _write_dataset
    from hfselect.zoo.language import _Lexicon
    from hfselect.zoo.tasks import _TASKS, _generate

    task, lexicon = _TASKS["topic4"], _Lexicon.create(0)
    folder = tmp_path / "topic4"
    small = dataclasses.replace(task, splits=(("train", 40), ("validation", 8), ("test", 8)))
    _write_dataset(small, _generate(small, lexicon, 0), folder)
    first = load_classification_dataset(str(folder))
    assert first.splits["test"].num_rows == 8
    larger = dataclasses.replace(task, splits=(("train", 40), ("validation", 8), ("test", 24)))
    _write_dataset(larger, _generate(larger, _Lexicon.create(1), 1), folder)
    again = load_classification_dataset(str(folder))
    assert again.splits["test"].num_rows == 24
    assert again.splits["train"]["text"] != first.splits["train"]["text"]
    # The same name in another folder (the zoo of another seed) is another dataset too.
    elsewhere = tmp_path / "other" / "topic4"
    _write_dataset(small, _generate(small, _Lexicon.create(2), 2), elsewhere)
    other = load_classification_dataset(str(elsewhere))
    assert other.splits["test"].num_rows == 8
    assert other.splits["train"]["text"] not in (first.splits["train"]["text"], again.splits["train"]["text"])
