"""One HTTP/1.1 connection kept open to one origin, for calls made one after another.

Each render worker posts hundreds of small requests to chart-repo, one at a time. Through
httpx a render call cost about half a millisecond of CPU (its pool, anyio, the request and
response models); written in one piece and read with h11 on asyncio's own transport, the same
call, its decoding and checks included, costs under 0.2 ms. At 16 workers sharing one event
loop, that difference decided whether the next renders started on time.

The connection opens on first use, and again after the server closed it, after a call that
failed (its state is unknown then) or an answer that said ``Connection: close``. Failures
raise ``RemoteError`` with the reasons :func:`market_ledger.adapters.remote.client.send`
gives; a call is never retried here. No proxy is used (nor is one by the httpx connection
the workers had before).
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from types import TracebackType
from typing import Any, Self
from urllib.parse import unquote, urlsplit

import attrs
import h11
import orjson

from market_ledger.adapters.remote.client import checked_status, timed_out, transport_failed


@attrs.frozen
class Answer:
    """A complete answer: status, headers (names in lower case) and body."""

    status_code: int
    headers: dict[str, str]
    content: bytes
    url: str


class _Stream(asyncio.Protocol):
    """The socket's bytes as they arrive, and whether the server has closed it."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.received: list[bytes] = []
        self.closed = False
        self._waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.received.append(data)
        self._wake()

    def eof_received(self) -> bool:
        self.closed = True
        self._wake()
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def read(self) -> bytes:
        """What arrived since the last read; ``b""`` once the server closed the connection."""
        while not self.received:
            if self.closed:
                return b""
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        data = b"".join(self.received)
        self.received.clear()
        return data


class KeepAliveConnection:
    """Calls to ``base_url``'s origin over one connection; use it as ``async with``."""

    def __init__(self, base_url: str, *, tls: ssl.SSLContext | None = None) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.secure = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.secure else 80)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self._host_header = parts.netloc.rpartition("@")[2]
        #: credentials in the URL are sent as basic authentication (as httpx does), never
        #: as part of the Host header
        self._authorization = (
            "Basic "
            + base64.b64encode(
                f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            ).decode()
            if parts.username
            else None
        )
        self._tls = tls if tls is not None or not self.secure else ssl.create_default_context()
        self._stream: _Stream | None = None
        self._h11: h11.Connection | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        stream, self._stream, self._h11 = self._stream, None, None
        if stream is not None and stream.transport is not None:
            stream.transport.close()

    async def request(
        self, service: str, method: str, url: str, *, timeout: float, json_body: Any = None
    ) -> Answer:
        """One call: a 2xx answer, or ``RemoteError`` (closing the connection unless the
        answer was complete)."""
        if not url.startswith(self.origin):
            raise ValueError(f"{url!r} is not on this connection's origin {self.origin}")
        target = url[len(self.origin) :] or "/"
        headers = [("Host", self._host_header)]
        if self._authorization is not None:
            headers.append(("Authorization", self._authorization))
        body = b""
        if json_body is not None:
            body = orjson.dumps(json_body)
            headers.append(("Content-Type", "application/json"))
        headers.append(("Content-Length", str(len(body))))
        try:
            async with asyncio.timeout(timeout):
                answer = await self._exchange(method, target, headers, body, url)
        except TimeoutError as error:
            self.close()
            raise timed_out(service, url, timeout) from error
        except (OSError, h11.ProtocolError) as error:
            self.close()
            raise transport_failed(service, url, error) from error
        except BaseException:  # cancelled half-way: what the connection holds is unknown
            self.close()
            raise
        checked_status(answer, service, url)
        return answer

    async def _exchange(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes, url: str
    ) -> Answer:
        stream, state = await self._open()
        request = h11.Request(method=method, target=target, headers=headers)
        assert stream.transport is not None
        # one write for the request line, headers and body: one segment for a small call
        stream.transport.write(
            state.send(request) + state.send(h11.Data(data=body)) + state.send(h11.EndOfMessage())
        )
        status = 0
        answer_headers: dict[str, str] = {}
        chunks: list[bytes] = []
        while True:
            event = state.next_event()
            if event is h11.NEED_DATA:
                state.receive_data(await stream.read())
            elif isinstance(event, h11.Response):
                status = event.status_code
                answer_headers = {
                    name.decode("latin-1"): value.decode("latin-1") for name, value in event.headers
                }
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionResetError("the server closed the connection without an answer")
            # an informational (1xx) answer precedes the real one: read on
        if state.our_state is h11.DONE and state.their_state is h11.DONE:
            state.start_next_cycle()
        else:  # the server will close it (or said so): open a new one for the next call
            self.close()
        return Answer(status, answer_headers, b"".join(chunks), url)

    async def _open(self) -> tuple[_Stream, h11.Connection]:
        stream, state = self._stream, self._h11
        if stream is not None and state is not None and not stream.closed and not stream.received:
            return stream, state
        # closed by the server while idle, or bytes nobody asked for: start afresh
        self.close()
        loop = asyncio.get_running_loop()
        _, opened = await loop.create_connection(
            _Stream,
            self.host,
            self.port,
            ssl=self._tls if self.secure else None,
            server_hostname=self.host if self.secure else None,
        )
        # asyncio's transports send without Nagle's delay (TCP_NODELAY) already
        self._stream, self._h11 = opened, h11.Connection(h11.CLIENT)
        return opened, self._h11
