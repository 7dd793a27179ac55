"""The base of the fake servers: a real HTTP server on 127.0.0.1, in a daemon thread.

A fake records every request, answers through :meth:`FakeHttpServer.handle`, and can be told
to misbehave per endpoint for the next N requests (or until told otherwise): any
:class:`Reply` (an empty body, garbage, a 500...), optionally late. Usable from plain and
asyncio tests alike, since the server runs on its own thread.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import attrs


@attrs.frozen
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@attrs.frozen
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    #: seconds to wait before answering (a slow server, or one slower than a client timeout)
    delay: float = 0.0

    @classmethod
    def json(cls, value: Any, status: int = 200, delay: float = 0.0) -> Reply:
        return cls(status=status, body=json.dumps(value).encode("utf-8"), delay=delay)

    @classmethod
    def empty(cls, status: int = 200) -> Reply:
        return cls(status=status, body=b"")

    @classmethod
    def garbage(cls, status: int = 200) -> Reply:
        return cls(
            status=status,
            body=b"<html><body>502 Bad Gateway (not really)</body></html>",
            content_type="text/html",
        )

    @classmethod
    def error(cls, status: int = 500, message: str = "internal error") -> Reply:
        return cls.json({"success": False, "message": message, "data": None}, status=status)

    def later(self, delay: float) -> Reply:
        return attrs.evolve(self, delay=delay)


class _Server(ThreadingHTTPServer):
    # a deep backlog: with the default of 5, a burst of concurrent clients sees dropped SYNs
    # and one-second retransmits
    request_queue_size = 128
    daemon_threads = True


@attrs.define
class _Fault:
    reply: Reply
    remaining: int | None  # None: until cleared


class FakeHttpServer:
    """Subclasses implement :meth:`handle` and name their endpoints via :meth:`endpoint_of`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._requests: list[RecordedRequest] = []
        self._faults: dict[str, _Fault] = {}
        self._latency: dict[str, float] = {}
        self._server = _Server(("127.0.0.1", 0), _handler_for(self))
        self._thread: threading.Thread | None = None

    # --- life -------------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def host_port(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host_port}"

    def start(self) -> Self:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"{type(self).__name__}:{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # --- what the test controls and reads ---------------------------------------------------

    def fail(self, endpoint: str, reply: Reply, times: int | None = None) -> None:
        """Answer ``endpoint`` with ``reply`` for the next ``times`` requests (None: always)."""
        with self._lock:
            self._faults[endpoint] = _Fault(reply, times)

    def heal(self, endpoint: str | None = None) -> None:
        """Stop misbehaving on ``endpoint`` (or on every endpoint)."""
        with self._lock:
            if endpoint is None:
                self._faults.clear()
            else:
                self._faults.pop(endpoint, None)

    def set_latency(self, endpoint: str, seconds: float) -> None:
        """Answer ``endpoint`` only after ``seconds`` (0 to answer at once)."""
        with self._lock:
            self._latency[endpoint] = seconds

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_to(self, endpoint: str) -> list[RecordedRequest]:
        return [r for r in self.requests if self.endpoint_of(r.path) == endpoint]

    def count(self, endpoint: str) -> int:
        return len(self.requests_to(endpoint))

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    # --- for subclasses ---------------------------------------------------------------------

    def endpoint_of(self, path: str) -> str:
        """The endpoint name of a path (used for faults, latency and counts)."""
        return path

    def handle(self, request: RecordedRequest) -> Reply:
        raise NotImplementedError

    def wait(self, seconds: float) -> None:
        """Sleep in a handler, cut short when the server stops."""
        if seconds > 0:
            self._stopping.wait(seconds)

    def _answer(self, request: RecordedRequest) -> Reply:
        endpoint = self.endpoint_of(request.path)
        with self._lock:
            self._requests.append(request)
            latency = self._latency.get(endpoint, 0.0)
            fault = self._faults.get(endpoint)
            reply = None
            if fault is not None:
                reply = fault.reply
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        del self._faults[endpoint]
        self.wait(latency)
        if reply is None:
            try:
                reply = self.handle(request)
            except Exception as error:  # a bug in a fake must show, not hang the client
                reply = Reply(status=599, body=repr(error).encode(), content_type="text/plain")
        self.wait(reply.delay)
        return reply


def _handler_for(fake: FakeHttpServer) -> Callable[..., BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # Keep connections open between requests and send without delay, as real services do
        # (headers and body are written separately; with Nagle's algorithm on, the body
        # would wait for the client's delayed acknowledgement of the headers).
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = RecordedRequest(
                method=self.command,
                path=parts.path,
                query=parse_qs(parts.query, keep_blank_values=True),
                headers={key.lower(): value for key, value in self.headers.items()},
                body=body,
            )
            reply = fake._answer(request)
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout under test)

        do_GET = _serve
        do_POST = _serve
        do_PUT = _serve
        do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
