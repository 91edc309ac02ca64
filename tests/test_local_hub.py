"""The local Hub (tests/hub/server.py) driven by the real clients over real HTTP.

These tests pin down both the server and what the pinned client versions send and expect
(huggingface_hub 2.4, transformers 5, datasets 5), so a client upgrade that changes the protocol
shows up here first.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from huggingface_hub import (
    CommitOperationAdd,
    CommitOperationDelete,
    HfApi,
    HfFileSystem,
    ModelCard,
    hf_hub_download,
)
from huggingface_hub.errors import (
    BadRequestError,
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import get_session, httpx

from tests.hub.server import LocalHub, safetensors_parameters


def _config(model_type: str = "bert") -> bytes:
    return json.dumps({"model_type": model_type, "architectures": ["BertModel"]}).encode()


def _add_many(hub: LocalHub, n: int) -> None:
    """``n`` fake models in three orgs, alternating tasks; every tenth one gated."""
    for i in range(n):
        hub.add_model(
            f"org{i % 3}/model-{i:03d}",
            {"config.json": _config()},
            downloads=i * 10,
            likes=n - i,
            pipeline_tag="text-classification" if i % 2 else "fill-mask",
            library_name="transformers" if i % 5 else "timm",
            gated=(i % 10 == 0),
            license="mit" if i % 4 else "apache-2.0",
        )


def _parquet(rows: int, offset: int = 0) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "text": [f"w{i % 90} w{(i * 7) % 90}" for i in range(offset, offset + rows)],
            "label": [i % 2 for i in range(offset, offset + rows)],
        }
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


# -- listings ----------------------------------------------------------------------------------------


def test_list_models_follows_link_pagination(hub: LocalHub) -> None:
    _add_many(hub, 250)

    ids = [m.id for m in HfApi().list_models()]

    assert len(ids) == 250 == len(set(ids))
    pages = hub.find("GET", r"^/api/models$")
    assert [("cursor" in r.query) for r in pages] == [False, True, True]
    # The next links carry the original query along with the cursor.
    hub.clear_requests()
    limited = list(HfApi().list_models(sort="downloads", limit=150))
    assert [m.downloads for m in limited] == sorted((i * 10 for i in range(100, 250)), reverse=True)
    pages = hub.find("GET", r"^/api/models$")
    assert len(pages) == 2
    assert pages[1].query["sort"] == ["downloads"] and pages[1].query["limit"] == ["150"]


def test_list_models_filters_sort_and_expand(hub: LocalHub) -> None:
    _add_many(hub, 60)

    # huggingface_hub 2.4 has no `library=` argument: a library is one of the `filter` values.
    models = list(
        HfApi().list_models(
            filter=["transformers", "license:mit"],
            pipeline_tag="text-classification",
            author="org1",
            search="model-0",
            gated=False,
            sort="downloads",
            limit=3,
            expand=["downloads", "gated", "tags", "sha", "library_name"],
        )
    )

    expected = [
        f"org1/model-{i:03d}"
        for i in range(59, -1, -1)
        if i % 3 == 1 and i % 2 == 1 and i % 5 and i % 4  # org1, text-classification, transformers, mit
    ][:3]
    assert [m.id for m in models] == expected
    assert all(m.gated is False and m.library_name == "transformers" for m in models)
    assert all("license:mit" in m.tags and "text-classification" in m.tags for m in models)
    # Only `_id`, `id` and the expanded fields come back.
    assert models[0].likes is None and models[0].pipeline_tag is None and models[0].sha
    (request,) = hub.find("GET", r"^/api/models$")
    assert request.query["gated"] == ["false"]  # booleans go out as lower-case strings
    assert request.query["expand"] == ["downloads", "gated", "tags", "sha", "library_name"]

    gated = list(HfApi().list_models(gated=True, expand=["gated"]))
    assert len(gated) == 6 and {m.gated for m in gated} == {"auto"}
    by_likes = list(HfApi().list_models(sort="likes", limit=2, expand=["likes"]))
    assert [m.likes for m in by_likes] == [60, 59]
    with pytest.raises(BadRequestError):
        list(HfApi().list_models(expand=["notAField"]))  # type: ignore[list-item]


def test_list_datasets_and_default_fields(hub: LocalHub) -> None:
    hub.add_dataset(
        "org/ds-a", {"data/train.parquet": b"x"}, downloads=5, tags=["task_categories:text-classification"]
    )
    hub.add_dataset("org/ds-b", {"data/train.csv": b"a,b\n"}, downloads=9, license="mit")
    hub.add_model("org/not-a-dataset", {"config.json": _config()})

    datasets = list(HfApi().list_datasets(sort="downloads"))

    assert [d.id for d in datasets] == ["org/ds-b", "org/ds-a"]
    assert datasets[0].sha and datasets[0].downloads == 9 and "license:mit" in datasets[0].tags
    assert list(HfApi().list_datasets(filter="task_categories:text-classification")) == [datasets[1]]


# -- repo info and downloads ---------------------------------------------------------------------------


def test_model_info_fields_and_revisions(hub: LocalHub) -> None:
    import numpy as np
    from safetensors.numpy import save

    weights = save({"a": np.zeros((3, 4), dtype=np.float32), "b": np.zeros(5, dtype=np.float16)})
    assert safetensors_parameters(weights) == {"F32": 12, "F16": 5}
    readme = b"---\nlicense: apache-2.0\ntags:\n- from-card\n---\n# Tiny\n"
    sha = hub.add_model(
        "org/tiny",
        {"config.json": _config(), "model.safetensors": weights, "README.md": readme},
        downloads=7,
        likes=3,
        pipeline_tag="text-classification",
    )

    info = HfApi().model_info("org/tiny")

    assert info.sha == sha and len(sha) == 40
    assert sorted(s.rfilename for s in info.siblings or []) == [
        "README.md",
        "config.json",
        "model.safetensors",
    ]
    assert info.safetensors is not None and info.safetensors.total == 17
    assert info.safetensors.parameters == {"F32": 12, "F16": 5}
    assert info.config == json.loads(_config())
    assert info.card_data is not None and info.card_data["license"] == "apache-2.0"
    assert info.tags == [
        "transformers",
        "bert",
        "safetensors",
        "text-classification",
        "from-card",
        "license:apache-2.0",
    ]
    assert (info.downloads, info.likes, info.gated, info.private) == (7, 3, False, False)
    expanded = HfApi().model_info("org/tiny", expand=["downloads", "safetensors"])
    assert expanded.downloads == 7 and expanded.safetensors is not None and expanded.siblings is None

    new_sha = hub.update_file("org/tiny", "config.json", _config("roberta"))
    assert new_sha != sha
    assert HfApi().model_info("org/tiny").sha == new_sha
    old = HfApi().model_info("org/tiny", revision=sha)
    assert old.sha == sha and old.config == json.loads(_config())
    with pytest.raises(RevisionNotFoundError):
        HfApi().model_info("org/tiny", revision="no-such-branch")


def test_hf_hub_download_and_not_found_errors(hub: LocalHub, hf_cache: Path) -> None:
    sha = hub.add_model("org/tiny", {"config.json": _config(), "sub/dir/file.txt": b"hello"})

    path = hf_hub_download("org/tiny", "sub/dir/file.txt")

    assert Path(path).read_bytes() == b"hello" and sha in path
    assert Path(path).is_relative_to(hf_cache)  # the per-test cache of the `hub` fixture
    head = hub.find("HEAD", r"/org/tiny/resolve/main/sub/dir/file.txt")[0]
    assert head.status == 200

    with pytest.raises(RemoteEntryNotFoundError) as missing_file:
        hf_hub_download("org/tiny", "nope.json")
    assert isinstance(missing_file.value, EntryNotFoundError)
    assert missing_file.value.response.headers["X-Error-Code"] == "EntryNotFound"
    # The commit comes with the 404, so the client caches the miss (transformers relies on it).
    assert missing_file.value.response.headers["X-Repo-Commit"] == sha

    with pytest.raises(RepositoryNotFoundError) as missing_repo:
        hf_hub_download("org/absent", "config.json")
    assert missing_repo.value.response.status_code == 401
    with pytest.raises(RepositoryNotFoundError):
        HfApi().model_info("org/absent")
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download("org/tiny", "config.json", revision="v9")


def test_canonical_ids_without_a_namespace_are_served(hub: LocalHub, hf_cache: Path) -> None:
    # The early Hub's ids (bert-base-uncased, imdb), which the paper's released matrices use.
    sha = hub.add_model("bert-base-uncased", {"config.json": _config(), "model.safetensors": b"w" * 10})
    hub.add_model("bert-base-uncased/resolve", {"config.json": _config()})  # a namespaced id still wins
    hub.add_dataset("imdb", {"data/train.csv": b"text,label\nfine,1\n"})

    info = HfApi().model_info("bert-base-uncased", files_metadata=True)
    assert info.id == "bert-base-uncased" and info.sha == sha
    assert {s.rfilename: s.size for s in info.siblings}["model.safetensors"] == 10
    assert HfApi().model_info("bert-base-uncased", revision=sha).sha == sha
    assert Path(hf_hub_download("bert-base-uncased", "model.safetensors")).read_bytes() == b"w" * 10
    assert HfApi().model_info("bert-base-uncased/resolve").id == "bert-base-uncased/resolve"
    assert (
        Path(hf_hub_download("imdb", "data/train.csv", repo_type="dataset")).read_bytes().startswith(b"text")
    )
    with pytest.raises(ValueError, match="namespace/name"):
        hub.add_model("a/b/c")


def test_gated_and_private_repos(hub: LocalHub) -> None:
    hub.add_model("org/gated", {"config.json": _config()}, gated=True)
    hub.add_model("org/private", {"config.json": _config()}, private=True)

    with pytest.raises(GatedRepoError) as gated:
        hf_hub_download("org/gated", "config.json")
    assert gated.value.response.status_code == 401
    assert Path(hf_hub_download("org/gated", "config.json", token="hf_any")).read_bytes() == _config()
    assert HfApi().model_info("org/gated").gated == "auto"  # metadata stays public

    with pytest.raises(RepositoryNotFoundError):
        HfApi().model_info("org/private")
    assert [m.id for m in HfApi().list_models()] == ["org/gated"]
    assert HfApi().model_info("org/private", token="hf_any").private is True
    assert len(list(HfApi().list_models(token="hf_any"))) == 2


# -- faults ---------------------------------------------------------------------------------------------


def test_429_on_second_page_is_retried_transparently(hub: LocalHub) -> None:
    _add_many(hub, 250)
    hub.inject_fault(r"^/api/models\?.*cursor=", "429", times=1, retry_after=1)

    ids = [m.id for m in HfApi().list_models(expand=["downloads"])]

    assert len(ids) == 250
    assert [r.status for r in hub.find("GET", r"^/api/models$")] == [200, 429, 200, 200]


def test_dropped_download_is_retried(hub: LocalHub) -> None:
    hub.add_model("org/tiny", {"config.json": _config()})
    hub.inject_fault(r"^/org/tiny/resolve/main/config\.json$", "drop", method="GET")

    path = hf_hub_download("org/tiny", "config.json")

    assert Path(path).read_bytes() == _config()
    assert [r.status for r in hub.find("GET", r"/resolve/main/config\.json")] == [0, 200]


def test_dropped_metadata_request_is_not_retried_by_the_client(hub: LocalHub) -> None:
    # huggingface_hub 2.4 retries a dropped GET, but a dropped HEAD (the metadata call) surfaces as
    # a raw transport error: callers must treat it as transient themselves.
    hub.add_model("org/tiny", {"config.json": _config()})
    hub.inject_fault(r"/resolve/main/config\.json$", "drop", method="HEAD")

    with pytest.raises(httpx.RemoteProtocolError):
        hf_hub_download("org/tiny", "config.json")

    assert Path(hf_hub_download("org/tiny", "config.json")).read_bytes() == _config()


def test_500_reaches_the_caller_then_recovers(hub: LocalHub) -> None:
    hub.add_model("org/tiny", {"config.json": _config()})
    hub.inject_fault(r"^/api/models/org/tiny$", "500", retry_after=None)

    with pytest.raises(HfHubHTTPError) as error:
        HfApi().model_info("org/tiny")  # model_info does not retry

    assert error.value.response.status_code == 500
    assert HfApi().model_info("org/tiny").id == "org/tiny"
    assert hub.count("GET", r"^/api/models/org/tiny$") == 2


# -- transformers and datasets ---------------------------------------------------------------------------


def test_tiny_bert_loads_with_from_pretrained(hub: LocalHub, tmp_path: Path) -> None:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        BertConfig,
        BertForSequenceClassification,
        PreTrainedTokenizerFast,
    )

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(95)]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", 2), ("[SEP]", 3)],
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
    )
    model = BertForSequenceClassification(config)
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    hub.add_model("org/tiny", tmp_path, pipeline_tag="text-classification")

    loaded = AutoModelForSequenceClassification.from_pretrained("org/tiny")
    loaded_tokenizer = AutoTokenizer.from_pretrained("org/tiny")

    expected = model.state_dict()
    assert all(torch.equal(expected[k], v) for k, v in loaded.state_dict().items())
    assert loaded_tokenizer("w1 w2")["input_ids"] == [2, 6, 7, 3]
    assert hub.count("GET", r"/org/tiny/resolve/[0-9a-f]{40}/model\.safetensors$") == 1
    assert HfApi().model_info("org/tiny").safetensors.total == sum(p.numel() for p in model.parameters())


@pytest.fixture
def tinyds(hub: LocalHub) -> LocalHub:
    """``org/tinyds``: parquet train/validation/test splits in the Hub's ``data/`` layout."""
    hub.add_dataset(
        "org/tinyds",
        {
            "data/train-00000-of-00001.parquet": _parquet(20),
            "data/validation-00000-of-00001.parquet": _parquet(6, 100),
            "data/test-00000-of-00001.parquet": _parquet(7, 200),
        },
    )
    return hub


def test_load_dataset_from_parquet_splits(tinyds: LocalHub) -> None:
    import datasets

    ds = datasets.load_dataset("org/tinyds")

    assert {split: len(ds[split]) for split in ds} == {"train": 20, "validation": 6, "test": 7}
    assert ds["train"][1] == {"text": "w1 w7", "label": 1}


def test_load_dataset_config_from_readme(tinyds: LocalHub) -> None:
    import datasets

    readme = b"""---
configs:
- config_name: cfg1
  data_files:
  - split: train
    path: cfg1/train.parquet
- config_name: cfg2
  data_files:
  - split: train
    path: cfg2/train-*.parquet
  - split: test
    path: cfg2/test.parquet
---
# tinyds
"""
    tinyds.update_file("org/tinyds", "cfg1/train.parquet", _parquet(4), repo_type="dataset")
    tinyds.update_file("org/tinyds", "cfg2/train-0.parquet", _parquet(8), repo_type="dataset")
    tinyds.update_file("org/tinyds", "cfg2/test.parquet", _parquet(3), repo_type="dataset")
    tinyds.update_file("org/tinyds", "README.md", readme, repo_type="dataset")

    ds = datasets.load_dataset("org/tinyds", "cfg2")

    assert {split: len(ds[split]) for split in ds} == {"train": 8, "test": 3}
    assert datasets.get_dataset_config_names("org/tinyds") == ["cfg1", "cfg2"]


def test_load_dataset_streaming_reads_ranges(tinyds: LocalHub) -> None:
    import datasets

    stream = datasets.load_dataset("org/tinyds", split="train", streaming=True)
    rows = list(stream.take(5))

    assert [r["text"] for r in rows] == ["w0 w0", "w1 w7", "w2 w14", "w3 w21", "w4 w28"]
    ranged = [r for r in tinyds.find("GET", r"/data/train-00000-of-00001\.parquet$") if "range" in r.headers]
    assert ranged and all(r.status == 206 for r in ranged)


def test_hf_file_system_tree_paths_info_and_ranges(hub: LocalHub) -> None:
    blob = bytes(range(256)) * 40
    hub.add_model("org/files", {"a/1.bin": blob, "a/2.txt": b"two", "a/b/3.txt": b"3", "top.txt": b"top"})
    hub.tree_page_size = 2  # force tree pagination
    api = HfApi()

    tree = list(api.list_repo_tree("org/files", recursive=True))

    assert [e.path for e in tree] == ["a", "a/b", "a/1.bin", "a/2.txt", "a/b/3.txt", "top.txt"]
    assert hub.count("GET", r"/tree/main$") == 3
    assert [e.path for e in api.list_repo_tree("org/files", "a")] == ["a/b", "a/1.bin", "a/2.txt"]
    infos = api.get_paths_info("org/files", ["a/2.txt", "a/b", "missing"], expand=True)
    assert [(type(i).__name__, i.path) for i in infos] == [("RepoFile", "a/2.txt"), ("RepoFolder", "a/b")]
    assert infos[0].size == 3 and infos[0].last_commit is not None

    fs = HfFileSystem()
    assert sorted(fs.glob("org/files/a/*.txt")) == ["org/files/a/2.txt"]
    with fs.open("org/files/a/1.bin", "rb", block_size=1000) as f:
        f.seek(5000)
        assert f.read(10) == blob[5000:5010]
    assert any(r.status == 206 and r.headers.get("range") for r in hub.find("GET", r"/a/1\.bin$"))


# -- writes ---------------------------------------------------------------------------------------------


def test_create_repo_upload_folder_and_pull_request(hub: LocalHub, tmp_path: Path) -> None:
    api = HfApi()
    url = api.create_repo("org/new")
    assert url.repo_id == "org/new" and url.endpoint == hub.url
    with pytest.raises(HfHubHTTPError) as conflict:
        api.create_repo("org/new")
    assert conflict.value.response.status_code == 409
    api.create_repo("org/new", exist_ok=True)

    (tmp_path / "nested").mkdir()
    (tmp_path / "config.json").write_bytes(_config())
    (tmp_path / "nested" / "weights.bin").write_bytes(b"\0" * 1000)
    commit = api.upload_folder(folder_path=tmp_path, repo_id="org/new", commit_message="add files")

    assert hub.count("POST", r"^/api/models/org/new/preupload/main$") == 1
    assert hub.count("POST", r"^/api/models/org/new/commit/main$") == 1
    assert commit.oid == hub.repo_sha("org/new")
    assert Path(hf_hub_download("org/new", "nested/weights.bin")).read_bytes() == b"\0" * 1000
    assert sorted(hub.repo_files("org/new")) == [".gitattributes", "config.json", "nested/weights.bin"]

    # Unchanged files are skipped client-side thanks to the oids preupload returns.
    api.upload_folder(folder_path=tmp_path, repo_id="org/new")
    assert hub.count("POST", r"/commit/main$") == 1

    pr = api.create_commit(
        "org/new",
        [CommitOperationAdd("config.json", _config("gpt2")), CommitOperationDelete("nested/")],
        commit_message="change",
        create_pr=True,
    )
    assert pr.pr_revision == "refs/pr/1" and pr.pr_num == 1
    assert Path(hf_hub_download("org/new", "config.json", revision="refs/pr/1")).read_bytes() == _config(
        "gpt2"
    )
    assert "nested/weights.bin" not in hub.repo_files("org/new", "refs/pr/1")
    assert hub.repo_files("org/new")["config.json"] == _config()  # main untouched


def test_validate_yaml_accepts_and_rejects(hub: LocalHub) -> None:
    ModelCard("---\nlicense: mit\ntags:\n- text-classification\n---\n# Fine\n").validate()
    with pytest.raises(ValueError, match="license"):
        ModelCard("---\nlicense: not-a-license\n---\n# Bad\n").validate()
    # ModelCard parses YAML client-side, so broken YAML only reaches the server posted as is.
    broken = get_session().post(
        f"{hub.url}/api/validate-yaml", json={"content": "---\nlicense: [mit\n---\n", "repoType": "model"}
    )
    assert broken.status_code == 400 and "Invalid YAML" in broken.json()["errors"][0]["message"]

    HfApi().create_repo("org/carded")
    with pytest.raises(ValueError, match=r"Invalid metadata in README\.md"):
        HfApi().upload_file(
            path_or_fileobj=b"---\ntags: 3\n---\n", path_in_repo="README.md", repo_id="org/carded"
        )
    assert hub.count("POST", r"/commit/") == 0  # rejected before any upload


def test_require_token_protects_writes(hub: LocalHub) -> None:
    hub.require_token = "hf_write"
    api = HfApi()

    with pytest.raises(HfHubHTTPError) as anonymous:
        api.create_repo("org/locked")
    assert anonymous.value.response.status_code == 401
    with pytest.raises(HfHubHTTPError) as readonly:
        api.create_repo("org/locked", token="hf_write-readonly")
    assert readonly.value.response.status_code == 403

    api.create_repo("org/locked", token="hf_write")
    api.upload_file(path_or_fileobj=b"{}", path_in_repo="config.json", repo_id="org/locked", token="hf_write")
    assert api.whoami(token="hf_write")["name"] == "tester"
    with pytest.raises(HfHubHTTPError, match="Invalid user token"):
        api.whoami(token="wrong")
    # Reads stay anonymous.
    assert Path(hf_hub_download("org/locked", "config.json")).read_bytes() == b"{}"


def test_isolated_hub_is_independent(hub: LocalHub, isolated_hub: LocalHub) -> None:
    isolated_hub.add_model("org/elsewhere", {"config.json": _config()})
    api = HfApi(endpoint=isolated_hub.url)

    assert [m.id for m in api.list_models()] == ["org/elsewhere"]
    assert Path(hf_hub_download("org/elsewhere", "config.json", endpoint=isolated_hub.url)).exists()
    assert isolated_hub.url != hub.url and hub.requests == []
