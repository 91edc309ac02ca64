"""A local, in-process Hugging Face Hub for tests.

``LocalHub`` is a small HTTP server (stdlib ``http.server``, HTTP/1.1 with keep-alive) that speaks
enough of the Hub protocol for the *real* clients to work against it over real sockets:
``huggingface_hub.HfApi`` (listings, repo info, trees, paths-info, create_repo, upload_folder /
create_commit, whoami), ``hf_hub_download`` / ``HfFileSystem`` (resolve with ``HEAD``, ``GET`` and
``Range``), ``transformers`` ``from_pretrained`` and ``datasets.load_dataset``.

Everything is kept in memory. Each commit stores a full snapshot of the repo files, so any old
commit sha can still be downloaded. Commit shas are a deterministic hash of the repo id, the
commit counter of the repo and the file contents: two test runs that build the same repos get the
same shas, and a repo rebuilt with different contents gets different shas (which keeps the clients'
on-disk caches honest).

The server never advertises Xet (no ``X-Xet-*`` headers, no xet hashes) and answers every
preupload with ``uploadMode: "regular"``, so clients always use plain HTTP and inline (base64)
commit contents.

Usage::

    with LocalHub() as hub:
        hub.add_model("org/tiny", {"config.json": b"{}"}, downloads=10)
        HfApi(endpoint=hub.url).model_info("org/tiny")

Clients read ``HF_ENDPOINT`` at import time; see ``tests/hub/README.md`` and ``tests/conftest.py``
for how the test suite points them at the server.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import socket
import threading
from collections.abc import Iterable, Mapping
from datetime import timedelta
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.hub.handler import HubRequestHandler
from tests.hub.repos import (
    EPOCH,
    LISTING_PAGE_SIZE,
    TREE_EXPAND_PAGE_SIZE,
    TREE_PAGE_SIZE,
    Commit,
    Fault,
    FaultKind,
    HubError,
    Repo,
    RequestRecord,
    card_metadata,
    clean_path,
    git_blob_sha,
    iso,
    read_files,
    safetensors_parameters,
)

__all__ = ["FaultKind", "LocalHub", "RequestRecord", "safetensors_parameters"]


# --------------------------------------------------------------------------------------------------
# The hub


class LocalHub:
    """An in-memory Hugging Face Hub served over HTTP on 127.0.0.1.

    Args:
        root: optional scratch folder; the store itself is in memory, so it is only kept for callers
            that want a place for temporary files next to the hub.
        port: port to bind; ``0`` picks a free one.
        host: interface to bind.

    Attributes:
        url: the base URL (``http://127.0.0.1:PORT``), set once started.
        requests: every request served, in order (appended before the answer is written, so it is
            complete as soon as the client returns).
        require_token: when set, write endpoints (create/delete repo, preupload, commit, branch,
            tag) need ``Authorization: Bearer <require_token>``, else 401. A token ending in
            ``-readonly`` always gets 403 on writes.
        tree_page_size / tree_expand_page_size: page sizes of the tree endpoint (lower them to test
            pagination without thousands of files).
        listing_page_size: maximum page size of ``/api/models`` and ``/api/datasets``.
    """

    def __init__(self, root: Path | None = None, *, port: int = 0, host: str = "127.0.0.1") -> None:
        self.root = root
        self.host = host
        self._port = port
        self.url = f"http://{host}:{port}" if port else ""
        self.require_token: str | None = None
        self.tree_page_size = TREE_PAGE_SIZE
        self.tree_expand_page_size = TREE_EXPAND_PAGE_SIZE
        self.listing_page_size = LISTING_PAGE_SIZE
        self.requests: list[RequestRecord] = []
        self._lock = threading.RLock()
        self._repos: dict[tuple[str, str], Repo] = {}
        self._faults: list[Fault] = []
        self._clock = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> LocalHub:
        """Bind the socket and serve in a daemon thread; returns ``self``."""
        if self._server is not None:
            return self
        hub = self

        class Handler(HubRequestHandler):
            pass

        Handler.hub = hub
        server = ThreadingHTTPServer((self.host, self._port), Handler)
        server.daemon_threads = True
        self._server = server
        self._port = server.server_address[1]
        self.url = f"http://{self.host}:{self._port}"
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"LocalHub:{self._port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every open (keep-alive) connection."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
            self._connections.clear()
        # Idle keep-alive connections would otherwise keep being served by their handler threads.
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def port(self) -> int:
        """The bound port (``0`` before :meth:`start` when none was given)."""
        return self._port

    def __enter__(self) -> LocalHub:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget every repo, fault and recorded request, and drop ``require_token``."""
        with self._lock:
            self._repos.clear()
            self._faults.clear()
            self.requests.clear()
            self.require_token = None
            self.tree_page_size = TREE_PAGE_SIZE
            self.tree_expand_page_size = TREE_EXPAND_PAGE_SIZE
            self.listing_page_size = LISTING_PAGE_SIZE

    # -- populating --------------------------------------------------------------------------------

    def add_model(
        self,
        repo_id: str,
        files: Mapping[str, bytes] | Path | None = None,
        *,
        downloads: int = 0,
        likes: int = 0,
        gated: bool | str = False,
        pipeline_tag: str | None = None,
        library_name: str | None = "transformers",
        tags: list[str] | None = None,
        card_data: dict[str, Any] | None = None,
        license: str | None = None,
        last_modified: str | None = None,
        private: bool = False,
        **extra: Any,
    ) -> str:
        """Create (or replace) a model repo and return its commit sha.

        ``files`` is a folder (read recursively) or a mapping path -> bytes. ``gated=True`` means
        ``"auto"``. ``extra`` holds raw Hub JSON fields (``trendingScore``, ``downloadsAllTime``,
        ``createdAt``, ``transformersInfo``...) that override what the server computes.
        """
        meta = {
            "downloads": downloads,
            "likes": likes,
            "gated": gated,
            "pipeline_tag": pipeline_tag,
            "library_name": library_name,
            "tags": list(tags or []),
            "card_data": card_data,
            "license": license,
            "private": private,
            "extra": extra,
        }
        return self._add_repo("model", repo_id, files, meta, last_modified)

    def add_dataset(
        self,
        repo_id: str,
        files: Mapping[str, bytes] | Path | None = None,
        *,
        downloads: int = 0,
        likes: int = 0,
        gated: bool | str = False,
        tags: list[str] | None = None,
        card_data: dict[str, Any] | None = None,
        license: str | None = None,
        last_modified: str | None = None,
        private: bool = False,
        **extra: Any,
    ) -> str:
        """Create (or replace) a dataset repo and return its commit sha (see :meth:`add_model`)."""
        meta = {
            "downloads": downloads,
            "likes": likes,
            "gated": gated,
            "pipeline_tag": None,
            "library_name": None,
            "tags": list(tags or []),
            "card_data": card_data,
            "license": license,
            "private": private,
            "extra": extra,
        }
        return self._add_repo("dataset", repo_id, files, meta, last_modified)

    def update_file(self, repo_id: str, path: str, content: bytes, repo_type: str = "model") -> str:
        """Commit ``content`` at ``path`` on ``main`` and return the new commit sha."""
        with self._lock:
            repo = self._get_repo(repo_type, repo_id)
            head = repo.commits[repo.branches["main"]]
            files = dict(head.files)
            files[clean_path(path)] = bytes(content)
            return self._commit(repo, "main", files, f"Update {path}", "").sha

    def delete_file(self, repo_id: str, path: str, repo_type: str = "model") -> str:
        """Delete ``path`` on ``main`` and return the new commit sha."""
        with self._lock:
            repo = self._get_repo(repo_type, repo_id)
            files = dict(repo.commits[repo.branches["main"]].files)
            if files.pop(clean_path(path), None) is None:
                raise KeyError(path)
            return self._commit(repo, "main", files, f"Delete {path}", "").sha

    def remove_repo(self, repo_id: str, repo_type: str = "model") -> None:
        """Delete a repo (no-op when missing)."""
        with self._lock:
            self._repos.pop((repo_type, repo_id), None)

    def repo_files(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> dict[str, bytes]:
        """A copy of the files of a repo at ``revision`` (handy to assert what a push wrote)."""
        with self._lock:
            repo = self._get_repo(repo_type, repo_id)
            return dict(self._resolve_revision(repo, revision).files)

    def repo_sha(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> str:
        """The commit sha ``revision`` points to."""
        with self._lock:
            return self._resolve_revision(self._get_repo(repo_type, repo_id), revision).sha

    # -- faults and request log --------------------------------------------------------------------

    def inject_fault(
        self,
        path_pattern: str,
        kind: FaultKind | str,
        times: int = 1,
        retry_after: int | None = 1,
        method: str | None = None,
    ) -> None:
        """Make the next ``times`` matching requests fail.

        A request matches when ``re.search(path_pattern, ...)`` finds the pattern in its decoded
        path or in ``path?query`` (and, if given, its method is ``method``). ``"drop"`` reads the
        request and closes the socket without any response. Any other kind is a status code
        (``"429"``, ``"500"``, ``"401"``, ``"503"``...) answered with the Hub's error message for it
        and, when ``retry_after`` is not None, a ``Retry-After`` header.
        """
        if kind != "drop" and not re.fullmatch(r"[1-5]\d\d", kind):
            raise ValueError(f"unknown fault kind {kind!r}: use 'drop' or an HTTP status code such as '429'")
        with self._lock:
            self._faults.append(
                Fault(re.compile(path_pattern), kind, times, retry_after, method.upper() if method else None)
            )

    def clear_faults(self) -> None:
        """Remove every pending fault."""
        with self._lock:
            self._faults.clear()

    def count(self, method: str, path_pattern: str) -> int:
        """How many recorded requests have ``method`` (``"*"`` for any) and match ``path_pattern``.

        Matching is as for :meth:`inject_fault`.
        """
        regex = re.compile(path_pattern)
        with self._lock:
            records = list(self.requests)
        return sum(
            1
            for r in records
            if (method == "*" or r.method == method.upper()) and (regex.search(r.path) or regex.search(r.url))
        )

    def find(self, method: str, path_pattern: str) -> list[RequestRecord]:
        """The recorded requests :meth:`count` would count."""
        regex = re.compile(path_pattern)
        with self._lock:
            records = list(self.requests)
        return [
            r
            for r in records
            if (method == "*" or r.method == method.upper()) and (regex.search(r.path) or regex.search(r.url))
        ]

    def clear_requests(self) -> None:
        """Forget the recorded requests."""
        with self._lock:
            self.requests.clear()

    # -- store internals ---------------------------------------------------------------------------

    def _tick(self) -> str:
        self._clock += 1
        return iso(EPOCH + timedelta(seconds=self._clock))

    def _add_repo(
        self,
        repo_type: str,
        repo_id: str,
        files: Mapping[str, bytes] | Path | None,
        meta: dict[str, Any],
        last_modified: str | None,
    ) -> str:
        # 'name' alone is a canonical repo of the early Hub (bert-base-uncased, imdb), still served by
        # that id: the paper's released matrices name such models.
        if repo_id.count("/") > 1 or not all(repo_id.split("/")):
            raise ValueError(f"repo_id must look like 'namespace/name' or 'name', got {repo_id!r}")
        contents = read_files(files)
        with self._lock:
            created = meta["extra"].get("createdAt") or self._tick()
            repo = Repo(repo_type=repo_type, repo_id=repo_id, meta=meta, created_at=created)
            self._repos[(repo_type, repo_id)] = repo
            commit = self._commit(repo, "main", contents, "Initial commit", "")
            if last_modified is not None:
                repo.last_modified = last_modified
            return commit.sha

    def _commit(self, repo: Repo, branch: str, files: dict[str, bytes], title: str, message: str) -> Commit:
        """Record a new commit on ``branch`` (or on ``refs/pr/N``) with the full snapshot ``files``."""
        repo.counter += 1
        digest = hashlib.sha1(f"{repo.repo_type}/{repo.repo_id}\n{repo.counter}\n".encode())
        for path in sorted(files):
            digest.update(f"{path}\0{git_blob_sha(files[path])}\n".encode())
        parent = self._ref_target(repo, branch)
        commit = Commit(digest.hexdigest(), parent, files, title, message, self._tick())
        repo.commits[commit.sha] = commit
        self._set_ref(repo, branch, commit.sha)
        repo.last_modified = commit.date
        return commit

    @staticmethod
    def _ref_target(repo: Repo, ref: str) -> str | None:
        if ref.startswith("refs/pr/"):
            number = ref.removeprefix("refs/pr/")
            return repo.pulls.get(int(number)) if number.isdigit() else None
        return repo.branches.get(ref.removeprefix("refs/heads/"))

    @staticmethod
    def _set_ref(repo: Repo, ref: str, sha: str) -> None:
        if ref.startswith("refs/pr/"):
            repo.pulls[int(ref.removeprefix("refs/pr/"))] = sha
        else:
            repo.branches[ref.removeprefix("refs/heads/")] = sha

    def _get_repo(self, repo_type: str, repo_id: str) -> Repo:
        repo = self._repos.get((repo_type, repo_id))
        if repo is None:
            raise KeyError(f"no {repo_type} repo {repo_id!r}")
        return repo

    def _resolve_revision(self, repo: Repo, revision: str) -> Commit:
        sha = self._ref_target(repo, revision)
        if sha is None:
            sha = repo.tags.get(revision.removeprefix("refs/tags/"))
        if sha is None and revision in repo.commits:
            sha = revision
        if sha is None and re.fullmatch(r"[0-9a-f]{7,39}", revision):
            matches = [s for s in repo.commits if s.startswith(revision)]
            sha = matches[0] if len(matches) == 1 else None
        if sha is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return repo.commits[sha]

    def _last_commit_touching(self, repo: Repo, commit: Commit, path: str, is_dir: bool) -> Commit:
        """The oldest ancestor of ``commit`` since which ``path`` has not changed."""

        def state(c: Commit) -> Any:
            if is_dir:
                prefix = path + "/"
                return sorted((p, git_blob_sha(b)) for p, b in c.files.items() if p.startswith(prefix))
            blob = c.files.get(path)
            return None if blob is None else git_blob_sha(blob)

        current = commit
        wanted = state(commit)
        while current.parent is not None and current.parent in repo.commits:
            parent = repo.commits[current.parent]
            if state(parent) != wanted:
                break
            current = parent
        return current

    # -- JSON views --------------------------------------------------------------------------------

    def _info_fields(self, repo: Repo, commit: Commit) -> dict[str, Any]:
        """Every field the server can compute for a repo at a commit (the Hub's camelCase keys).

        Returns a fresh shallow copy (callers may edit it); the computation itself is cached.
        """
        key = (commit.sha, repo.last_modified)
        if key not in repo.info_cache:
            repo.info_cache[key] = self._compute_info_fields(repo, commit)
        return dict(repo.info_cache[key])

    def _compute_info_fields(self, repo: Repo, commit: Commit) -> dict[str, Any]:
        meta = repo.meta
        files = commit.files
        config: dict[str, Any] | None = None
        if repo.repo_type == "model" and "config.json" in files:
            try:
                loaded = json.loads(files["config.json"])
                config = loaded if isinstance(loaded, dict) else None
            except ValueError:
                config = None
        card_data = meta["card_data"]
        if card_data is None:
            card_data = card_metadata(files.get("README.md"))
        if meta["license"] and not (card_data or {}).get("license"):
            card_data = {**(card_data or {}), "license": meta["license"]}
        license_ = meta["license"] or (card_data or {}).get("license")

        # Tags as the Hub computes them: library, model type, task, format hints, card tags,
        # license; first occurrence wins.
        tags: list[str] = []
        if meta["library_name"]:
            tags.append(meta["library_name"])
        if config and isinstance(config.get("model_type"), str):
            tags.append(config["model_type"])
        if any(p.endswith(".safetensors") for p in files):
            tags.append("safetensors")
        if any(p.endswith(".parquet") for p in files):
            tags.append("format:parquet")
        if meta["pipeline_tag"]:
            tags.append(meta["pipeline_tag"])
        tags.extend(meta["tags"])
        card_tags = (card_data or {}).get("tags")
        if isinstance(card_tags, list):
            tags.extend(t for t in card_tags if isinstance(t, str))
        if isinstance(license_, str):
            tags.append(f"license:{license_}")
        tags = list(dict.fromkeys(tags))

        gated = meta["gated"]
        if gated is True:
            gated = "auto"
        out: dict[str, Any] = {
            "_id": hashlib.sha1(f"{repo.repo_type}/{repo.repo_id}".encode()).hexdigest()[:24],
            "id": repo.repo_id,
            "author": repo.repo_id.split("/")[0],
            "sha": commit.sha,
            "lastModified": repo.last_modified if commit.sha == repo.branches.get("main") else commit.date,
            "createdAt": repo.created_at,
            "private": bool(meta["private"]),
            "gated": gated or False,
            "disabled": False,
            "downloads": meta["downloads"],
            "downloadsAllTime": meta["downloads"],
            "likes": meta["likes"],
            "trendingScore": 0,
            "tags": tags,
            "siblings": [{"rfilename": p} for p in sorted(files)],
            "usedStorage": sum(len(b) for b in files.values()),
        }
        if card_data is not None:
            out["cardData"] = card_data
        if repo.repo_type == "model":
            out["modelId"] = repo.repo_id
            out["library_name"] = meta["library_name"]
            out["pipeline_tag"] = meta["pipeline_tag"]
            out["spaces"] = []
            if config is not None:
                out["config"] = config
            if card_data and "model-index" in card_data:
                out["model-index"] = card_data["model-index"]
            params: dict[str, int] = {}
            for path, blob in files.items():
                if path.endswith(".safetensors") and "/" not in path:
                    for dtype, n in safetensors_parameters(blob).items():
                        params[dtype] = params.get(dtype, 0) + n
            if params:
                out["safetensors"] = {"parameters": params, "total": sum(params.values())}
        elif repo.repo_type == "dataset":
            out["description"] = (card_data or {}).get("description")
            out["citation"] = None
            out["paperswithcode_id"] = (card_data or {}).get("paperswithcode_id")
            out["mainSize"] = out["usedStorage"]
        out.update(meta["extra"])
        return out

    @staticmethod
    def _select(info: dict[str, Any], names: Iterable[str]) -> dict[str, Any]:
        return {name: info[name] for name in names if name in info}

    def _tree_entry(self, repo: Repo, commit: Commit, path: str, expand: bool) -> dict[str, Any]:
        if path in commit.files:
            blob = commit.files[path]
            entry: dict[str, Any] = {
                "type": "file",
                "oid": git_blob_sha(blob),
                "size": len(blob),
                "path": path,
            }
        else:
            prefix = path + "/"
            listing = "".join(
                f"{p}\0{git_blob_sha(b)}\n" for p, b in sorted(commit.files.items()) if p.startswith(prefix)
            )
            entry = {
                "type": "directory",
                "oid": hashlib.sha1(listing.encode()).hexdigest(),
                "size": 0,
                "path": path,
            }
        if expand:
            last = self._last_commit_touching(repo, commit, path, entry["type"] == "directory")
            entry["lastCommit"] = {"id": last.sha, "title": last.title, "date": last.date}
        return entry

    @staticmethod
    def _directories(files: Iterable[str]) -> set[str]:
        dirs: set[str] = set()
        for path in files:
            parts = path.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                dirs.add("/".join(parts[:i]))
        return dirs
