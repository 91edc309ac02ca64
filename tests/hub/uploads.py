"""What the local Hub does with an upload, apart from HTTP: preupload answers and commit payloads.

The router (:mod:`tests.hub.router`) checks the token, finds the repository and revision and
answers; these functions read the client's payload and compute the new file tree, so they can be
read (and reasoned about) without the request around them.
"""

from __future__ import annotations

import base64
import fnmatch
import json
from collections.abc import Mapping, Sequence
from typing import Any

from tests.hub.repos import Commit, HubError, clean_path, git_blob_sha


def preupload_files(commit: Commit, payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The preupload answer for each file of ``payload``, against the files of ``commit``."""
    ignore = [
        line.strip()
        for line in (payload.get("gitIgnore") or "").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    files = []
    for item in payload.get("files") or []:
        path = item["path"]
        existing = commit.files.get(path)
        should_ignore = any(
            fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path.rsplit("/", 1)[-1], pattern)
            for pattern in ignore
        )
        files.append(
            {
                "path": path,
                # Always "regular": contents then come inline (base64) in the commit, with no
                # LFS or Xet round trip.
                "uploadMode": "regular",
                "shouldIgnore": should_ignore,
                "oid": git_blob_sha(existing) if existing is not None else None,
            }
        )
    return files


def parse_commit_body(body: bytes) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]]:
    """A commit request's NDJSON body: its header and its operations, in order."""
    header: dict[str, Any] = {}
    operations: list[tuple[str, dict[str, Any]]] = []
    for line in body.splitlines():
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as err:
            raise HubError(400, f"Invalid NDJSON line: {err}") from err
        if item.get("key") == "header":
            header = item.get("value") or {}
        else:
            operations.append((item.get("key"), item.get("value") or {}))
    return header, operations


def apply_operations(
    files: Mapping[str, bytes], operations: Sequence[tuple[str, dict[str, Any]]]
) -> dict[str, bytes]:
    """The file tree after a commit's ``operations`` on ``files`` (which is left as it was)."""
    tree = dict(files)
    for key, value in operations:
        try:
            raw_path = value.get("path", "")
            # Folder deletions come with a trailing slash ("nested/").
            path = clean_path(raw_path.rstrip("/") if key == "deletedFolder" else raw_path)
        except ValueError as err:
            raise HubError(400, str(err)) from err
        if key == "file":
            if value.get("encoding", "base64") != "base64":
                raise HubError(400, f"Unsupported encoding {value.get('encoding')!r}")
            tree[path] = base64.b64decode(value.get("content", ""))
        elif key == "deletedFile":
            if tree.pop(path, None) is None:
                raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
        elif key == "deletedFolder":
            prefix = path + "/"
            doomed = [p for p in tree if p.startswith(prefix)]
            if not doomed:
                raise HubError(404, f"A folder with this name doesn't exist: {path}", "EntryNotFound")
            for p in doomed:
                del tree[p]
        elif key in ("lfsFile", "copyFile"):
            # Never requested: preupload answers "regular" for every file.
            raise HubError(400, f"LocalHub does not support {key!r} operations")
        else:
            raise HubError(400, f"Unknown commit operation {key!r}")
    return tree
