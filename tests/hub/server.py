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

import base64
import contextlib
import fnmatch
import hashlib
import json
import math
import re
import socket
import struct
import threading
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

import yaml

__all__ = ["FaultKind", "LocalHub", "RequestRecord"]

# "drop" closes the socket without answering; any other kind is an HTTP status code to answer with
# ("429" and "500" are the usual ones; "401", "403", "503"... work too).
FaultKind = Literal["429", "500", "drop"]

# Error messages the real Hub sends with these statuses, reused for injected faults.
_FAULT_MESSAGES = {
    401: "Invalid credentials in Authorization header",
    403: "You don't have the rights to access this resource",
    429: "You have exceeded our hourly quotas for action: api. Retry later.",
    500: "Internal Error - We're working hard to fix this as soon as possible!",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}

# The user every request acts as. Writes without an ``organization`` land in this namespace.
USER_NAME = "tester"

# Page sizes of the real Hub: listings return at most 100 repos per page in this server (the brief
# of the test suite; the real Hub uses up to 1000), trees 1000 entries (50 with ``expand``).
LISTING_PAGE_SIZE = 100
TREE_PAGE_SIZE = 1000
TREE_EXPAND_PAGE_SIZE = 50

# Dates are derived from a logical clock (one tick per repo creation or commit) rather than the wall
# clock, so listings sorted by date are deterministic.
_EPOCH = datetime(2024, 1, 1, tzinfo=timezone.utc)

_REPO_TYPES_PLURAL = {"models": "model", "datasets": "dataset", "spaces": "space"}
_URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}


def _words(text: str) -> frozenset[str]:
    """A set of names written as whitespace-separated words (keeps long name lists compact)."""
    return frozenset(text.split())


# Same regex as huggingface_hub.repocard.REGEX_YAML_BLOCK: the YAML front matter of a card.
_YAML_BLOCK = re.compile(r"^(\s*---(?:\r\n|\r|\n))([\S\s]*?)((?:\r\n|\r|\n)---[ \t]*(\r\n|\n|$))")

_MODEL_EXPAND = _words(
    """
    author baseModels cardData childrenModelCount config createdAt disabled downloads downloadsAllTime
    evalResults gated gguf inference inferenceProviderMapping lastModified library_name likes mask_token
    model-index pipeline_tag private safetensors sha siblings spaces tags transformersInfo trendingScore
    widgetData usedStorage resourceGroup
    """
)
_DATASET_EXPAND = _words(
    """
    author cardData citation createdAt disabled description downloads downloadsAllTime gated
    lastModified likes mainSize paperswithcode_id private siblings sha tags trendingScore usedStorage
    resourceGroup
    """
)
_SPACE_EXPAND = _words(
    """
    author cardData createdAt disabled lastModified likes private sdk sha siblings tags trendingScore
    usedStorage
    """
)
_EXPANDABLE = {"model": _MODEL_EXPAND, "dataset": _DATASET_EXPAND, "space": _SPACE_EXPAND}

# What a listing returns without ``expand`` (what the real Hub sends, minus what we cannot compute).
_LIST_DEFAULT_FIELDS = {
    "model": (
        "_id",
        "id",
        "likes",
        "trendingScore",
        "private",
        "downloads",
        "tags",
        "pipeline_tag",
        "library_name",
        "createdAt",
        "modelId",
    ),
    "dataset": (
        "_id",
        "id",
        "author",
        "cardData",
        "disabled",
        "gated",
        "lastModified",
        "likes",
        "trendingScore",
        "private",
        "sha",
        "description",
        "downloads",
        "tags",
        "createdAt",
        "citation",
        "paperswithcode_id",
    ),
    "space": ("_id", "id", "likes", "trendingScore", "private", "sdk", "tags", "createdAt"),
}
_LIST_FULL_FIELDS = ("author", "sha", "lastModified", "gated", "disabled", "siblings", "cardData")

# Sort keys accepted by the listing endpoints, with their default direction (the Hub sorts
# descending unless told otherwise; ids read naturally ascending).
_SORT_KEYS = {
    "downloads": "downloads",
    "likes": "likes",
    "lastModified": "lastModified",
    "createdAt": "createdAt",
    "trendingScore": "trendingScore",
    "downloadsAllTime": "downloadsAllTime",
    "id": "id",
    "modelId": "id",
}

# A representative subset of the license ids the Hub accepts in card metadata.
KNOWN_LICENSES = _words(
    """
    apache-2.0 mit openrail bigscience-openrail-m creativeml-openrail-m bigscience-bloom-rail-1.0
    bigcode-openrail-m afl-3.0 artistic-2.0 bsl-1.0 bsd bsd-2-clause bsd-3-clause bsd-3-clause-clear
    c-uda cc cc0-1.0 cc-by-2.0 cc-by-2.5 cc-by-3.0 cc-by-4.0 cc-by-sa-3.0 cc-by-sa-4.0 cc-by-nc-2.0
    cc-by-nc-3.0 cc-by-nc-4.0 cc-by-nd-4.0 cc-by-nc-nd-3.0 cc-by-nc-nd-4.0 cc-by-nc-sa-2.0
    cc-by-nc-sa-3.0 cc-by-nc-sa-4.0 cdla-sharing-1.0 cdla-permissive-1.0 cdla-permissive-2.0 wtfpl
    ecl-2.0 epl-1.0 epl-2.0 etalab-2.0 eupl-1.1 eupl-1.2 agpl-3.0 gfdl gpl gpl-2.0 gpl-3.0 lgpl lgpl-2.1
    lgpl-3.0 isc h-research intel-research lppl-1.3c ms-pl apple-ascl apple-amlr mpl-2.0 odc-by odbl
    openrail++ osl-3.0 postgresql ofl-1.1 ncsa unlicense zlib pddl lgpl-lr deepfloyd-if-license
    fair-noncommercial-research-license llama2 llama3 llama3.1 llama3.2 llama3.3 llama4 gemma unknown
    other
    """
)

# The ``.gitattributes`` the Hub puts in the initial commit of a repo created through the API.
_GITATTRIBUTES = (
    b"*.bin filter=lfs diff=lfs merge=lfs -text\n"
    b"*.parquet filter=lfs diff=lfs merge=lfs -text\n"
    b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
    b"*.pt filter=lfs diff=lfs merge=lfs -text\n"
)


# --------------------------------------------------------------------------------------------------
# Public records


@dataclass(frozen=True)
class RequestRecord:
    """One request the server answered (or dropped).

    Attributes:
        method: HTTP method, upper case.
        path: the URL path, percent-decoded (``/api/models/org/x/revision/refs/pr/1``).
        query: the query string parsed with ``parse_qs`` (every value is a list).
        status: the status code sent back; ``0`` when a ``"drop"`` fault closed the socket.
        headers: the request headers, names lower-cased.
        raw_query: the query string as sent.
    """

    method: str
    path: str
    query: dict[str, list[str]]
    status: int
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    raw_query: str = field(default="", repr=False)

    @property
    def url(self) -> str:
        """The decoded path followed by the raw query string, as fault and count patterns see it."""
        return f"{self.path}?{self.raw_query}" if self.raw_query else self.path


@dataclass
class _Fault:
    pattern: re.Pattern[str]
    kind: str
    remaining: int
    retry_after: int | None
    method: str | None


@dataclass
class _Commit:
    sha: str
    parent: str | None
    files: dict[str, bytes]
    title: str
    message: str
    date: str


@dataclass
class _Repo:
    repo_type: str
    repo_id: str
    meta: dict[str, Any]
    created_at: str
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    pulls: dict[int, str] = field(default_factory=dict)
    commits: dict[str, _Commit] = field(default_factory=dict)
    counter: int = 0
    last_modified: str = ""
    # Computed info per (commit sha, last_modified): listings recompute every repo on every page.
    info_cache: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)


@dataclass
class _Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)


class _HubError(Exception):
    """An error answer, shaped like the Hub's (``X-Error-Code`` / ``X-Error-Message`` + JSON body)."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = list(headers)
        self.extra = dict(extra or {})


# --------------------------------------------------------------------------------------------------
# Small helpers


def git_blob_sha(data: bytes) -> str:
    """The git blob id of ``data`` (what ``git hash-object`` prints and the Hub uses as oid)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def safetensors_parameters(data: bytes) -> dict[str, int]:
    """Parameter counts per dtype read from a safetensors header (8-byte LE length, then JSON)."""
    if len(data) < 8:
        return {}
    (length,) = struct.unpack("<Q", data[:8])
    try:
        header = json.loads(data[8 : 8 + length])
    except ValueError:
        return {}
    counts: dict[str, int] = {}
    for name, tensor in header.items():
        if name == "__metadata__" or not isinstance(tensor, dict):
            continue
        counts[tensor["dtype"]] = counts.get(tensor["dtype"], 0) + math.prod(tensor.get("shape", []))
    return counts


def _card_metadata(readme: bytes | None) -> dict[str, Any] | None:
    """The YAML front matter of a card as a dict, or ``None`` when absent or unreadable."""
    if readme is None:
        return None
    match = _YAML_BLOCK.search(readme.decode("utf-8", errors="replace"))
    if match is None:
        return None
    try:
        data = yaml.safe_load(match.group(2))
    except yaml.YAMLError:
        return None
    return data if isinstance(data, dict) else None


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _read_files(files: Mapping[str, bytes] | Path | str | None) -> dict[str, bytes]:
    """Normalise ``files`` (a folder read recursively, or a mapping path -> bytes) to a dict."""
    if files is None:
        return {}
    if isinstance(files, (str, Path)):
        root = Path(files)
        if not root.is_dir():
            raise ValueError(f"{root} is not a directory")
        return {
            p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*"))
            if p.is_file() and ".cache" not in p.relative_to(root).parts
        }
    out: dict[str, bytes] = {}
    for path, content in files.items():
        out[_clean_path(path)] = content.encode() if isinstance(content, str) else bytes(content)
    return out


def _clean_path(path: str) -> str:
    path = path.lstrip("/")
    if not path or any(part in ("", ".", "..") for part in path.split("/")):
        raise ValueError(f"invalid path in repo: {path!r}")
    return path


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() in {"1", "true", "yes", "on"}


def _bearer(headers: Mapping[str, str]) -> str | None:
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        token = auth[7:].strip()
        return token or None
    return None


def _content_type(path: str) -> str:
    if path.endswith(".json"):
        return "application/json"
    if path.endswith((".md", ".txt", ".yaml", ".yml", ".jinja", ".py", ".csv", ".jsonl", ".gitattributes")):
        return "text/plain; charset=utf-8"
    return "application/octet-stream"


def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        offset = int(json.loads(base64.urlsafe_b64decode(padded))["offset"])
    except (ValueError, KeyError, TypeError) as err:
        raise _HubError(400, f"Invalid cursor: {cursor}") from err
    if offset < 0:
        raise _HubError(400, f"Invalid cursor: {cursor}")
    return offset


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
        self._repos: dict[tuple[str, str], _Repo] = {}
        self._faults: list[_Fault] = []
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

        class Handler(_Handler):
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
            files[_clean_path(path)] = bytes(content)
            return self._commit(repo, "main", files, f"Update {path}", "").sha

    def delete_file(self, repo_id: str, path: str, repo_type: str = "model") -> str:
        """Delete ``path`` on ``main`` and return the new commit sha."""
        with self._lock:
            repo = self._get_repo(repo_type, repo_id)
            files = dict(repo.commits[repo.branches["main"]].files)
            if files.pop(_clean_path(path), None) is None:
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
                _Fault(re.compile(path_pattern), kind, times, retry_after, method.upper() if method else None)
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
        return _iso(_EPOCH + timedelta(seconds=self._clock))

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
        contents = _read_files(files)
        with self._lock:
            created = meta["extra"].get("createdAt") or self._tick()
            repo = _Repo(repo_type=repo_type, repo_id=repo_id, meta=meta, created_at=created)
            self._repos[(repo_type, repo_id)] = repo
            commit = self._commit(repo, "main", contents, "Initial commit", "")
            if last_modified is not None:
                repo.last_modified = last_modified
            return commit.sha

    def _commit(self, repo: _Repo, branch: str, files: dict[str, bytes], title: str, message: str) -> _Commit:
        """Record a new commit on ``branch`` (or on ``refs/pr/N``) with the full snapshot ``files``."""
        repo.counter += 1
        digest = hashlib.sha1(f"{repo.repo_type}/{repo.repo_id}\n{repo.counter}\n".encode())
        for path in sorted(files):
            digest.update(f"{path}\0{git_blob_sha(files[path])}\n".encode())
        parent = self._ref_target(repo, branch)
        commit = _Commit(digest.hexdigest(), parent, files, title, message, self._tick())
        repo.commits[commit.sha] = commit
        self._set_ref(repo, branch, commit.sha)
        repo.last_modified = commit.date
        return commit

    @staticmethod
    def _ref_target(repo: _Repo, ref: str) -> str | None:
        if ref.startswith("refs/pr/"):
            number = ref.removeprefix("refs/pr/")
            return repo.pulls.get(int(number)) if number.isdigit() else None
        return repo.branches.get(ref.removeprefix("refs/heads/"))

    @staticmethod
    def _set_ref(repo: _Repo, ref: str, sha: str) -> None:
        if ref.startswith("refs/pr/"):
            repo.pulls[int(ref.removeprefix("refs/pr/"))] = sha
        else:
            repo.branches[ref.removeprefix("refs/heads/")] = sha

    def _get_repo(self, repo_type: str, repo_id: str) -> _Repo:
        repo = self._repos.get((repo_type, repo_id))
        if repo is None:
            raise KeyError(f"no {repo_type} repo {repo_id!r}")
        return repo

    def _resolve_revision(self, repo: _Repo, revision: str) -> _Commit:
        sha = self._ref_target(repo, revision)
        if sha is None:
            sha = repo.tags.get(revision.removeprefix("refs/tags/"))
        if sha is None and revision in repo.commits:
            sha = revision
        if sha is None and re.fullmatch(r"[0-9a-f]{7,39}", revision):
            matches = [s for s in repo.commits if s.startswith(revision)]
            sha = matches[0] if len(matches) == 1 else None
        if sha is None:
            raise _HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return repo.commits[sha]

    def _last_commit_touching(self, repo: _Repo, commit: _Commit, path: str, is_dir: bool) -> _Commit:
        """The oldest ancestor of ``commit`` since which ``path`` has not changed."""

        def state(c: _Commit) -> Any:
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

    def _info_fields(self, repo: _Repo, commit: _Commit) -> dict[str, Any]:
        """Every field the server can compute for a repo at a commit (the Hub's camelCase keys).

        Returns a fresh shallow copy (callers may edit it); the computation itself is cached.
        """
        key = (commit.sha, repo.last_modified)
        if key not in repo.info_cache:
            repo.info_cache[key] = self._compute_info_fields(repo, commit)
        return dict(repo.info_cache[key])

    def _compute_info_fields(self, repo: _Repo, commit: _Commit) -> dict[str, Any]:
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
            card_data = _card_metadata(files.get("README.md"))
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

    def _tree_entry(self, repo: _Repo, commit: _Commit, path: str, expand: bool) -> dict[str, Any]:
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


# --------------------------------------------------------------------------------------------------
# HTTP handling


class _Handler(BaseHTTPRequestHandler):
    """Request handler; ``hub`` is set on a per-server subclass."""

    hub: LocalHub
    protocol_version = "HTTP/1.1"  # keep-alive, which the clients' connection pools rely on
    server_version = "LocalHub/1.0"
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle + delayed ACKs add
    # ~40 ms to every keep-alive request.
    disable_nagle_algorithm = True
    # An idle keep-alive connection is closed after this many seconds.
    timeout = 30

    def setup(self) -> None:
        super().setup()
        with self.hub._lock:
            self.hub._connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.hub._lock:
                self.hub._connections.discard(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log (the request log is ``LocalHub.requests``)."""

    def do_GET(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    # -- plumbing ----------------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size_line = self.rfile.readline()
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    # Trailers end with an empty line.
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        hub = self.hub
        split = urlsplit(self.path)
        path = unquote(split.path)
        query = parse_qs(split.query, keep_blank_values=True)
        headers = {k.lower(): v for k, v in self.headers.items()}
        body = self._read_body()
        method = self.command
        url = f"{path}?{split.query}" if split.query else path

        fault = self._take_fault(method, path, url)
        if fault is not None and fault.kind == "drop":
            self._record(method, path, query, 0, headers, split.query)
            self.close_connection = True
            return  # the socket closes without a single byte of response
        if fault is not None:
            status = int(fault.kind)
            extra = [("Retry-After", str(fault.retry_after))] if fault.retry_after is not None else []
            message = _FAULT_MESSAGES.get(status, f"Injected fault {fault.kind}")
            response = _error_response(_HubError(status, message, headers=extra))
        else:
            try:
                response = _Router(
                    hub, method, split.path, query, headers, body, self._base_url(headers)
                ).route()
            except _HubError as err:
                response = _error_response(err)
            except Exception as err:  # a bug in the server must surface as a 500, not a hung client
                response = _error_response(_HubError(500, f"LocalHub internal error: {err!r}"))
                traceback.print_exc()
        self._record(method, path, query, response.status, headers, split.query)
        self._send(method, response)

    def _take_fault(self, method: str, path: str, url: str) -> _Fault | None:
        with self.hub._lock:
            for fault in self.hub._faults:
                if fault.remaining <= 0 or (fault.method is not None and fault.method != method):
                    continue
                if fault.pattern.search(path) or fault.pattern.search(url):
                    fault.remaining -= 1
                    return fault
        return None

    def _record(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        status: int,
        headers: dict[str, str],
        raw_query: str,
    ) -> None:
        # Recorded before the answer is written: once the client has its answer, the log has it.
        with self.hub._lock:
            self.hub.requests.append(RequestRecord(method, path, query, status, headers, raw_query))

    def _base_url(self, headers: Mapping[str, str]) -> str:
        # Absolute URLs (pagination links, commit and repo URLs) use the host the client asked for,
        # so that they match the client's endpoint whatever name it used for this server.
        host = headers.get("host")
        return f"http://{host}" if host else self.hub.url

    def _send(self, method: str, response: _Response) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        # A HEAD answer carries the Content-Length of the matching GET, without the body.
        self.send_header("Content-Length", str(len(response.body)))
        self.send_header("X-Request-Id", f"localhub-{len(self.hub.requests)}")
        self.end_headers()
        if method != "HEAD" and response.body:
            self.wfile.write(response.body)


def _json_response(data: Any, status: int = 200, headers: Iterable[tuple[str, str]] = ()) -> _Response:
    body = json.dumps(data).encode()
    return _Response(status, body, [("Content-Type", "application/json; charset=utf-8"), *headers])


def _error_response(err: _HubError) -> _Response:
    headers = list(err.headers)
    if err.code:
        headers.append(("X-Error-Code", err.code))
    # Header values must be one latin-1 line; the JSON body keeps the message as is.
    one_line = " ".join(err.message.split()).encode("ascii", "backslashreplace").decode()
    headers.append(("X-Error-Message", one_line))
    return _json_response({"error": err.message, **err.extra}, err.status, headers)


class _Router:
    """Dispatch of one request to the endpoint implementing it."""

    def __init__(
        self,
        hub: LocalHub,
        method: str,
        raw_path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
        base_url: str,
    ) -> None:
        self.hub = hub
        self.method = method
        # Segments are decoded one by one: clients send revisions and tree paths percent-encoded
        # as a single segment (``refs%2Fpr%2F1``, ``data%2Ftrain``).
        self.segments = [unquote(s) for s in raw_path.split("/")[1:]]
        self.query = query
        self.headers = headers
        self.body = body
        self.base_url = base_url
        self.token = _bearer(headers)

    # -- helpers -----------------------------------------------------------------------------------

    def q(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None

    def q_list(self, name: str) -> list[str]:
        values = [*self.query.get(name, []), *self.query.get(f"{name}[]", [])]
        return [part for value in values for part in value.split(",") if part]

    def not_found(self) -> _HubError:
        return _HubError(
            404,
            f"Sorry, we can't find the page you are looking for: {self.method} /{'/'.join(self.segments)}",
        )

    def repo_url(self, repo_type: str, repo_id: str) -> str:
        return f"{self.base_url}/{_URL_PREFIX[repo_type]}{repo_id}"

    def check_write(self) -> None:
        """Authorization of write endpoints (see ``LocalHub.require_token``)."""
        token = self.token
        if token is not None and token.endswith("-readonly"):
            raise _HubError(
                403, "You don't have the rights to perform this operation: your token is read-only"
            )
        required = self.hub.require_token
        if required is not None and token != required:
            raise _HubError(401, "Invalid credentials in Authorization header")

    def find_repo(self, repo_type: str, repo_id: str) -> _Repo:
        """The repo, or the Hub's answer for a missing one (401 anonymous, 404 authenticated)."""
        repo = self.hub._repos.get((repo_type, repo_id))
        if repo is None or (repo.meta["private"] and self.token is None):
            status = 404 if self.token is not None else 401
            raise _HubError(status, "Repository not found", "RepoNotFound")
        return repo

    @staticmethod
    def take_revision(parts: list[str]) -> tuple[str, list[str]]:
        """Split ``parts`` into a revision and the rest; ``refs/pr/1`` may come unencoded."""
        if not parts:
            return "main", []
        if parts[0] == "refs" and len(parts) >= 3:
            return "/".join(parts[:3]), parts[3:]
        return parts[0], parts[1:]

    def json_body(self) -> Any:
        try:
            return json.loads(self.body or b"{}")
        except ValueError as err:
            raise _HubError(400, f"Invalid JSON body: {err}") from err

    def next_link(self, offset: int) -> tuple[str, str]:
        """A GitHub-style ``Link`` header to the same URL, with ``cursor`` pointing at ``offset``."""
        pairs = [(k, v) for k, values in self.query.items() if k != "cursor" for v in values]
        pairs.append(("cursor", _encode_cursor(offset)))
        path = "/" + "/".join(quote(s, safe="") for s in self.segments)
        return ("Link", f'<{self.base_url}{path}?{urlencode(pairs)}>; rel="next"')

    # -- dispatch ----------------------------------------------------------------------------------

    def route(self) -> _Response:
        s = self.segments
        m = self.method
        with self.hub._lock:
            if s and s[0] == "api":
                return self.route_api(s[1:])
            # File downloads: /{ns}/{name}/resolve/... and /datasets|spaces/{ns}/{name}/resolve/...
            if m in ("GET", "HEAD"):
                canonical = self.canonical_resolve(s)
                if canonical is not None:
                    return canonical
                if len(s) >= 5 and s[0] in ("datasets", "spaces") and s[3] == "resolve":
                    return self.resolve(_REPO_TYPES_PLURAL[s[0]], f"{s[1]}/{s[2]}", s[4:])
                if len(s) >= 4 and s[2] == "resolve":
                    return self.resolve("model", f"{s[0]}/{s[1]}", s[3:])
            raise self.not_found()

    def canonical_resolve(self, s: list[str]) -> _Response | None:
        """A download from a canonical repo (``/name/resolve/...``), or None for any other path."""
        if len(s) >= 4 and s[0] in ("datasets", "spaces") and s[2] == "resolve":
            repo_type, name, parts = _REPO_TYPES_PLURAL[s[0]], s[1], s[3:]
        elif len(s) >= 3 and s[1] == "resolve":
            repo_type, name, parts = "model", s[0], s[2:]
        else:
            return None
        if (repo_type, name) not in self.hub._repos:
            return None
        return self.resolve(repo_type, name, parts)

    def route_api(self, s: list[str]) -> _Response:
        m = self.method
        if s == ["whoami-v2"] and m == "GET":
            return self.whoami()
        if s == ["agent-harnesses"] and m == "GET":
            return _json_response({"standardEnvVars": [], "harnesses": {}})
        if s == ["validate-yaml"] and m == "POST":
            return self.validate_yaml()
        if s == ["repos", "create"] and m == "POST":
            return self.create_repo()
        if s == ["repos", "delete"] and m == "DELETE":
            return self.delete_repo()
        if not s or s[0] not in _REPO_TYPES_PLURAL:
            raise self.not_found()
        repo_type = _REPO_TYPES_PLURAL[s[0]]
        if len(s) == 1 and m in ("GET", "HEAD"):
            return self.list_repos(repo_type)
        repos = self.hub._repos
        if (repo_type, s[1]) in repos and not (len(s) >= 3 and (repo_type, f"{s[1]}/{s[2]}") in repos):
            repo_id, rest = s[1], s[2:]  # a canonical repo: 'name' alone
        elif len(s) < 3:
            raise self.not_found()
        else:
            repo_id, rest = f"{s[1]}/{s[2]}", s[3:]
        action = rest[0] if rest else None
        if action is None and m in ("GET", "HEAD"):
            return self.repo_info(repo_type, repo_id, "main")
        if action == "revision" and m in ("GET", "HEAD") and len(rest) >= 2:
            revision, extra = self.take_revision(rest[1:])
            if extra:
                raise self.not_found()
            return self.repo_info(repo_type, repo_id, revision)
        if action == "tree" and m in ("GET", "HEAD"):
            revision, path = self.take_revision(rest[1:])
            return self.tree(repo_type, repo_id, revision, "/".join(path))
        if action == "paths-info" and m == "POST":
            revision, _ = self.take_revision(rest[1:])
            return self.paths_info(repo_type, repo_id, revision)
        if action == "preupload" and m == "POST":
            revision, _ = self.take_revision(rest[1:])
            return self.preupload(repo_type, repo_id, revision)
        if action == "commit" and m == "POST":
            revision, _ = self.take_revision(rest[1:])
            return self.commit(repo_type, repo_id, revision)
        if action == "refs" and m == "GET":
            return self.refs(repo_type, repo_id)
        if action == "commits" and m == "GET":
            revision, _ = self.take_revision(rest[1:])
            return self.commits(repo_type, repo_id, revision)
        if action == "branch" and m in ("POST", "DELETE") and len(rest) >= 2:
            return self.branch(repo_type, repo_id, "/".join(rest[1:]))
        if action == "tag" and m == "POST" and len(rest) >= 2:
            revision, _ = self.take_revision(rest[1:])
            return self.tag(repo_type, repo_id, revision)
        raise self.not_found()

    # -- endpoints: account and cards --------------------------------------------------------------

    def whoami(self) -> _Response:
        token = self.token
        if token is None:
            raise _HubError(401, "Invalid credentials in Authorization header")
        required = self.hub.require_token
        readonly = token.endswith("-readonly")
        if required is not None and token != required and not readonly:
            raise _HubError(401, "Invalid credentials in Authorization header")
        return _json_response(
            {
                "type": "user",
                "id": hashlib.sha1(USER_NAME.encode()).hexdigest()[:24],
                "name": USER_NAME,
                "fullname": "Test User",
                "email": f"{USER_NAME}@example.com",
                "emailVerified": True,
                "canPay": False,
                "isPro": False,
                "periodEnd": None,
                "avatarUrl": "",
                "orgs": [],
                "auth": {
                    "type": "access_token",
                    "accessToken": {"displayName": "tests", "role": "read" if readonly else "write"},
                },
            }
        )

    def validate_yaml(self) -> _Response:
        payload = self.json_body()
        content = payload.get("content")
        repo_type = payload.get("repoType") or "model"
        if not isinstance(content, str):
            raise _HubError(400, '"content" must be a string')
        errors, warnings = validate_card_metadata(content, repo_type)
        plain = "text/plain" in self.headers.get("accept", "")
        if errors:
            if plain:
                text = "\n".join(f"Error: {e}" for e in errors).encode()
                return _Response(400, text, [("Content-Type", "text/plain; charset=utf-8")])
            return _json_response(
                {"error": "; ".join(errors), "errors": [{"message": e} for e in errors]}, 400
            )
        if plain:
            return _Response(200, b"", [("Content-Type", "text/plain; charset=utf-8")])
        return _json_response({"warnings": [{"message": w} for w in warnings]} if warnings else {})

    # -- endpoints: repos --------------------------------------------------------------------------

    def create_repo(self) -> _Response:
        self.check_write()
        payload = self.json_body()
        name = payload.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[\w.\-]+", name or ""):
            raise _HubError(400, f"Invalid repo name: {name!r}")
        organization = payload.get("organization") or USER_NAME
        repo_type = payload.get("type") or "model"
        if repo_type not in _URL_PREFIX:
            raise _HubError(400, f"Invalid repo type: {repo_type!r}")
        repo_id = f"{organization}/{name}"
        url = self.repo_url(repo_type, repo_id)
        if (repo_type, repo_id) in self.hub._repos:
            raise _HubError(409, f"You already created this {repo_type} repo", extra={"url": url})
        private = payload.get("private")
        if "visibility" in payload:
            private = payload["visibility"] != "public"
        meta = {
            "downloads": 0,
            "likes": 0,
            "gated": False,
            "pipeline_tag": None,
            "library_name": None,
            "tags": [],
            "card_data": None,
            "license": None,
            "private": bool(private),
            "extra": {},
        }
        # The Hub seeds API-created repos with a ``.gitattributes``.
        self.hub._add_repo(repo_type, repo_id, {".gitattributes": _GITATTRIBUTES}, meta, None)
        return _json_response({"url": url, "name": repo_id, "id": repo_id})

    def delete_repo(self) -> _Response:
        self.check_write()
        payload = self.json_body()
        repo_id = f"{payload.get('organization') or USER_NAME}/{payload.get('name')}"
        repo_type = payload.get("type") or "model"
        self.find_repo(repo_type, repo_id)
        del self.hub._repos[(repo_type, repo_id)]
        return _json_response({})

    def list_repos(self, repo_type: str) -> _Response:
        repos = [
            r
            for r in self.hub._repos.values()
            if r.repo_type == repo_type and (not r.meta["private"] or self.token is not None)
        ]
        infos = [self.hub._info_fields(r, r.commits[r.branches["main"]]) for r in repos]

        search = (self.q("search") or "").lower()
        author = self.q("author")
        filters = self.q_list("filter")
        pipeline_tag = self.q("pipeline_tag")
        library = self.q_list("library")
        gated = self.q("gated")

        def keep(info: dict[str, Any]) -> bool:
            if search and search not in info["id"].lower():
                return False
            if author and info["author"].lower() != author.lower():
                return False
            if pipeline_tag and info.get("pipeline_tag") != pipeline_tag:
                return False
            tags = set(info["tags"])
            labels = tags | {info.get("library_name"), info.get("pipeline_tag")}
            if any(f not in labels for f in filters):
                return False
            if library and not any(lib in labels for lib in library):
                return False
            return not (gated is not None and _truthy(gated) != bool(info["gated"]))

        infos = [i for i in infos if keep(i)]
        sort = self.q("sort")
        direction = self.q("direction")
        infos.sort(key=lambda i: i["id"])
        if sort:
            if sort not in _SORT_KEYS:
                raise _HubError(400, f'"sort" must be one of [{", ".join(_SORT_KEYS)}]')
            key = _SORT_KEYS[sort]
            descending = direction == "-1" if direction is not None else key != "id"
            # Python's sort is stable, also with reverse=True: ties stay ordered by id.
            if key == "id":
                infos.sort(key=lambda i: i["id"], reverse=descending)
            else:
                infos.sort(key=lambda i: i.get(key) or 0, reverse=descending)

        limit_text = self.q("limit")
        try:
            limit = int(limit_text) if limit_text else None
        except ValueError as err:
            raise _HubError(400, '"limit" must be a number') from err
        if limit is not None and limit < 0:
            raise _HubError(400, '"limit" must be positive')
        page_size = min(limit, self.hub.listing_page_size) if limit else self.hub.listing_page_size
        total = len(infos) if limit is None else min(limit, len(infos))
        offset = _decode_cursor(self.q("cursor"))
        end = min(offset + page_size, total)

        expand = self.q_list("expand")
        if expand:
            unknown = [e for e in expand if e not in _EXPANDABLE[repo_type]]
            if unknown:
                raise _HubError(400, f'"expand" must be one of [{", ".join(sorted(_EXPANDABLE[repo_type]))}]')
            names: tuple[str, ...] = ("_id", "id", *expand)
        else:
            names = _LIST_DEFAULT_FIELDS[repo_type]
            if _truthy(self.q("full")):
                names = (*names, *_LIST_FULL_FIELDS)
            if _truthy(self.q("config")):
                names = (*names, "config")
            if _truthy(self.q("cardData")):
                names = (*names, "cardData")
        page = [self.hub._select(info, names) for info in infos[offset:end]]
        headers = [self.next_link(end)] if end < total else []
        return _json_response(page, headers=headers)

    def repo_info(self, repo_type: str, repo_id: str, revision: str) -> _Response:
        repo = self.find_repo(repo_type, repo_id)
        commit = self.hub._resolve_revision(repo, revision)
        info = self.hub._info_fields(repo, commit)
        expand = self.q_list("expand")
        if expand:
            unknown = [e for e in expand if e not in _EXPANDABLE[repo_type]]
            if unknown:
                raise _HubError(400, f'"expand" must be one of [{", ".join(sorted(_EXPANDABLE[repo_type]))}]')
            info = self.hub._select(info, ("_id", "id", *expand))
        elif _truthy(self.q("blobs")):
            info["siblings"] = [
                {"rfilename": p, "blobId": git_blob_sha(b), "size": len(b)}
                for p, b in sorted(commit.files.items())
            ]
        return _json_response(info)

    def tree(self, repo_type: str, repo_id: str, revision: str, path: str) -> _Response:
        repo = self.find_repo(repo_type, repo_id)
        commit = self.hub._resolve_revision(repo, revision)
        files = commit.files
        dirs = self.hub._directories(files)
        path = path.strip("/")
        recursive = _truthy(self.q("recursive"))
        expand = _truthy(self.q("expand"))
        if path and path in files:
            # Listing a file gives the file itself (HfFileSystem relies on it).
            paths = [path]
        elif path and path not in dirs:
            raise _HubError(
                404, f"{path} does not exist on {revision}", "EntryNotFound", [("X-Repo-Commit", commit.sha)]
            )
        else:
            prefix = path + "/" if path else ""
            candidates = [p for p in [*files, *dirs] if p.startswith(prefix)]
            if not recursive:
                candidates = [p for p in candidates if "/" not in p[len(prefix) :]]
            # Like the Hub: directories first, then files, each sorted by path.
            paths = sorted(candidates, key=lambda p: (p in files, p))
        page_size = self.hub.tree_expand_page_size if expand else self.hub.tree_page_size
        offset = _decode_cursor(self.q("cursor"))
        end = min(offset + page_size, len(paths))
        page = [self.hub._tree_entry(repo, commit, p, expand) for p in paths[offset:end]]
        headers = [self.next_link(end)] if end < len(paths) else []
        return _json_response(page, headers=headers)

    def paths_info(self, repo_type: str, repo_id: str, revision: str) -> _Response:
        repo = self.find_repo(repo_type, repo_id)
        commit = self.hub._resolve_revision(repo, revision)
        content_type = self.headers.get("content-type", "")
        if "application/json" in content_type:
            payload = self.json_body()
            paths = payload.get("paths") or []
            expand = bool(payload.get("expand"))
        else:
            form = parse_qs(self.body.decode(), keep_blank_values=True)
            paths = [*form.get("paths", []), *form.get("paths[]", [])]
            expand = _truthy((form.get("expand") or ["false"])[-1])
        if isinstance(paths, str):
            paths = [paths]
        dirs = self.hub._directories(commit.files)
        out = []
        for raw in paths:
            path = raw.strip("/")
            if path in commit.files or path in dirs:
                out.append(self.hub._tree_entry(repo, commit, path, expand))
        return _json_response(out)

    def refs(self, repo_type: str, repo_id: str) -> _Response:
        repo = self.find_repo(repo_type, repo_id)

        def ref(name: str, full: str, sha: str) -> dict[str, str]:
            return {"name": name, "ref": full, "targetCommit": sha}

        data: dict[str, Any] = {
            "branches": [ref(n, f"refs/heads/{n}", s) for n, s in sorted(repo.branches.items())],
            "converts": [],
            "tags": [ref(n, f"refs/tags/{n}", s) for n, s in sorted(repo.tags.items())],
        }
        if _truthy(self.q("include_prs")):
            data["pullRequests"] = [
                ref(f"refs/pr/{n}", f"refs/pr/{n}", s) for n, s in sorted(repo.pulls.items())
            ]
        return _json_response(data)

    def commits(self, repo_type: str, repo_id: str, revision: str) -> _Response:
        repo = self.find_repo(repo_type, repo_id)
        commit: _Commit | None = self.hub._resolve_revision(repo, revision)
        history = []
        while commit is not None:
            history.append(
                {
                    "id": commit.sha,
                    "title": commit.title,
                    "message": commit.message,
                    "authors": [{"user": USER_NAME, "avatar": ""}],
                    "date": commit.date,
                }
            )
            commit = repo.commits.get(commit.parent) if commit.parent else None
        offset = _decode_cursor(self.q("cursor"))
        end = min(offset + 50, len(history))
        headers = [self.next_link(end)] if end < len(history) else []
        return _json_response(history[offset:end], headers=headers)

    def branch(self, repo_type: str, repo_id: str, branch: str) -> _Response:
        self.check_write()
        repo = self.find_repo(repo_type, repo_id)
        if self.method == "DELETE":
            if branch not in repo.branches or branch == "main":
                raise _HubError(404, f"Invalid rev id: {branch}", "RevisionNotFound")
            del repo.branches[branch]
            return _json_response({})
        if branch in repo.branches:
            raise _HubError(409, f"Reference already exists: refs/heads/{branch}")
        start = (self.json_body() or {}).get("startingPoint") or "main"
        repo.branches[branch] = self.hub._resolve_revision(repo, start).sha
        return _json_response({})

    def tag(self, repo_type: str, repo_id: str, revision: str) -> _Response:
        self.check_write()
        repo = self.find_repo(repo_type, repo_id)
        name = self.json_body().get("tag")
        if not isinstance(name, str) or not name:
            raise _HubError(400, '"tag" is required')
        if name in repo.tags:
            raise _HubError(409, f"Tag already exists: {name}")
        repo.tags[name] = self.hub._resolve_revision(repo, revision).sha
        return _json_response({})

    # -- endpoints: uploads ------------------------------------------------------------------------

    def preupload(self, repo_type: str, repo_id: str, revision: str) -> _Response:
        self.check_write()
        repo = self.find_repo(repo_type, repo_id)
        commit = self.hub._resolve_revision(repo, revision)
        payload = self.json_body()
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
        return _json_response({"files": files, "commitOid": commit.sha})

    def commit(self, repo_type: str, repo_id: str, revision: str) -> _Response:
        self.check_write()
        repo = self.find_repo(repo_type, repo_id)
        create_pr = _truthy(self.q("create_pr"))
        if revision.startswith("refs/pr/"):
            target = revision
            if self.hub._ref_target(repo, target) is None:
                raise _HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        elif revision.removeprefix("refs/heads/") in repo.branches:
            target = revision.removeprefix("refs/heads/")
        elif create_pr:
            target = ""  # a PR may start from any revision, even a commit sha
        else:
            raise _HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        base = self.hub._resolve_revision(repo, revision)

        header: dict[str, Any] = {}
        operations: list[tuple[str, dict[str, Any]]] = []
        for line in self.body.splitlines():
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except ValueError as err:
                raise _HubError(400, f"Invalid NDJSON line: {err}") from err
            if item.get("key") == "header":
                header = item.get("value") or {}
            else:
                operations.append((item.get("key"), item.get("value") or {}))
        summary = header.get("summary")
        if not summary:
            raise _HubError(400, "A commit summary is required")
        parent = header.get("parentCommit")
        if parent and not base.sha.startswith(parent):
            raise _HubError(412, "A commit has happened since. Please refresh and try again.")

        files = dict(base.files)
        for key, value in operations:
            try:
                raw_path = value.get("path", "")
                # Folder deletions come with a trailing slash ("nested/").
                path = _clean_path(raw_path.rstrip("/") if key == "deletedFolder" else raw_path)
            except ValueError as err:
                raise _HubError(400, str(err)) from err
            if key == "file":
                if value.get("encoding", "base64") != "base64":
                    raise _HubError(400, f"Unsupported encoding {value.get('encoding')!r}")
                files[path] = base64.b64decode(value.get("content", ""))
            elif key == "deletedFile":
                if files.pop(path, None) is None:
                    raise _HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
            elif key == "deletedFolder":
                prefix = path + "/"
                doomed = [p for p in files if p.startswith(prefix)]
                if not doomed:
                    raise _HubError(404, f"A folder with this name doesn't exist: {path}", "EntryNotFound")
                for p in doomed:
                    del files[p]
            elif key in ("lfsFile", "copyFile"):
                # Never requested: preupload answers "regular" for every file.
                raise _HubError(400, f"LocalHub does not support {key!r} operations")
            else:
                raise _HubError(400, f"Unknown commit operation {key!r}")

        pr_url = None
        if create_pr:
            number = max([0, *repo.pulls]) + 1
            repo.pulls[number] = base.sha
            target = f"refs/pr/{number}"
            pr_url = f"{self.repo_url(repo_type, repo_id)}/discussions/{number}"
        commit = self.hub._commit(repo, target, files, summary, header.get("description") or "")
        data = {
            "success": True,
            "commitOid": commit.sha,
            "commitUrl": f"{self.repo_url(repo_type, repo_id)}/commit/{commit.sha}",
            "hookOutput": "",
        }
        if pr_url is not None:
            data["pullRequestUrl"] = pr_url
        return _json_response(data)

    # -- endpoint: file download -------------------------------------------------------------------

    def resolve(self, repo_type: str, repo_id: str, parts: list[str]) -> _Response:
        repo = self.find_repo(repo_type, repo_id)
        revision, rest = self.take_revision(parts)
        commit = self.hub._resolve_revision(repo, revision)
        path = "/".join(rest)
        if repo.meta["gated"] and self.token is None:
            kind = {"model": "model", "dataset": "dataset", "space": "space"}[repo_type]
            raise _HubError(
                401,
                f"Access to {kind} {repo_id} is restricted. You must have access to it and be authenticated "
                "to access it. Please log in.",
                "GatedRepo",
            )
        blob = commit.files.get(path)
        if blob is None:
            raise _HubError(404, "Entry not found", "EntryNotFound", [("X-Repo-Commit", commit.sha)])
        size = len(blob)
        headers = [
            ("Content-Type", _content_type(path)),
            ("X-Repo-Commit", commit.sha),
            ("ETag", f'"{git_blob_sha(blob)}"'),
            ("Accept-Ranges", "bytes"),
            ("Content-Disposition", f'inline; filename="{path.rsplit("/", 1)[-1]}"'),
        ]
        byte_range = self.headers.get("range")
        if byte_range:
            span = _parse_range(byte_range, size)
            if span is None:
                return _Response(
                    416,
                    json.dumps({"error": "Requested range not satisfiable"}).encode(),
                    [("Content-Type", "application/json"), ("Content-Range", f"bytes */{size}")],
                )
            if span != "all":
                start, end = span
                return _Response(
                    206, blob[start : end + 1], [*headers, ("Content-Range", f"bytes {start}-{end}/{size}")]
                )
        return _Response(200, blob, headers)


def _parse_range(header: str, size: int) -> tuple[int, int] | Literal["all"] | None:
    """``(start, end)`` (inclusive) for a single ``bytes=`` range; ``None`` when unsatisfiable.

    Multi-range or unparsable headers give ``"all"``: answering 200 with the whole file is what
    RFC 9110 allows a server to do with a range it does not support.
    """
    match = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header)
    if match is None:
        return "all"
    first, last = match.groups()
    if not first and not last:
        return "all"
    if not first:
        if int(last) == 0:
            return None
        start, end = max(size - int(last), 0), size - 1
    else:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        return None
    return start, end


def validate_card_metadata(content: str, repo_type: str) -> tuple[list[str], list[str]]:
    """Check the YAML front matter of a card the way ``/api/validate-yaml`` does (a subset).

    Returns ``(errors, warnings)``: invalid YAML, a non-mapping, an unknown license, a wrongly typed
    well-known field or a malformed ``configs`` list are errors; a card without metadata is a
    warning.
    """
    match = _YAML_BLOCK.search(content)
    if match is None:
        return [], ["Empty or missing yaml metadata in repo card"]
    try:
        data = yaml.safe_load(match.group(2))
    except yaml.YAMLError as err:
        return [f"Invalid YAML in the metadata block: {err}"], []
    if data is None:
        return [], ["Empty or missing yaml metadata in repo card"]
    if not isinstance(data, dict):
        return ["The metadata block must be a YAML mapping"], []
    errors: list[str] = []

    def str_or_list(name: str) -> None:
        value = data.get(name)
        if value is None:
            return
        if isinstance(value, str):
            return
        if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            errors.append(f'"{name}" must be a string or an array of strings')

    license_ = data.get("license")
    if license_ is not None:
        licenses = license_ if isinstance(license_, list) else [license_]
        for value in licenses:
            if not isinstance(value, str) or value not in KNOWN_LICENSES:
                errors.append(f'"license" must be one of [{", ".join(sorted(KNOWN_LICENSES))}]')
                break
    for name in ("tags", "datasets", "language", "metrics", "base_model", "task_categories"):
        str_or_list(name)
    for name in ("pipeline_tag", "library_name", "license_name", "pretty_name"):
        if name in data and not isinstance(data[name], str):
            errors.append(f'"{name}" must be a string')
    if "model-index" in data and not isinstance(data["model-index"], list):
        errors.append('"model-index" must be an array')
    configs = data.get("configs")
    if configs is not None:
        if not isinstance(configs, list) or not all(
            isinstance(c, dict) and isinstance(c.get("config_name"), str) for c in configs
        ):
            errors.append('"configs" must be an array of objects with a "config_name" string')
        else:
            names = [c["config_name"] for c in configs]
            if len(set(names)) != len(names):
                errors.append('"configs" must have unique "config_name" values')
    return errors, []
