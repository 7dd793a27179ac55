"""The fake app-service's answers to operation calls, over real HTTP: acceptances, refusals,
faults, and a hanging call that blocks no other."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.support.app_service_calls import TOKEN, call, op_id_of, operation_path
from tests.support.fakes import FakeAppService
from tests.support.fakes.app_state_messages import Instants, create_time
from tests.support.nats_server import eventually

T0 = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)


class Caller(threading.Thread):
    """One operation call on a thread of its own, for a call that hangs."""

    def __init__(self, fake: FakeAppService, app: str, timeout: float = 10.0) -> None:
        super().__init__(daemon=True)
        self.fake, self.app, self.timeout = fake, app, timeout
        self.answer: httpx.Response | None = None
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            self.answer = call(self.fake.url, "install", self.app, timeout=self.timeout)
        except Exception as error:
            self.error = error


def all_apps(fake: FakeAppService) -> list[dict[str, Any]]:
    apps: list[dict[str, Any]] = httpx.get(f"{fake.url}/app-service/v1/all/apps", timeout=10).json()
    return apps


def test_given_calls_for_every_action_then_each_is_accepted_with_its_own_op_id_and_recorded() -> (
    None
):
    with FakeAppService(step_delay=0) as fake:
        fake.install("alice", "immich")
        answers = {a: call(fake.url, a, "immich") for a in ("install", "upgrade", "uninstall")}
        answers["cancel"] = call(fake.url, "cancel", "immich")
        fake.settle()
    assert {a: (r.status_code, r.json()["code"]) for a, r in answers.items()} == {
        a: (200, 200) for a in answers
    }
    assert all(r.json()["message"] == "success" for r in answers.values())
    assert [(o.kind, o.user, o.app) for o in fake.operations] == [
        (action, "alice", "immich") for action in ("install", "upgrade", "uninstall", "cancel")
    ]
    assert [o.op_id for o in fake.operations] == [op_id_of(r) for r in answers.values()]
    assert len(set(fake.op_ids())) == 4
    assert fake.operations[0].headers["x-bfl-user"] == "alice"
    assert fake.operations[0].headers["x-authorization"] == TOKEN
    assert fake.operations[0].body == {"source": "market", "repoUrl": "http://chart-repo.test/"}
    assert fake.operations[3].body is None
    assert fake.count("cancel") == 1


def test_given_a_call_without_a_token_then_it_is_refused_with_401_and_nothing_is_accepted() -> None:
    with FakeAppService() as fake:
        answer = call(fake.url, "install", "immich", token=None)
    assert answer.status_code == 401
    assert answer.json()["code"] == 401
    assert fake.operations == [] and fake.published == []
    assert fake.count("install") == 1


def test_given_a_cancel_without_type_operate_then_it_is_refused() -> None:
    with FakeAppService() as fake:
        answer = httpx.post(
            f"{fake.url}/app-service/v1/apps/immich/cancel",
            headers={"X-Authorization": TOKEN, "X-Bfl-User": "alice"},
        )
    assert answer.status_code == 400
    assert fake.operations == []


def test_given_missing_env_values_then_the_install_is_refused_with_422_naming_them() -> None:
    with FakeAppService() as fake:
        fake.missing_env(["ADMIN_PASSWORD", "TZ"], app="immich")
        answer = call(fake.url, "install", "immich")
    assert answer.status_code == 422
    body = answer.json()
    assert body["code"] == 422 and body["message"]
    assert body["data"]["type"] == "appenv"
    assert [v["envName"] for v in body["data"]["Data"]["missingValues"]] == ["ADMIN_PASSWORD", "TZ"]
    assert fake.operations == []


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [("error_500", 500, 500), ("garbage", 502, None), ("business_error", 200, 400)],
)
def test_given_a_faulty_answer_set_for_every_app_then_each_call_gets_it_and_nothing_is_accepted(
    fault: str, status: int, code: int | None
) -> None:
    with FakeAppService() as fake:
        getattr(fake, fault)()
        answers = [call(fake.url, "install", app) for app in ("immich", "jellyfin")]
        answers.append(call(fake.url, "uninstall", "immich"))
    assert [a.status_code for a in answers] == [status] * 3
    for answer in answers:
        if code is None:
            with pytest.raises(json.JSONDecodeError):
                answer.json()
        else:
            assert answer.json()["code"] == code and answer.json()["message"]
    assert fake.operations == []


def test_given_a_fault_for_one_app_and_action_once_then_only_that_call_gets_it() -> None:
    with FakeAppService(step_delay=0) as fake:
        fake.error_500(app="immich", action="install", times=1)
        answers = [
            call(fake.url, "install", "immich"),
            call(fake.url, "install", "jellyfin"),
            call(fake.url, "uninstall", "immich"),
            call(fake.url, "install", "immich"),
        ]
        fake.settle()
    assert [a.status_code for a in answers] == [500, 200, 200, 200]
    assert [(o.kind, o.app) for o in fake.operations] == [
        ("install", "jellyfin"),
        ("uninstall", "immich"),
        ("install", "immich"),
    ]


def test_given_a_hanging_call_then_another_apps_call_is_answered_meanwhile() -> None:
    with FakeAppService(step_delay=0) as fake:
        fake.hang(app="slow")
        hanging = Caller(fake, "slow")
        hanging.start()
        fake.hangs.wait_for_waiting(1)
        other = call(fake.url, "install", "fast")
        still_hanging = hanging.is_alive() and hanging.answer is None
        fake.release()
        hanging.join(timeout=10)
        fake.settle()
    assert other.status_code == 200
    assert still_hanging
    assert hanging.answer is not None and hanging.answer.status_code == 200
    assert [o.app for o in fake.operations] == ["fast", "slow"]


def test_given_a_call_hanging_after_its_client_gave_up_when_released_then_it_is_taken() -> None:
    with FakeAppService(step_delay=0) as fake:
        fake.hang()
        gave_up = Caller(fake, "slow", timeout=0.2)
        gave_up.start()
        gave_up.join(timeout=10)
        taken_before = list(fake.operations)
        fake.release()
        asyncio.run(eventually(lambda: len(fake.operations) == 1, what="the released call"))
        later = call(fake.url, "install", "later")
        fake.settle()
        apps = {
            (a["spec"]["owner"], a["spec"]["name"]): a["status"]["state"] for a in all_apps(fake)
        }
    assert isinstance(gave_up.error, httpx.TimeoutException)
    assert taken_before == []
    assert [o.app for o in fake.operations] == ["slow", "later"]
    assert later.status_code == 200
    assert apps == {("alice", "slow"): "running", ("alice", "later"): "running"}


def test_given_a_fake_stopping_then_a_hanging_call_ends() -> None:
    fake = FakeAppService().start()
    fake.hang()
    hanging = Caller(fake, "slow")
    hanging.start()
    fake.hangs.wait_for_waiting(1)
    fake.stop()
    hanging.join(timeout=10)
    assert not hanging.is_alive()
    assert fake.operations == []


def test_given_the_app_service_times_then_create_time_trims_trailing_zeros_as_go_writes_it() -> (
    None
):
    assert create_time(T0) == "2026-11-01T10:00:00Z"
    assert create_time(T0.replace(microsecond=120000)) == "2026-11-01T10:00:00.12Z"
    assert create_time(T0.replace(microsecond=5)) == "2026-11-01T10:00:00.000005Z"


def test_given_a_clock_that_does_not_move_then_each_apps_message_times_still_increase_by_a_ms() -> (
    None
):
    instants = Instants(lambda: T0)
    times = [instants.next("alice", "immich") for _ in range(3)]
    assert [(t - T0) // timedelta(milliseconds=1) for t in times] == [0, 1, 2]
    assert instants.next("alice", "jellyfin") == T0
    assert instants.stale("alice", "immich") < T0


def test_given_the_operation_paths_then_each_is_counted_under_its_action() -> None:
    with FakeAppService() as fake:
        assert {
            fake.endpoint_of(operation_path(a, "immich").split("?")[0])
            for a in ("install", "upgrade", "uninstall", "cancel")
        } == {"install", "upgrade", "uninstall", "cancel"}
        assert fake.endpoint_of("/app-service/v1/all/apps") == "all-apps"
