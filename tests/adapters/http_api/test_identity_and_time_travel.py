"""Who asks is unambiguous, bodies are JSON, and time travel cannot starve the market routes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from market_ledger.adapters.http_api.common import HttpSettings
from market_ledger.bootstrap import Ledger
from market_ledger.domain.market_source import ConfigureSource
from market_ledger.domain.user import RegisterUser
from market_ledger.projections import time_travel
from tests.support.builders import SOURCE, fail, offer
from tests.support.http_live import LEDGER, MARKET, Api, live_api


@pytest.fixture
def written(ledger: Ledger) -> Ledger:
    v1 = offer()
    ledger.handler.handle(
        RegisterUser("alice"),
        RegisterUser("root", role="admin"),
        ConfigureSource(SOURCE, "remote", "https://market.example"),
        v1,
        *(fail(v1) for _ in range(10)),
    )
    ledger.catch_up()
    return ledger


@pytest.fixture
def http(written: Ledger) -> Iterator[Api]:
    with live_api(written) as api:
        yield api


def test_given_two_user_headers_when_asking_then_the_identity_is_refused_as_ambiguous(
    http: Api,
) -> None:
    headers = [("X-Bfl-User", "alice"), ("X-Bfl-User", "root")]
    for path in (f"{MARKET}/market/hash", f"{LEDGER}/status"):
        response = http.client.get(path, headers=headers)
        assert response.status_code == 400, response.text
        assert "ambiguous identity: 2 X-Bfl-User headers" in response.json()["message"]
    assert http.get(f"{MARKET}/market/hash").status_code == 200


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_given_a_body_not_declared_json_when_posting_then_it_is_refused_with_415(
    http: Api, content_type: str | None
) -> None:
    body = b'{"user": "alice", "app_id": "firefox"}'
    for path, user in ((f"{MARKET}/apps", "alice"), (f"{LEDGER}/retry", "root")):
        headers = {"X-Bfl-User": user, **({"Content-Type": content_type} if content_type else {})}
        response = http.client.post(path, content=body, headers=headers)
        assert response.status_code == 415, response.text
        assert "must be sent as application/json" in response.json()["message"]


def test_given_json_with_a_charset_when_posting_then_it_is_accepted(http: Api) -> None:
    response = http.post(
        f"{LEDGER}/retry",
        as_user="root",
        content=b'{"user": "alice", "app_id": "firefox"}',
        headers={"Content-Type": "Application/JSON; charset=utf-8"},
    )
    assert http.data(response)["status"] == "pending"


class HeldReplays:
    """Time-travel replays that wait until released: requests provably still running."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.release = threading.Event()
        self.running = 0
        self._lock = threading.Lock()
        real = time_travel.replay_user

        def held(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.running += 1
            self.release.wait(60)
            return real(*args, **kwargs)

        monkeypatch.setattr(time_travel, "replay_user", held)

    def wait_running(self, count: int) -> None:
        deadline = time.monotonic() + 20
        while self.running < count:
            assert time.monotonic() < deadline, f"{self.running} of {count} replays started"
            time.sleep(0.01)


def travel(base_url: str) -> httpx.Response:
    with httpx.Client(base_url=base_url, timeout=60) as client:
        return client.get(
            f"{LEDGER}/catalog", params={"position": 1}, headers={"X-Bfl-User": "alice"}
        )


def test_given_time_travels_in_flight_when_market_hash_is_asked_then_it_answers_meanwhile(
    written: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = HeldReplays(monkeypatch)
    settings = HttpSettings(time_travel_threads=2, time_travel_queue=8)
    with live_api(written, settings=settings) as api, ThreadPoolExecutor(8) as pool:
        # more than the store has threads: in them, these would leave none for the market
        travels: list[Future[httpx.Response]] = [
            pool.submit(travel, api.base_url) for _ in range(8)
        ]
        held.wait_running(2)
        answer = api.client.get(
            f"{MARKET}/market/hash", headers={"X-Bfl-User": "alice"}, timeout=10
        )
        assert answer.status_code == 200
        assert held.running == 2 and not any(t.done() for t in travels)
        held.release.set()
        assert [t.result().status_code for t in travels] == [200] * 8


def test_given_time_travel_threads_and_queue_full_when_one_more_asks_then_503_retry_after(
    written: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = HeldReplays(monkeypatch)
    settings = HttpSettings(time_travel_threads=1, time_travel_queue=0)
    with live_api(written, settings=settings) as api, ThreadPoolExecutor(1) as pool:
        first = pool.submit(travel, api.base_url)
        held.wait_running(1)
        refused = travel(api.base_url)
        assert refused.status_code == 503, refused.text
        assert refused.headers["Retry-After"] == "2"
        assert "time travel is busy" in refused.json()["message"]
        assert api.get(f"{LEDGER}/catalog", as_user="alice").status_code == 200  # not time travel
        held.release.set()
        assert first.result().status_code == 200
