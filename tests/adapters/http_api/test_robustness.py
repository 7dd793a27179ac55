"""Bad requests get clear 4xx answers in JSON; failures never leak details; clean serving."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from market_ledger.adapters.http_api.common import HttpSettings
from market_ledger.adapters.http_api.server import create_app, serve_http
from market_ledger.bootstrap import Ledger
from market_ledger.domain.market_source import ConfigureSource
from market_ledger.domain.user import RegisterUser
from tests.support.builders import SOURCE, offer, render
from tests.support.http_live import LEDGER, MARKET, Api, live_api

SETTINGS = HttpSettings(max_body_bytes=2048, max_apps_per_request=3)


@pytest.fixture
def market(ledger: Ledger) -> Ledger:
    v1 = offer()
    ledger.handler.handle(
        RegisterUser("alice"),
        RegisterUser("root", role="admin"),
        ConfigureSource(SOURCE, "remote", "https://market.example"),
        v1,
        render(v1),
    )
    ledger.catch_up()
    return ledger


@pytest.fixture
def http(market: Ledger) -> Iterator[Api]:
    with live_api(market, settings=SETTINGS) as api:
        yield api


def apps(*pairs: tuple[str, str]) -> dict[str, Any]:
    return {"apps": [{"appid": a, "sourceDataName": s} for a, s in pairs]}


def test_an_oversized_body_is_refused_with_413_before_it_is_read(http: Api) -> None:
    body = b'{"apps": [' + b" " * 4096 + b"]}"
    response = http.post(f"{MARKET}/apps", content=body)
    http.data(response, 413)
    assert "2048 bytes" in response.json()["message"]


def test_an_oversized_body_without_a_length_is_cut_off_with_413(http: Api) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"apps": ['
        for _ in range(100):
            yield b" " * 100

    response = http.post(f"{MARKET}/apps", content=chunks())
    http.data(response, 413)
    retry = http.post(f"{LEDGER}/retry", content=chunks(), as_user="root")
    http.data(retry, 413)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "JSON body is required"),
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"apps": "firefox"}', "'apps' must be a list"),
        (b'{"apps": []}', "cannot be empty"),
        (b'{"apps": [42]}', "apps[0] must be an object"),
        (b'{"apps": [{"appid": 1, "sourceDataName": "s"}]}', "must be strings"),
        (b'{"apps": [{"appid": " ", "sourceDataName": "s"}]}', "must not be empty"),
        (b'{"apps": [{"appid": "a\\u0001", "sourceDataName": "s"}]}', "control characters"),
    ],
)
def test_a_bad_apps_body_gets_400_with_a_reason(http: Api, body: bytes, reason: str) -> None:
    response = http.post(f"{MARKET}/apps", content=body)
    http.data(response, 400)
    assert reason in response.json()["message"]


def test_too_many_apps_in_one_request_get_400(http: Api) -> None:
    response = http.post(f"{MARKET}/apps", apps(*[(f"a{i}", SOURCE) for i in range(4)]))
    http.data(response, 400)
    assert "at most 3 apps" in response.json()["message"]


def test_a_bad_retry_body_gets_400_with_a_reason(http: Api) -> None:
    response = http.post(f"{LEDGER}/retry", {"user": "alice", "app_id": 7}, as_user="root")
    http.data(response, 400)
    assert "'app_id' must be a string" in response.json()["message"]


def test_a_name_that_is_too_long_gets_400(http: Api) -> None:
    response = http.get(f"{MARKET}/market/hash", as_user="root", user="x" * 300)
    http.data(response, 400)
    assert "longer than 255" in response.json()["message"]
    http.data(http.get(f"{MARKET}/market/hash", as_user="y" * 300), 400)


def test_unknown_routes_and_methods_answer_in_json(http: Api) -> None:
    http.data(http.get(f"{MARKET}/market/nothing"), 404)
    response = http.client.delete(f"{MARKET}/market/hash")
    http.data(response, 405)
    assert "GET" in response.headers["allow"]


class FailingReads:
    """The ledger's services, with reads that fail in a chosen way."""

    def __init__(self, ledger: Ledger, error: Exception) -> None:
        self._ledger = ledger
        self.error = error
        self.tables = ledger.tables
        self.projector = ledger.projector
        self.handler = ledger.handler
        self.application = ledger.application

    def read(self) -> AbstractContextManager[Connection]:
        raise self.error


def test_an_unexpected_error_is_a_generic_500_and_logged_with_its_details(
    market: Ledger, caplog: pytest.LogCaptureFixture
) -> None:
    services = FailingReads(market, RuntimeError("secret table layout"))
    with caplog.at_level(logging.ERROR), live_api(services) as api:
        response = api.get(f"{MARKET}/market/data")
    api.data(response, 500)
    assert "secret" not in response.text and "Traceback" not in response.text
    assert response.json()["message"] == "internal error; it has been logged"
    assert any("secret table layout" in (r.exc_text or "") for r in caplog.records)


def test_an_unreachable_store_answers_503(market: Ledger) -> None:
    error = sa.exc.OperationalError("SELECT 1", {}, Exception("connection refused"))
    with live_api(FailingReads(market, error)) as api:
        response = api.get(f"{MARKET}/market/hash")
        api.data(response, 503)
        assert "connection refused" not in response.text
        ready = api.get("/readyz", as_user=None)
        assert api.data(ready, 503)["reason"] == "the store is unreachable"


def test_serve_http_stops_cleanly_when_told_and_frees_its_port(market: Ledger) -> None:
    app = create_app(market)

    async def scenario() -> int:
        stop = asyncio.Event()
        ports: list[int] = []
        server = asyncio.create_task(
            serve_http(app, "127.0.0.1", 0, stop, on_listening=ports.append)
        )
        while not ports:
            await asyncio.sleep(0.01)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports[0]}") as client:
            response = await client.get("/healthz")
            assert response.status_code == 200
        stop.set()
        await asyncio.wait_for(server, 10)
        return ports[0]

    port = asyncio.run(scenario())
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))  # free again


def test_serve_http_raises_when_its_port_is_taken(market: Ledger) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError):
            asyncio.run(serve_http(create_app(market), "127.0.0.1", port, asyncio.Event()))
