"""The local Hub's upload payloads, apart from HTTP (tests/hub/uploads.py)."""

from __future__ import annotations

import base64
import json

import pytest

from tests.hub.repos import Commit, HubError
from tests.hub.uploads import apply_operations, parse_commit_body, preupload_files


def _ndjson(*items: dict) -> bytes:
    return b"\n".join(json.dumps(item).encode() for item in items)


def test_parse_commit_body_splits_the_header_from_the_operations_in_order() -> None:
    body = _ndjson(
        {"key": "header", "value": {"summary": "add"}},
        {"key": "file", "value": {"path": "a.txt", "content": "", "encoding": "base64"}},
        {"key": "deletedFile", "value": {"path": "b.txt"}},
    )
    header, operations = parse_commit_body(body + b"\n\n")
    assert header == {"summary": "add"}
    assert [key for key, _ in operations] == ["file", "deletedFile"]


def test_parse_commit_body_answers_400_on_a_line_that_is_not_json() -> None:
    with pytest.raises(HubError) as caught:
        parse_commit_body(b'{"key": "header"}\nnot json')
    assert caught.value.status == 400


def test_apply_operations_adds_deletes_files_and_folders_without_touching_the_input() -> None:
    files = {"keep.txt": b"k", "old.txt": b"o", "nested/a": b"a", "nested/b": b"b"}
    content = base64.b64encode(b"new").decode()
    after = apply_operations(
        files,
        [
            ("file", {"path": "new.txt", "content": content}),
            ("deletedFile", {"path": "old.txt"}),
            ("deletedFolder", {"path": "nested/"}),
        ],
    )
    assert after == {"keep.txt": b"k", "new.txt": b"new"}
    assert "old.txt" in files and "nested/a" in files


@pytest.mark.parametrize(
    ("operation", "status"),
    [
        (("deletedFile", {"path": "missing.txt"}), 404),
        (("deletedFolder", {"path": "missing/"}), 404),
        (("lfsFile", {"path": "big.bin"}), 400),
        (("file", {"path": "a.txt", "content": "", "encoding": "utf-8"}), 400),
        (("rename", {"path": "a.txt"}), 400),
    ],
)
def test_apply_operations_refuses_what_the_hub_would(operation: tuple[str, dict], status: int) -> None:
    with pytest.raises(HubError) as caught:
        apply_operations({"a.txt": b"a"}, [operation])
    assert caught.value.status == status


def test_preupload_files_says_regular_gives_the_existing_oid_and_applies_gitignore() -> None:
    commit = Commit("0" * 40, None, {"a.txt": b"a"}, "init", "", "2026-01-01T00:00:00Z")
    answer = preupload_files(
        commit, {"files": [{"path": "a.txt"}, {"path": "x.log"}], "gitIgnore": "# c\n*.log\n"}
    )
    assert [item["uploadMode"] for item in answer] == ["regular", "regular"]
    assert answer[0]["oid"] is not None and answer[1]["oid"] is None
    assert [item["shouldIgnore"] for item in answer] == [False, True]
