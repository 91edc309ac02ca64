"""The local Hub's endpoints: each request's path and method to the code that answers it."""

from __future__ import annotations

import hashlib
import json
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, unquote, urlencode

from tests.hub.repos import (
    EXPANDABLE,
    GITATTRIBUTES,
    LIST_DEFAULT_FIELDS,
    LIST_FULL_FIELDS,
    REPO_TYPES_PLURAL,
    SORT_KEYS,
    URL_PREFIX,
    USER_NAME,
    Commit,
    HubError,
    Repo,
    Response,
    bearer_token,
    decode_cursor,
    encode_cursor,
    git_blob_sha,
    guess_content_type,
    json_response,
    parse_range,
    truthy,
    validate_card_metadata,
)
from tests.hub.uploads import apply_operations, parse_commit_body, preupload_files

if TYPE_CHECKING:
    from tests.hub.server import LocalHub


class Router:
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
        self.token = bearer_token(headers)

    # -- helpers -----------------------------------------------------------------------------------

    def q(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None

    def q_list(self, name: str) -> list[str]:
        values = [*self.query.get(name, []), *self.query.get(f"{name}[]", [])]
        return [part for value in values for part in value.split(",") if part]

    def not_found(self) -> HubError:
        return HubError(
            404,
            f"Sorry, we can't find the page you are looking for: {self.method} /{'/'.join(self.segments)}",
        )

    def repo_url(self, repo_type: str, repo_id: str) -> str:
        return f"{self.base_url}/{URL_PREFIX[repo_type]}{repo_id}"

    def check_write(self) -> None:
        """Authorization of write endpoints (see ``LocalHub.require_token``)."""
        token = self.token
        if token is not None and token.endswith("-readonly"):
            raise HubError(
                403, "You don't have the rights to perform this operation: your token is read-only"
            )
        required = self.hub.require_token
        if required is not None and token != required:
            raise HubError(401, "Invalid credentials in Authorization header")

    def find_repo(self, repo_type: str, repo_id: str) -> Repo:
        """The repo, or the Hub's answer for a missing one (401 anonymous, 404 authenticated)."""
        repo = self.hub._repos.get((repo_type, repo_id))
        if repo is None or (repo.meta["private"] and self.token is None):
            status = 404 if self.token is not None else 401
            raise HubError(status, "Repository not found", "RepoNotFound")
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
            raise HubError(400, f"Invalid JSON body: {err}") from err

    def next_link(self, offset: int) -> tuple[str, str]:
        """A GitHub-style ``Link`` header to the same URL, with ``cursor`` pointing at ``offset``."""
        pairs = [(k, v) for k, values in self.query.items() if k != "cursor" for v in values]
        pairs.append(("cursor", encode_cursor(offset)))
        path = "/" + "/".join(quote(s, safe="") for s in self.segments)
        return ("Link", f'<{self.base_url}{path}?{urlencode(pairs)}>; rel="next"')

    # -- dispatch ----------------------------------------------------------------------------------

    def route(self) -> Response:
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
                    return self.resolve(REPO_TYPES_PLURAL[s[0]], f"{s[1]}/{s[2]}", s[4:])
                if len(s) >= 4 and s[2] == "resolve":
                    return self.resolve("model", f"{s[0]}/{s[1]}", s[3:])
            raise self.not_found()

    def canonical_resolve(self, s: list[str]) -> Response | None:
        """A download from a canonical repo (``/name/resolve/...``), or None for any other path."""
        if len(s) >= 4 and s[0] in ("datasets", "spaces") and s[2] == "resolve":
            repo_type, name, parts = REPO_TYPES_PLURAL[s[0]], s[1], s[3:]
        elif len(s) >= 3 and s[1] == "resolve":
            repo_type, name, parts = "model", s[0], s[2:]
        else:
            return None
        if (repo_type, name) not in self.hub._repos:
            return None
        return self.resolve(repo_type, name, parts)

    def route_api(self, s: list[str]) -> Response:
        m = self.method
        if s == ["whoami-v2"] and m == "GET":
            return self.whoami()
        if s == ["agent-harnesses"] and m == "GET":
            return json_response({"standardEnvVars": [], "harnesses": {}})
        if s == ["validate-yaml"] and m == "POST":
            return self.validate_yaml()
        if s == ["repos", "create"] and m == "POST":
            return self.create_repo()
        if s == ["repos", "delete"] and m == "DELETE":
            return self.delete_repo()
        if not s or s[0] not in REPO_TYPES_PLURAL:
            raise self.not_found()
        repo_type = REPO_TYPES_PLURAL[s[0]]
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

    def whoami(self) -> Response:
        token = self.token
        if token is None:
            raise HubError(401, "Invalid credentials in Authorization header")
        required = self.hub.require_token
        readonly = token.endswith("-readonly")
        if required is not None and token != required and not readonly:
            raise HubError(401, "Invalid credentials in Authorization header")
        return json_response(
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

    def validate_yaml(self) -> Response:
        payload = self.json_body()
        content = payload.get("content")
        repo_type = payload.get("repoType") or "model"
        if not isinstance(content, str):
            raise HubError(400, '"content" must be a string')
        errors, warnings = validate_card_metadata(content, repo_type)
        plain = "text/plain" in self.headers.get("accept", "")
        if errors:
            if plain:
                text = "\n".join(f"Error: {e}" for e in errors).encode()
                return Response(400, text, [("Content-Type", "text/plain; charset=utf-8")])
            return json_response(
                {"error": "; ".join(errors), "errors": [{"message": e} for e in errors]}, 400
            )
        if plain:
            return Response(200, b"", [("Content-Type", "text/plain; charset=utf-8")])
        return json_response({"warnings": [{"message": w} for w in warnings]} if warnings else {})

    # -- endpoints: repos --------------------------------------------------------------------------

    def create_repo(self) -> Response:
        self.check_write()
        payload = self.json_body()
        name = payload.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[\w.\-]+", name or ""):
            raise HubError(400, f"Invalid repo name: {name!r}")
        organization = payload.get("organization") or USER_NAME
        repo_type = payload.get("type") or "model"
        if repo_type not in URL_PREFIX:
            raise HubError(400, f"Invalid repo type: {repo_type!r}")
        repo_id = f"{organization}/{name}"
        url = self.repo_url(repo_type, repo_id)
        if (repo_type, repo_id) in self.hub._repos:
            raise HubError(409, f"You already created this {repo_type} repo", extra={"url": url})
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
        self.hub._add_repo(repo_type, repo_id, {".gitattributes": GITATTRIBUTES}, meta, None)
        return json_response({"url": url, "name": repo_id, "id": repo_id})

    def delete_repo(self) -> Response:
        self.check_write()
        payload = self.json_body()
        repo_id = f"{payload.get('organization') or USER_NAME}/{payload.get('name')}"
        repo_type = payload.get("type") or "model"
        self.find_repo(repo_type, repo_id)
        del self.hub._repos[(repo_type, repo_id)]
        return json_response({})

    def list_repos(self, repo_type: str) -> Response:
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
            return not (gated is not None and truthy(gated) != bool(info["gated"]))

        infos = [i for i in infos if keep(i)]
        sort = self.q("sort")
        direction = self.q("direction")
        infos.sort(key=lambda i: i["id"])
        if sort:
            if sort not in SORT_KEYS:
                raise HubError(400, f'"sort" must be one of [{", ".join(SORT_KEYS)}]')
            key = SORT_KEYS[sort]
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
            raise HubError(400, '"limit" must be a number') from err
        if limit is not None and limit < 0:
            raise HubError(400, '"limit" must be positive')
        page_size = min(limit, self.hub.listing_page_size) if limit else self.hub.listing_page_size
        total = len(infos) if limit is None else min(limit, len(infos))
        offset = decode_cursor(self.q("cursor"))
        end = min(offset + page_size, total)

        expand = self.q_list("expand")
        if expand:
            unknown = [e for e in expand if e not in EXPANDABLE[repo_type]]
            if unknown:
                raise HubError(400, f'"expand" must be one of [{", ".join(sorted(EXPANDABLE[repo_type]))}]')
            names: tuple[str, ...] = ("_id", "id", *expand)
        else:
            names = LIST_DEFAULT_FIELDS[repo_type]
            if truthy(self.q("full")):
                names = (*names, *LIST_FULL_FIELDS)
            if truthy(self.q("config")):
                names = (*names, "config")
            if truthy(self.q("cardData")):
                names = (*names, "cardData")
        page = [self.hub._select(info, names) for info in infos[offset:end]]
        headers = [self.next_link(end)] if end < total else []
        return json_response(page, headers=headers)

    def repo_info(self, repo_type: str, repo_id: str, revision: str) -> Response:
        repo = self.find_repo(repo_type, repo_id)
        commit = self.hub._resolve_revision(repo, revision)
        info = self.hub._info_fields(repo, commit)
        expand = self.q_list("expand")
        if expand:
            unknown = [e for e in expand if e not in EXPANDABLE[repo_type]]
            if unknown:
                raise HubError(400, f'"expand" must be one of [{", ".join(sorted(EXPANDABLE[repo_type]))}]')
            info = self.hub._select(info, ("_id", "id", *expand))
        elif truthy(self.q("blobs")):
            info["siblings"] = [
                {"rfilename": p, "blobId": git_blob_sha(b), "size": len(b)}
                for p, b in sorted(commit.files.items())
            ]
        return json_response(info)

    def tree(self, repo_type: str, repo_id: str, revision: str, path: str) -> Response:
        repo = self.find_repo(repo_type, repo_id)
        commit = self.hub._resolve_revision(repo, revision)
        files = commit.files
        dirs = self.hub._directories(files)
        path = path.strip("/")
        recursive = truthy(self.q("recursive"))
        expand = truthy(self.q("expand"))
        if path and path in files:
            # Listing a file gives the file itself (HfFileSystem relies on it).
            paths = [path]
        elif path and path not in dirs:
            raise HubError(
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
        offset = decode_cursor(self.q("cursor"))
        end = min(offset + page_size, len(paths))
        page = [self.hub._tree_entry(repo, commit, p, expand) for p in paths[offset:end]]
        headers = [self.next_link(end)] if end < len(paths) else []
        return json_response(page, headers=headers)

    def paths_info(self, repo_type: str, repo_id: str, revision: str) -> Response:
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
            expand = truthy((form.get("expand") or ["false"])[-1])
        if isinstance(paths, str):
            paths = [paths]
        dirs = self.hub._directories(commit.files)
        out = []
        for raw in paths:
            path = raw.strip("/")
            if path in commit.files or path in dirs:
                out.append(self.hub._tree_entry(repo, commit, path, expand))
        return json_response(out)

    def refs(self, repo_type: str, repo_id: str) -> Response:
        repo = self.find_repo(repo_type, repo_id)

        def ref(name: str, full: str, sha: str) -> dict[str, str]:
            return {"name": name, "ref": full, "targetCommit": sha}

        data: dict[str, Any] = {
            "branches": [ref(n, f"refs/heads/{n}", s) for n, s in sorted(repo.branches.items())],
            "converts": [],
            "tags": [ref(n, f"refs/tags/{n}", s) for n, s in sorted(repo.tags.items())],
        }
        if truthy(self.q("include_prs")):
            data["pullRequests"] = [
                ref(f"refs/pr/{n}", f"refs/pr/{n}", s) for n, s in sorted(repo.pulls.items())
            ]
        return json_response(data)

    def commits(self, repo_type: str, repo_id: str, revision: str) -> Response:
        repo = self.find_repo(repo_type, repo_id)
        commit: Commit | None = self.hub._resolve_revision(repo, revision)
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
        offset = decode_cursor(self.q("cursor"))
        end = min(offset + 50, len(history))
        headers = [self.next_link(end)] if end < len(history) else []
        return json_response(history[offset:end], headers=headers)

    def branch(self, repo_type: str, repo_id: str, branch: str) -> Response:
        self.check_write()
        repo = self.find_repo(repo_type, repo_id)
        if self.method == "DELETE":
            if branch not in repo.branches or branch == "main":
                raise HubError(404, f"Invalid rev id: {branch}", "RevisionNotFound")
            del repo.branches[branch]
            return json_response({})
        if branch in repo.branches:
            raise HubError(409, f"Reference already exists: refs/heads/{branch}")
        start = (self.json_body() or {}).get("startingPoint") or "main"
        repo.branches[branch] = self.hub._resolve_revision(repo, start).sha
        return json_response({})

    def tag(self, repo_type: str, repo_id: str, revision: str) -> Response:
        self.check_write()
        repo = self.find_repo(repo_type, repo_id)
        name = self.json_body().get("tag")
        if not isinstance(name, str) or not name:
            raise HubError(400, '"tag" is required')
        if name in repo.tags:
            raise HubError(409, f"Tag already exists: {name}")
        repo.tags[name] = self.hub._resolve_revision(repo, revision).sha
        return json_response({})

    # -- endpoints: uploads ------------------------------------------------------------------------

    def preupload(self, repo_type: str, repo_id: str, revision: str) -> Response:
        self.check_write()
        repo = self.find_repo(repo_type, repo_id)
        commit = self.hub._resolve_revision(repo, revision)
        return json_response({"files": preupload_files(commit, self.json_body()), "commitOid": commit.sha})

    def commit(self, repo_type: str, repo_id: str, revision: str) -> Response:
        self.check_write()
        repo = self.find_repo(repo_type, repo_id)
        create_pr = truthy(self.q("create_pr"))
        if revision.startswith("refs/pr/"):
            target = revision
            if self.hub._ref_target(repo, target) is None:
                raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        elif revision.removeprefix("refs/heads/") in repo.branches:
            target = revision.removeprefix("refs/heads/")
        elif create_pr:
            target = ""  # a PR may start from any revision, even a commit sha
        else:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        base = self.hub._resolve_revision(repo, revision)

        header, operations = parse_commit_body(self.body)
        summary = header.get("summary")
        if not summary:
            raise HubError(400, "A commit summary is required")
        parent = header.get("parentCommit")
        if parent and not base.sha.startswith(parent):
            raise HubError(412, "A commit has happened since. Please refresh and try again.")
        files = apply_operations(base.files, operations)

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
        return json_response(data)

    # -- endpoint: file download -------------------------------------------------------------------

    def resolve(self, repo_type: str, repo_id: str, parts: list[str]) -> Response:
        repo = self.find_repo(repo_type, repo_id)
        revision, rest = self.take_revision(parts)
        commit = self.hub._resolve_revision(repo, revision)
        path = "/".join(rest)
        if repo.meta["gated"] and self.token is None:
            kind = {"model": "model", "dataset": "dataset", "space": "space"}[repo_type]
            raise HubError(
                401,
                f"Access to {kind} {repo_id} is restricted. You must have access to it and be authenticated "
                "to access it. Please log in.",
                "GatedRepo",
            )
        blob = commit.files.get(path)
        if blob is None:
            raise HubError(404, "Entry not found", "EntryNotFound", [("X-Repo-Commit", commit.sha)])
        size = len(blob)
        headers = [
            ("Content-Type", guess_content_type(path)),
            ("X-Repo-Commit", commit.sha),
            ("ETag", f'"{git_blob_sha(blob)}"'),
            ("Accept-Ranges", "bytes"),
            ("Content-Disposition", f'inline; filename="{path.rsplit("/", 1)[-1]}"'),
        ]
        byte_range = self.headers.get("range")
        if byte_range:
            span = parse_range(byte_range, size)
            if span is None:
                return Response(
                    416,
                    json.dumps({"error": "Requested range not satisfiable"}).encode(),
                    [("Content-Type", "application/json"), ("Content-Range", f"bytes */{size}")],
                )
            if span != "all":
                start, end = span
                return Response(
                    206, blob[start : end + 1], [*headers, ("Content-Range", f"bytes {start}-{end}/{size}")]
                )
        return Response(200, blob, headers)
