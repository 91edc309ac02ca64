"""The offline model zoo (hfselect/zoo/): layout, loadability, cards, determinism, publishing.

The small zoo is built once per session (about half a minute on two CPU cores); every test reads it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hfselect.errors import HfSelectError
from hfselect.zoo import ZOO_TAG, ZooManifest, build_zoo, publish_zoo
from tests.hub.server import LocalHub

FAMILIES = {"bert", "distilbert", "roberta"}


@pytest.fixture(scope="session")
def small_zoo(tmp_path_factory: pytest.TempPathFactory) -> ZooManifest:
    return build_zoo(tmp_path_factory.mktemp("zoo") / "small", "small", progress=False)


def _front_matter(readme: Path) -> dict:
    import yaml

    text = readme.read_text(encoding="utf-8")
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_layout_and_manifest(small_zoo: ZooManifest) -> None:
    root = Path(small_zoo.directory)
    assert len(small_zoo.models) >= 8
    assert len(small_zoo.datasets) >= 4
    assert {m.family for m in small_zoo.models} == FAMILIES
    # The kinds of model the method must cope with are all there.
    heads = {m.head for m in small_zoo.models}
    assert {"classification", "none"} <= heads
    assert any(not m.pretrained for m in small_zoo.models)
    assert any(len(m.sources) >= 2 for m in small_zoo.models)
    assert {m.tokenizer for m in small_zoo.models} == {"wordpiece", "byte-level-bpe"}

    assert sorted(p.name for p in (root / "models").iterdir()) == sorted(m.name for m in small_zoo.models)
    assert sorted(p.name for p in (root / "datasets").iterdir()) == sorted(d.name for d in small_zoo.datasets)
    for model in small_zoo.models:
        assert model.num_parameters > 0
        assert set(model.sources) <= {s.name for s in small_zoo.sources} | {"mlm"}
        assert [n for stage in model.stages for n in stage.split("+")] == model.sources
        assert len(model.stage_steps) == len(model.stages)
        assert model.pretrain_steps == sum(model.stage_steps)
    for dataset in small_zoo.datasets:
        assert dataset.role == "target"
        assert dataset.num_classes == len(dataset.label_names) >= 2
        assert dataset.factors
        assert set(dataset.splits) == {"train", "validation", "test"}

    # The manifest on disk is the one returned, and survives a round trip.
    loaded = ZooManifest.load(root)
    assert loaded == small_zoo
    assert ZooManifest.from_json(small_zoo.to_json()) == small_zoo
    assert json.loads((root / "zoo.json").read_text())["size"] == "small"
    assert small_zoo.model_path("tiny-bert-topic8") == root / "models" / "tiny-bert-topic8"
    assert small_zoo.dataset_path("topic4") == root / "datasets" / "topic4"
    assert small_zoo.dataset_path("src-topic8") == root / "sources" / "src-topic8"


def test_models_load_with_auto_classes_from_safetensors(small_zoo: ZooManifest) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    for entry in small_zoo.models:
        folder = small_zoo.model_path(entry.name)
        files = {p.name for p in folder.iterdir()}
        assert {"model.safetensors", "config.json", "README.md", "tokenizer_config.json"} <= files
        assert not any(name.endswith((".bin", ".pt", ".pkl")) for name in files), files
        assert json.loads((folder / "config.json").read_text())["model_type"] == entry.family

        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForSequenceClassification.from_pretrained(
            folder, num_labels=3, ignore_mismatched_sizes=True, use_safetensors=True, trust_remote_code=False
        )
        assert type(model).__name__.lower().startswith(entry.family)
        batch = tokenizer(["a sentence of invented words", "another"], padding=True, return_tensors="pt")
        assert batch["input_ids"].shape[1] <= 32
        with torch.no_grad():
            logits = model(**batch).logits
        assert logits.shape == (2, 3)


def test_pretrained_heads_carry_their_source_task(small_zoo: ZooManifest) -> None:
    import pandas as pd
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    sources = {s.name: s for s in small_zoo.sources}
    checked = 0
    for entry in small_zoo.models:
        config = AutoConfig.from_pretrained(small_zoo.model_path(entry.name))
        if entry.head != "classification" or not entry.pretrained:
            continue
        source = sources[entry.sources[-1]]
        assert entry.num_labels == config.num_labels == source.num_classes
        assert [config.id2label[i] for i in range(config.num_labels)] == source.label_names
        assert config.architectures == [entry.architecture]
        # The head is the trained one: it solves its source task without any fine-tuning.
        folder = small_zoo.model_path(entry.name)
        model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
        tokenizer = AutoTokenizer.from_pretrained(folder)
        frame = pd.read_parquet(small_zoo.dataset_path(source.name) / "validation.parquet")
        with torch.no_grad():
            batch = tokenizer(list(frame.text[:200]), padding=True, return_tensors="pt")
            predicted = model(**batch).logits.argmax(-1).numpy()
        assert (predicted == frame.label.to_numpy()[:200]).mean() > 0.9, entry.name
        checked += 1
    assert checked >= 3

    headless = [m for m in small_zoo.models if m.head == "none"]
    assert headless
    for entry in headless:
        config = AutoConfig.from_pretrained(small_zoo.model_path(entry.name))
        assert not any(a.endswith("ForSequenceClassification") for a in config.architectures)


def test_cards_have_hub_metadata(small_zoo: ZooManifest) -> None:
    for entry in small_zoo.models:
        meta = _front_matter(small_zoo.model_path(entry.name) / "README.md")
        assert meta["library_name"] == "transformers"
        assert meta["license"]
        assert ZOO_TAG in meta["tags"]
        expected_tag = {"classification": "text-classification", "mlm": "fill-mask"}.get(
            entry.head, "feature-extraction"
        )
        assert meta["pipeline_tag"] == expected_tag
        supervised = [s for s in entry.sources if s != "mlm"]
        assert meta.get("datasets", []) == supervised
    for dataset in [*small_zoo.datasets, *small_zoo.sources]:
        meta = _front_matter(small_zoo.dataset_path(dataset.name) / "README.md")
        assert meta["task_categories"] == ["text-classification"]
        assert meta["license"] and meta["pretty_name"]
        assert ZOO_TAG in meta["tags"]


def test_datasets_load_with_class_labels(small_zoo: ZooManifest) -> None:
    import datasets

    for entry in small_zoo.datasets:
        loaded = datasets.load_dataset(str(small_zoo.dataset_path(entry.name)))
        assert set(loaded) == {"train", "validation", "test"}
        for split, n in entry.splits.items():
            assert loaded[split].num_rows == n
        feature = loaded["train"].features["label"]
        assert isinstance(feature, datasets.ClassLabel)
        assert feature.names == entry.label_names
        assert loaded["train"].features["text"].dtype == "string"
        # Balanced classes (apart from label noise), short texts.
        counts = loaded["test"].to_pandas().label.value_counts()
        assert counts.min() >= 0.5 * counts.max()
        assert max(len(t.split()) for t in loaded["train"]["text"]) <= 24


def test_build_is_deterministic(small_zoo: ZooManifest, tmp_path: Path) -> None:
    """A second build gives byte-identical datasets and identical weights (checked on one model)."""
    import torch
    from safetensors.torch import load_file

    from hfselect.zoo.build import _build
    from hfselect.zoo.language import _Lexicon

    name = "tiny-distilbert-style"
    again = _build(tmp_path / "again", "small", seed=0, progress=False, only_models={name})
    assert [m.name for m in again.models] == [name]
    assert again.models[0] == next(m for m in small_zoo.models if m.name == name)
    first_root, second_root = Path(small_zoo.directory), Path(again.directory)
    # Every target dataset, and the sources this one model needs, are rebuilt identically.
    parquet = sorted(p.relative_to(second_root) for p in second_root.glob("*/*/*.parquet"))
    assert len(parquet) == 3 * len(small_zoo.datasets) + 2 * len(again.sources)
    for relative in parquet:
        assert (first_root / relative).read_bytes() == (second_root / relative).read_bytes(), relative
    first = load_file(small_zoo.model_path(name) / "model.safetensors")
    second = load_file(again.model_path(name) / "model.safetensors")
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    for file in ("config.json", "tokenizer.json"):
        assert (small_zoo.model_path(name) / file).read_bytes() == (
            again.model_path(name) / file
        ).read_bytes()

    # Another seed is another language.
    assert _Lexicon.create(1) != _Lexicon.create(0)


def test_build_refuses_a_folder_that_is_not_a_zoo(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(HfSelectError, match="neither empty nor a zoo"):
        build_zoo(tmp_path, "small", progress=False)
    with pytest.raises(ValueError, match="small"):
        build_zoo(tmp_path / "new", "huge", progress=False)  # type: ignore[arg-type]
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_publish_to_a_hub_and_load_back(small_zoo: ZooManifest, hub: LocalHub) -> None:
    import datasets
    from huggingface_hub import HfApi, ModelCard
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    pushed = publish_zoo(small_zoo.directory, organization="zoo-org", api=HfApi())
    expected = [f"zoo-org/{m.name}" for m in small_zoo.models] + [
        f"zoo-org/{d.name}" for d in [*small_zoo.datasets, *small_zoo.sources]
    ]
    assert pushed == expected
    assert "model.safetensors" in hub.repo_files("zoo-org/tiny-bert-topic8")
    card = ModelCard.load("zoo-org/tiny-bert-topic8")
    assert card.data.datasets == ["zoo-org/src-topic8"]  # links to the published source

    model = AutoModelForSequenceClassification.from_pretrained("zoo-org/tiny-bert-topic8")
    tokenizer = AutoTokenizer.from_pretrained("zoo-org/tiny-bert-topic8")
    assert model.config.id2label[0] == "sports"
    assert tokenizer("hello")["input_ids"][0] == tokenizer.cls_token_id
    loaded = datasets.load_dataset("zoo-org/topic4")
    assert isinstance(loaded["test"].features["label"], datasets.ClassLabel)
    assert loaded["test"].num_rows == small_zoo.datasets[0].splits["test"]
    # Publishing again is an update, not an error; a Hub that refuses is reported in one line.
    assert publish_zoo(small_zoo.directory, organization="zoo-org", api=HfApi()) == expected
    hub.require_token = "hf_zoo"
    with pytest.raises(HfSelectError, match="cannot publish model zoo-org/tiny-bert-random"):
        publish_zoo(small_zoo.directory, organization="zoo-org", api=HfApi())
