"""The app-service client: installed apps, middlewares, the OS version."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest
import respx

from market_ledger.adapters.app_service.client import (
    MIDDLEWARE_SOURCE,
    AppServiceClient,
    app_service_base_url,
)
from market_ledger.adapters.remote.client import RetrySettings
from market_ledger.service.ports import RemoteError
from market_ledger.service.remote_values import InstalledApps
from tests.fixtures import APP_SERVICE_EXAMPLES, fixture
from tests.support.fakes import FakeAppService, Reply

T = TypeVar("T")
FAST = RetrySettings(attempts=2, base_delay=0.001)
EXAMPLES = fixture(APP_SERVICE_EXAMPLES)
BASE = "http://app-service.test:6755"


def run(make: Callable[[], Awaitable[T]]) -> T:
    async def go() -> T:
        return await make()

    return asyncio.run(go())


def example(name: str) -> Any:
    return json.loads(EXAMPLES.read_text(encoding="utf-8"))["app_service"][name]


def client_for(service: FakeAppService) -> AppServiceClient:
    return AppServiceClient(service.host, service.port, retry=FAST)


@pytest.mark.parametrize(
    ("host", "port", "url"),
    [
        ("app-service.os-framework", 6755, "http://app-service.os-framework:6755"),
        ("10.0.0.1", "80", "http://10.0.0.1:80"),
        ("http://localhost", None, "http://localhost"),
        ("https://apps.test/", "", "https://apps.test"),
    ],
)
def test_base_url_from_host_and_port(host: str, port: int | str | None, url: str) -> None:
    assert app_service_base_url(host, port) == url


# --- all/apps -----------------------------------------------------------------------------------


@respx.mock
def test_given_the_reference_payload_when_all_apps_then_typed_records_come_back() -> None:
    respx.get(f"{BASE}/app-service/v1/all/apps").mock(
        return_value=httpx.Response(200, json=example("GET /app-service/v1/all/apps (bare array)"))
    )
    answer = run(lambda: AppServiceClient("app-service.test", 6755).all_apps())
    assert not answer.empty and len(answer) == 2
    jellyfin, olares = answer.apps
    assert jellyfin.key == ("alice", "jellyfin")
    assert (jellyfin.appid, jellyfin.source, jellyfin.title, jellyfin.state) == (
        "5b8d1c2e",
        "market",
        "Jellyfin",
        "running",
    )
    assert jellyfin.status_time is not None and jellyfin.status_time.hour == 6
    assert [(e.name, e.url, e.invisible) for e in jellyfin.entrances] == [
        ("jellyfin", "5b8d1c2e.alice.olares.com", False),
        ("jellyfin-admin", "5b8d1c2e1.alice.olares.com", True),
    ]
    assert jellyfin.entrances[0].raw["port"] == 8096
    assert [(s.name, s.state, s.reason) for s in jellyfin.entrance_statuses] == [
        ("jellyfin", "running", "Running"),
        ("jellyfin-admin", "running", "Running"),
    ]
    assert olares.source == "system" and olares.shared_entrances == ()


def test_given_installed_apps_on_the_fake_then_all_apps_lists_every_users_apps() -> None:
    with FakeAppService() as service:
        service.install("alice", "jellyfin", entrances=["jellyfin", "admin"])
        service.install("bob", "ollama", state="installing")
        answer = run(lambda: client_for(service).all_apps())
    assert {app.key: app.state for app in answer.apps} == {
        ("alice", "jellyfin"): "running",
        ("bob", "ollama"): "installing",
    }
    assert [e.name for e in answer.apps[0].entrances] == ["jellyfin", "admin"]


def test_given_no_installed_app_then_all_apps_is_a_valid_but_distinguishably_empty_answer() -> None:
    with FakeAppService() as service:
        answer = run(lambda: client_for(service).all_apps())
    assert answer == InstalledApps(())
    assert answer.empty


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (Reply.error(500), "HTTP 500"),
        (Reply.garbage(), "body is not JSON"),
        (Reply.empty(), "empty body"),
        (Reply.json({"apps": []}), "wrong shape: the all/apps answer must be an array, got object"),
    ],
    ids=["500", "garbage", "empty", "object"],
)
def test_given_a_broken_all_apps_answer_then_it_raises_rather_than_reading_as_nothing_installed(
    reply: Reply, reason: str
) -> None:
    with FakeAppService() as service:
        service.install("alice", "jellyfin")
        service.fail("all-apps", reply)
        with pytest.raises(RemoteError) as caught:
            run(lambda: client_for(service).all_apps())
        if reply.status == 500:
            assert service.count("all-apps") == FAST.attempts
    assert reason in caught.value.reason
    assert caught.value.service == "app-service"


def broken(change: Callable[[dict[str, Any]], None]) -> list[dict[str, Any]]:
    apps: list[dict[str, Any]] = copy.deepcopy(example("GET /app-service/v1/all/apps (bare array)"))
    change(apps[1])
    return apps


@respx.mock
@pytest.mark.parametrize(
    ("apps", "reason"),
    [
        (broken(lambda a: a["spec"].pop("owner")), "[1].spec.owner is missing"),
        (broken(lambda a: a["spec"].update(name="")), "[1].spec.name is empty"),
        (
            broken(lambda a: a["status"].update(state=3)),
            "[1].status.state must be a string, got number",
        ),
        (
            broken(lambda a: a["status"].update(statusTime="last tuesday")),
            "[1].status.statusTime must be an RFC 3339 time, got 'last tuesday'",
        ),
        (
            broken(lambda a: a["spec"].update(entrances={"x": 1})),
            "[1].spec.entrances must be an array, got object",
        ),
        ([*broken(lambda a: None), "app"], "[2] must be an object, got string"),
    ],
    ids=["no-owner", "no-name", "state-number", "bad-time", "entrances-object", "not-object"],
)
def test_given_a_record_that_does_not_decode_then_the_whole_answer_fails_naming_the_field(
    apps: list[Any], reason: str
) -> None:
    respx.get(f"{BASE}/app-service/v1/all/apps").mock(return_value=httpx.Response(200, json=apps))
    with pytest.raises(RemoteError) as caught:
        run(lambda: AppServiceClient("app-service.test", 6755).all_apps())
    assert caught.value.reason == f"wrong shape: {reason}"


# --- middlewares --------------------------------------------------------------------------------


@respx.mock
def test_given_the_reference_payload_then_middlewares_become_app_like_records() -> None:
    respx.get(f"{BASE}/app-service/v1/middlewares/status").mock(
        return_value=httpx.Response(200, json=example("GET /app-service/v1/middlewares/status"))
    )
    [postgres] = run(lambda: AppServiceClient("app-service.test", 6755).middlewares()).apps
    assert (postgres.owner, postgres.name, postgres.appid) == ("alice", "postgres", "postgres")
    assert (postgres.source, postgres.title, postgres.state) == (
        MIDDLEWARE_SOURCE,
        "PostgreSQL",
        "running",
    )
    assert postgres.update_time == postgres.status_time == postgres.last_transition_time
    assert postgres.update_time is not None and postgres.update_time.hour == 5
    assert postgres.entrances == ()


def test_given_middlewares_on_the_fake_then_they_are_listed() -> None:
    with FakeAppService() as service:
        service.add_middleware("alice", "postgres")
        service.add_middleware("bob", "redis", status="pending", resource_type="redis")
        answer = run(lambda: client_for(service).middlewares())
    assert {(m.owner, m.name, m.state) for m in answer.apps} == {
        ("alice", "postgres", "running"),
        ("bob", "redis", "pending"),
    }


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (Reply.error(502), "HTTP 502"),
        (Reply.garbage(), "body is not JSON"),
        (
            Reply.json({"code": 500, "message": "k8s unreachable"}),
            "answered code 500: k8s unreachable",
        ),
        (Reply.json({"code": 200, "data": {"postgres": {}}}), "data must be an array, got object"),
        (
            Reply.json({"code": 200, "data": [{"user": "alice", "metadata": {}}]}),
            "wrong shape: data[0].metadata.name is missing",
        ),
    ],
    ids=["502", "garbage", "code-500", "data-object", "no-name"],
)
def test_given_a_failing_middleware_call_then_it_raises_rather_than_meaning_no_middlewares(
    reply: Reply, reason: str
) -> None:
    with FakeAppService() as service:
        service.add_middleware("alice", "postgres")
        service.fail("middlewares", reply)
        with pytest.raises(RemoteError) as caught:
            run(lambda: client_for(service).middlewares())
    assert reason in caught.value.reason


def test_given_middlewares_with_null_data_then_there_are_none() -> None:
    with FakeAppService() as service:
        service.fail("middlewares", Reply.json({"code": 200, "data": None}))
        assert run(lambda: client_for(service).middlewares()).empty


# --- version ------------------------------------------------------------------------------------


def test_the_terminus_version_is_read() -> None:
    with FakeAppService(version="1.12.4") as service:
        assert run(lambda: client_for(service).terminus_version()) == "1.12.4"
        assert service.count("version") == 1


@pytest.mark.parametrize("body", [{"version": ""}, {}, {"version": 112}])
def test_given_no_usable_version_then_it_raises(body: dict[str, Any]) -> None:
    with FakeAppService() as service:
        service.fail("version", Reply.json(body))
        with pytest.raises(RemoteError, match="version must be a non-empty string"):
            run(lambda: client_for(service).terminus_version())
