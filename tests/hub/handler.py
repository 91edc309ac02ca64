"""The HTTP side of the local Hub: one request in, its answer out (the router decides which)."""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.hub.repos import FAULT_MESSAGES, Fault, HubError, RequestRecord, Response, error_response
from tests.hub.router import Router

if TYPE_CHECKING:
    from tests.hub.server import LocalHub


class HubRequestHandler(BaseHTTPRequestHandler):
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
            message = FAULT_MESSAGES.get(status, f"Injected fault {fault.kind}")
            response = error_response(HubError(status, message, headers=extra))
        else:
            try:
                response = Router(
                    hub, method, split.path, query, headers, body, self._base_url(headers)
                ).route()
            except HubError as err:
                response = error_response(err)
            except Exception as err:  # a bug in the server must surface as a 500, not a hung client
                response = error_response(HubError(500, f"LocalHub internal error: {err!r}"))
                traceback.print_exc()
        self._record(method, path, query, response.status, headers, split.query)
        self._send(method, response)

    def _take_fault(self, method: str, path: str, url: str) -> Fault | None:
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

    def _send(self, method: str, response: Response) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        # A HEAD answer carries the Content-Length of the matching GET, without the body.
        self.send_header("Content-Length", str(len(response.body)))
        self.send_header("X-Request-Id", f"localhub-{len(self.hub.requests)}")
        self.end_headers()
        if method != "HEAD" and response.body:
            self.wfile.write(response.body)
