"""The local Hub's state and vocabulary: repos, commits, faults, request records, and the Hub's
field tables, with the small helpers and responses every endpoint shares.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import yaml

# "drop" closes the socket without answering; any other kind is an HTTP status code to answer with
# ("429" and "500" are the usual ones; "401", "403", "503"... work too).
FaultKind = Literal["429", "500", "drop"]

# Error messages the real Hub sends with these statuses, reused for injected faults.
FAULT_MESSAGES = {
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
EPOCH = datetime(2024, 1, 1, tzinfo=timezone.utc)

REPO_TYPES_PLURAL = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}


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
EXPANDABLE = {"model": _MODEL_EXPAND, "dataset": _DATASET_EXPAND, "space": _SPACE_EXPAND}

# What a listing returns without ``expand`` (what the real Hub sends, minus what we cannot compute).
LIST_DEFAULT_FIELDS = {
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
LIST_FULL_FIELDS = ("author", "sha", "lastModified", "gated", "disabled", "siblings", "cardData")

# Sort keys accepted by the listing endpoints, with their default direction (the Hub sorts
# descending unless told otherwise; ids read naturally ascending).
SORT_KEYS = {
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
GITATTRIBUTES = (
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
class Fault:
    pattern: re.Pattern[str]
    kind: str
    remaining: int
    retry_after: int | None
    method: str | None


@dataclass
class Commit:
    sha: str
    parent: str | None
    files: dict[str, bytes]
    title: str
    message: str
    date: str


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    meta: dict[str, Any]
    created_at: str
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    pulls: dict[int, str] = field(default_factory=dict)
    commits: dict[str, Commit] = field(default_factory=dict)
    counter: int = 0
    last_modified: str = ""
    # Computed info per (commit sha, last_modified): listings recompute every repo on every page.
    info_cache: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)


class HubError(Exception):
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


def card_metadata(readme: bytes | None) -> dict[str, Any] | None:
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


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def read_files(files: Mapping[str, bytes] | Path | str | None) -> dict[str, bytes]:
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
        out[clean_path(path)] = content.encode() if isinstance(content, str) else bytes(content)
    return out


def clean_path(path: str) -> str:
    path = path.lstrip("/")
    if not path or any(part in ("", ".", "..") for part in path.split("/")):
        raise ValueError(f"invalid path in repo: {path!r}")
    return path


def truthy(value: str | None) -> bool:
    return value is not None and value.lower() in {"1", "true", "yes", "on"}


def bearer_token(headers: Mapping[str, str]) -> str | None:
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        token = auth[7:].strip()
        return token or None
    return None


def guess_content_type(path: str) -> str:
    if path.endswith(".json"):
        return "application/json"
    if path.endswith((".md", ".txt", ".yaml", ".yml", ".jinja", ".py", ".csv", ".jsonl", ".gitattributes")):
        return "text/plain; charset=utf-8"
    return "application/octet-stream"


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        offset = int(json.loads(base64.urlsafe_b64decode(padded))["offset"])
    except (ValueError, KeyError, TypeError) as err:
        raise HubError(400, f"Invalid cursor: {cursor}") from err
    if offset < 0:
        raise HubError(400, f"Invalid cursor: {cursor}")
    return offset


def json_response(data: Any, status: int = 200, headers: Iterable[tuple[str, str]] = ()) -> Response:
    body = json.dumps(data).encode()
    return Response(status, body, [("Content-Type", "application/json; charset=utf-8"), *headers])


def error_response(err: HubError) -> Response:
    headers = list(err.headers)
    if err.code:
        headers.append(("X-Error-Code", err.code))
    # Header values must be one latin-1 line; the JSON body keeps the message as is.
    one_line = " ".join(err.message.split()).encode("ascii", "backslashreplace").decode()
    headers.append(("X-Error-Message", one_line))
    return json_response({"error": err.message, **err.extra}, err.status, headers)


def parse_range(header: str, size: int) -> tuple[int, int] | Literal["all"] | None:
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
