"""One HTTP/1.1 connection kept open for calls one after another (the render workers').

The server is a small scripted one on loopback, in the test's own event loop: each test says
what it answers, and the server counts the connections it accepted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from market_ledger.adapters.remote.keep_alive import Answer, KeepAliveConnection
from market_ledger.service.ports import RemoteError

SERVICE = "thing"

#: an answer: the raw bytes written back for one request (the request line, headers and body)
Script = Callable[[bytes], Awaitable[bytes | None]]


def reply(body: bytes = b'{"ok": true}', status: str = "200 OK", *extra: str) -> bytes:
    head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class ScriptedServer:
    """Answers each request with ``script(request)``; ``None`` closes the connection."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None
        self.url = ""

    async def __aenter__(self) -> ScriptedServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                answer = await self.script(request)
                if answer is None:
                    break
                writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def served(
    script: Script, calls: Callable[[KeepAliveConnection, ScriptedServer], Awaitable[Any]]
) -> tuple[Any, ScriptedServer]:
    """What ``calls`` returned over one connection, and the server (its counts)."""

    async def go() -> tuple[Any, ScriptedServer]:
        async with (
            ScriptedServer(script) as server,
            KeepAliveConnection(server.url) as connection,
        ):
            return await calls(connection, server), server

    return asyncio.run(go())


async def post(connection: KeepAliveConnection, server: ScriptedServer, **body: Any) -> Answer:
    return await connection.request(
        SERVICE, "POST", server.url + "/api/v2/render", timeout=1.0, json_body=body
    )


async def always_ok(request: bytes) -> bytes:
    return reply()


def test_given_calls_one_after_another_then_they_share_one_connection() -> None:
    # when
    async def calls(connection: KeepAliveConnection, server: ScriptedServer) -> list[Answer]:
        return [await post(connection, server, n=n) for n in range(3)]

    answers, server = served(always_ok, calls)
    # then
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert answers[0].content == b'{"ok": true}'
    assert server.connections == 1
    head, _, body = server.requests[2].partition(b"\r\n\r\n")
    assert head.startswith(b"POST /api/v2/render HTTP/1.1\r\n")
    assert b"content-type: application/json" in head.lower()
    assert body == b'{"n":2}'


def test_given_the_server_closes_after_an_answer_then_the_next_call_opens_a_new_connection() -> (
    None
):
    # given: every answer says the connection ends with it
    async def closing(request: bytes) -> bytes:
        return reply(b"{}", "200 OK", "Connection: close")

    # when
    async def calls(connection: KeepAliveConnection, server: ScriptedServer) -> list[int]:
        first = await post(connection, server)
        await asyncio.sleep(0.05)  # the server's close reaches the client
        second = await post(connection, server)
        return [first.status_code, second.status_code]

    statuses, server = served(closing, calls)
    # then
    assert statuses == [200, 200]
    assert server.connections == 2


def test_given_a_chunked_answer_then_its_whole_body_is_read() -> None:
    # given
    async def chunked(request: bytes) -> bytes:
        return (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n"
            b'\r\n5\r\n{"a":\r\n3\r\n 1}\r\n0\r\n\r\n'
        )

    # when
    answer, _ = served(chunked, post)
    # then
    assert answer.content == b'{"a": 1}'
    assert answer.headers["content-type"] == "application/json"


def test_given_a_500_then_the_error_names_the_status_and_the_body() -> None:
    # given
    async def failing(request: bytes) -> bytes:
        return reply(b"database down", "500 Internal Server Error")

    # when
    with pytest.raises(RemoteError) as caught:
        served(failing, post)
    # then
    assert caught.value.status == 500
    assert caught.value.reason == "HTTP 500: database down"


def test_given_a_server_slower_than_the_timeout_then_it_times_out_and_the_next_call_works() -> None:
    # given: the first answer comes late, the others at once
    async def slow_once(request: bytes) -> bytes:
        if b'"slow":true' in request:
            await asyncio.sleep(0.5)
        return reply()

    # when
    async def calls(connection: KeepAliveConnection, server: ScriptedServer) -> list[str]:
        outcomes = []
        for body in ({"slow": True}, {"slow": False}):
            try:
                await connection.request(
                    SERVICE, "POST", server.url + "/x", timeout=0.1, json_body=body
                )
                outcomes.append("answered")
            except RemoteError as error:
                outcomes.append(error.reason)
        return outcomes

    outcomes, server = served(slow_once, calls)
    # then: the late answer is not taken for the next call's
    assert outcomes == ["timed out after 0.1 s", "answered"]
    assert server.connections == 2


def test_given_the_server_hangs_up_without_an_answer_then_it_is_a_transport_error() -> None:
    # given
    async def hang_up(request: bytes) -> None:
        return None

    # when
    with pytest.raises(RemoteError) as caught:
        served(hang_up, post)
    # then
    assert caught.value.reason.startswith("transport error: ")
    assert caught.value.status is None


def test_given_nothing_listening_then_it_is_a_transport_error() -> None:
    async def go() -> None:
        async with ScriptedServer(always_ok) as server:
            url = server.url
        async with KeepAliveConnection(url) as connection:
            await connection.request(SERVICE, "GET", url + "/x", timeout=1.0)

    with pytest.raises(RemoteError) as caught:
        asyncio.run(go())
    assert caught.value.reason.startswith("transport error: ConnectionRefusedError")


def test_credentials_in_the_url_are_sent_as_basic_authentication_not_in_the_host() -> None:
    # when
    async def calls(connection: KeepAliveConnection, server: ScriptedServer) -> Answer:
        with_credentials = KeepAliveConnection(server.url.replace("//", "//chart%40ops:s3cret@"))
        async with with_credentials:
            return await with_credentials.request(
                SERVICE, "GET", with_credentials.origin + "/x", timeout=1.0
            )

    _, server = served(always_ok, calls)
    # then
    head = server.requests[0].decode().lower()
    assert "authorization: basic y2hhcnrab3bzonmzy3jlda==" in head  # chart@ops:s3cret
    assert f"host: {server.url.removeprefix('http://')}" in head


def test_a_url_of_another_origin_is_refused() -> None:
    async def go() -> None:
        async with KeepAliveConnection("http://127.0.0.1:1") as connection:
            await connection.request(SERVICE, "GET", "http://elsewhere.test/x", timeout=1.0)

    with pytest.raises(ValueError, match="origin"):
        asyncio.run(go())


def test_a_base_url_that_is_not_http_is_refused() -> None:
    with pytest.raises(ValueError, match="not an http"):
        KeepAliveConnection("ftp://charts.test/")
