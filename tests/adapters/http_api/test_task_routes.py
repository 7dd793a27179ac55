"""The five task routes over real HTTP: paths, bodies, messages, status codes, sync waits."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from market_ledger.bootstrap import Ledger
from market_ledger.domain.clone_name import clone_app_name, clone_request_hash
from market_ledger.domain.installation import ObserveInstallationState
from market_ledger.domain.market_source import ConfigureSource
from market_ledger.domain.task import AcceptTask, DispatchTask, ObserveOutcome, RequestTask
from market_ledger.domain.task_events import TaskStatus
from market_ledger.domain.user import RegisterUser
from market_ledger.service.app_operations import AnswerUnknown, EnvValue, Rejected
from market_ledger.service.handler import utc_now
from market_ledger.service.task_dispatcher import Dispatcher, TaskSettings
from market_ledger.service.task_requests import TaskRequests
from tests.conftest import FakeClock
from tests.support.builders import SOURCE, offer, render
from tests.support.fake_operations import ScriptedOperations
from tests.support.http_live import MARKET, Api, live_api

TOKEN = "eyJhbGciOiJIUzI1NiJ9.alice.sig"
AUTH = {"X-Authorization": TOKEN}
INSTALL = {"source": SOURCE, "app_name": "firefox", "version": "1.0.0"}
MISSING = "Missing required fields: source, app_name, and version are required"


class Setup:
    def __init__(self, ledger: Ledger, api: Api, port: ScriptedOperations) -> None:
        self.ledger, self.api, self.port = ledger, api, port

    def task(self, task_id: str) -> Any:
        return self.ledger.handler.state_of(AcceptTask(task_id))


@pytest.fixture
def port() -> ScriptedOperations:
    return ScriptedOperations()


@pytest.fixture
def tasks(ledger: Ledger, clock: FakeClock, port: ScriptedOperations) -> Iterator[Setup]:
    firefox = offer("firefox", "1.0.0")
    ledger.handler.handle(
        RegisterUser("alice"),
        RegisterUser("bob"),
        ConfigureSource(SOURCE, "remote", "https://market.example"),
        firefox,
        render(firefox),
        ObserveInstallationState(
            "alice", "notes", "running", clock(), source=SOURCE, version="2.0.0"
        ),
    )
    ledger.catch_up()
    dispatcher = Dispatcher(ledger, port, TaskSettings(sync_wait_seconds=0.5), utc_now)
    with live_api(ledger, tasks=TaskRequests(ledger, dispatcher, utc_now)) as api:
        yield Setup(ledger, api, port)


def test_given_an_install_when_requested_then_it_answers_a_task_id_and_sends_the_token(
    tasks: Setup,
) -> None:
    answer = tasks.api.post(f"{MARKET}/apps/firefox/install", INSTALL, headers=AUTH)
    data = tasks.api.data(answer)
    assert answer.json()["message"] == "App installation started successfully"
    assert re.fullmatch(r"\d{14}-[0-9A-Za-z]{6}", data["task_id"])
    state = tasks.task(data["task_id"])
    assert (state.kind, state.user, state.app_name) == ("install", "alice", "firefox")


def test_given_sync_when_app_service_accepts_then_it_answers_completed_with_the_op_id(
    tasks: Setup,
) -> None:
    answer = tasks.api.post(
        f"{MARKET}/apps/firefox/install", {**INSTALL, "sync": True}, headers=AUTH
    )
    data = tasks.api.data(answer)
    assert answer.json()["message"] == "App installation completed successfully"
    assert data["status"] == "success" and data["opID"] == "op-1"
    assert tasks.port.calls[0].token == TOKEN


def test_given_sync_when_app_service_rejects_then_it_answers_500_with_the_backend_answer(
    tasks: Setup,
) -> None:
    tasks.port.answers["firefox"] = Rejected("code 422: missing env DB_PASSWORD", '{"code":422}')
    answer = tasks.api.post(
        f"{MARKET}/apps/firefox/install", {**INSTALL, "sync": True}, headers=AUTH
    )
    body = tasks.api.data(answer, 500)
    assert answer.json()["message"] == "Installation failed: code 422: missing env DB_PASSWORD"
    assert body["status"] == "failed" and body["backend_response"] == {"code": 422}


def test_given_sync_when_no_answer_comes_in_time_then_it_answers_202_with_the_task_id(
    tasks: Setup,
) -> None:
    tasks.port.answers["firefox"] = AnswerUnknown("timeout")
    tasks.port.list_fails = True
    answer = tasks.api.post(
        f"{MARKET}/apps/firefox/install", {**INSTALL, "sync": True}, headers=AUTH
    )
    assert answer.status_code == 202
    body = answer.json()
    assert body["message"] == "Task is still running, query task status for result"
    assert tasks.task(body["data"]["task_id"]).status == TaskStatus.DISPATCHED


def test_given_keys_in_any_case_and_unknown_keys_then_the_request_is_read(tasks: Setup) -> None:
    body = {"SOURCE": SOURCE, "App_Name": "firefox", "VERSION": "1.0.0", "colour": "blue"}
    body["Envs"] = [{"ENVNAME": "TZ", "Value": "Europe/Berlin"}]  # type: ignore[assignment]
    answer = tasks.api.post(f"{MARKET}/apps/x/install", {**body, "sync": True}, headers=AUTH)
    tasks.api.data(answer)
    assert tasks.port.calls[0].envs == (EnvValue("TZ", "Europe/Berlin"),)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"source": SOURCE, "app_name": "firefox"}, 400, MISSING),
        ({**INSTALL, "version": "9.9.9"}, 404, "App not found"),
        ({**INSTALL, "app_name": "nothing"}, 404, "App not found"),
        ({**INSTALL, "source": "elsewhere"}, 404, "Source data not found"),
        ({**INSTALL, "envs": "TZ"}, 400, "Invalid request format"),
    ],
)  # fmt: skip
def test_given_a_request_the_views_cannot_serve_then_it_is_refused_with_the_market_s_message(
    tasks: Setup, body: dict[str, Any], status: int, message: str
) -> None:
    answer = tasks.api.post(f"{MARKET}/apps/firefox/install", body, headers=AUTH)
    assert answer.status_code == status
    assert answer.json() == {"success": False, "message": message, "data": None}
    assert tasks.port.calls == []


def test_given_a_body_that_is_not_json_then_it_is_an_invalid_request_format(
    tasks: Setup,
) -> None:
    answer = tasks.api.post(f"{MARKET}/apps/firefox/install", content=b"{nope", headers=AUTH)
    assert (answer.status_code, answer.json()["message"]) == (400, "Invalid request format")


def test_given_an_unregistered_user_then_user_data_is_not_found(tasks: Setup) -> None:
    answer = tasks.api.post(
        f"{MARKET}/apps/firefox/install", INSTALL, as_user="carol", headers=AUTH
    )
    assert (answer.status_code, answer.json()["message"]) == (404, "User data not found")


def test_given_no_user_header_then_it_is_401(tasks: Setup) -> None:
    answer = tasks.api.post(f"{MARKET}/apps/firefox/install", INSTALL, as_user=None)
    assert (answer.status_code, answer.json()["message"]) == (
        401,
        "Failed to get user information",
    )


def test_given_an_open_install_when_requested_again_then_the_open_task_is_returned(
    tasks: Setup,
) -> None:
    first = tasks.api.data(tasks.api.post(f"{MARKET}/apps/firefox/install", INSTALL, headers=AUTH))
    again = tasks.api.data(tasks.api.post(f"{MARKET}/apps/firefox/install", INSTALL, headers=AUTH))
    assert again["task_id"] == first["task_id"]


def test_given_no_body_then_cancel_and_uninstall_are_taken(tasks: Setup) -> None:
    cancel = tasks.api.send("DELETE", f"{MARKET}/apps/notes/install", headers=AUTH)
    assert cancel.json()["message"] == "App installation cancellation started successfully"
    uninstall = tasks.api.send("DELETE", f"{MARKET}/apps/notes", headers=AUTH)
    assert uninstall.json()["message"] == "App uninstallation started successfully"
    state = tasks.task(tasks.api.data(uninstall)["task_id"])
    assert (state.kind, state.requested.source, state.requested.version) == (
        "uninstall",
        SOURCE,
        "2.0.0",
    )


def test_given_an_app_not_installed_when_uninstalled_then_it_is_404(tasks: Setup) -> None:
    answer = tasks.api.send("DELETE", f"{MARKET}/apps/firefox", headers=AUTH)
    assert (answer.status_code, answer.json()["message"]) == (404, "App firefox is not installed")


def test_given_a_clone_then_its_name_is_the_original_s_plus_the_request_hash(
    tasks: Setup, clock: FakeClock
) -> None:
    tasks.ledger.handler.handle(
        ObserveInstallationState(
            "alice", "firefox", "running", clock(), source=SOURCE, version="1.0.0"
        )
    )
    tasks.ledger.catch_up()
    body = {"source": SOURCE, "app_name": "firefox", "title": "Fox <work> & co", "sync": True}
    tasks.api.data(tasks.api.post(f"{MARKET}/apps/firefox/clone", body, headers=AUTH))
    digest = clone_request_hash(SOURCE, "firefox", "Fox <work> & co")
    sent = tasks.port.calls[0]
    assert sent.app_name == clone_app_name("firefox", digest) == "firefox" + digest
    assert (sent.raw_app_name, sent.request_hash, sent.version) == ("firefox", digest, "1.0.0")


def clone_version(tasks: Setup) -> str:
    body = {"source": SOURCE, "app_name": "firefox", "title": "Fox", "sync": True}
    tasks.api.data(tasks.api.post(f"{MARKET}/apps/firefox/clone", body, headers=AUTH))
    version: str = tasks.port.calls[-1].version
    return version


def test_given_an_original_seen_without_a_version_then_a_clone_has_its_last_installed_one(
    tasks: Setup, clock: FakeClock
) -> None:
    done = "20261101115900-inst01"
    tasks.ledger.handler.handle(
        RequestTask(done, "install", "alice", "firefox", source=SOURCE, version="0.9.0"),
        DispatchTask(done),
        AcceptTask(done, "op-0"),
        ObserveOutcome(done, "succeeded", "running"),
        ObserveInstallationState("alice", "firefox", "running", clock(), source=SOURCE),
    ).raise_if_rejected()
    tasks.ledger.catch_up()
    assert clone_version(tasks) == "0.9.0"


def test_given_an_original_with_no_known_version_then_a_clone_has_the_catalog_s(
    tasks: Setup, clock: FakeClock
) -> None:
    tasks.ledger.handler.handle(
        ObserveInstallationState("alice", "firefox", "running", clock(), source=SOURCE)
    )
    tasks.ledger.catch_up()
    assert clone_version(tasks) == "1.0.0"


def test_given_a_clone_of_an_app_not_installed_then_it_is_404(tasks: Setup) -> None:
    body = {"source": SOURCE, "app_name": "firefox", "title": "Fox"}
    answer = tasks.api.post(f"{MARKET}/apps/firefox/clone", body, headers=AUTH)
    assert answer.status_code == 404
    assert answer.json()["message"] == f"Original app firefox is not installed in source {SOURCE}"


def test_given_no_app_service_then_the_task_routes_answer_503(ledger: Ledger) -> None:
    ledger.handler.handle(RegisterUser("alice"))
    ledger.catch_up()
    with live_api(ledger) as api:
        answer = api.post(f"{MARKET}/apps/firefox/install", INSTALL, headers=AUTH)
    assert answer.status_code == 503
