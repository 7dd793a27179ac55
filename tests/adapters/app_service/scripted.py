"""An app-service on loopback that answers operations as a test scripts them, and two ways for
a call to go wrong: nobody listening, or a server that hangs up once it has the request."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.support.fakes import RecordedRequest, Reply
from tests.support.fakes.http_fake import FakeHttpServer

ACCEPTED = {"code": 200, "message": "success", "data": {"opID": "7f3c2a9e1b"}}


class ScriptedAppService(FakeHttpServer):
    """Answers each request with the next scripted reply (then: accepted, opID 7f3c2a9e1b)."""

    def __init__(self, *replies: Reply) -> None:
        super().__init__()
        self._replies = list(replies)
        self._script_lock = threading.Lock()

    def script(self, *replies: Reply) -> None:
        with self._script_lock:
            self._replies.extend(replies)

    def handle(self, request: RecordedRequest) -> Reply:
        with self._script_lock:
            if self._replies:
                return self._replies.pop(0)
        return Reply.json(ACCEPTED)

    @property
    def only_request(self) -> RecordedRequest:
        requests = self.requests
        assert len(requests) == 1, f"expected one request, got {len(requests)}"
        return requests[0]

    def body(self) -> Any:
        return self.only_request.json()


@contextmanager
def refusing_port() -> Iterator[int]:
    """A loopback port bound but not listening: a connection to it is refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])
    finally:
        sock.close()


class HangingUp:
    """A server that reads the request, then closes the connection without answering."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)
        self._sock.settimeout(0.1)
        self._stop = threading.Event()
        self.received = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                self.received.set()

    def __enter__(self) -> HangingUp:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()
