"""The task read routes over real HTTP: who reads whose tasks, the shapes, no secret."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from market_ledger.bootstrap import Ledger
from market_ledger.domain import task
from market_ledger.domain.installation import ObserveInstallationState
from market_ledger.domain.user import RegisterUser
from market_ledger.projections import task_reads
from tests.conftest import FakeClock
from tests.support.builders import SOURCE
from tests.support.http_live import LEDGER, MARKET, Api, live_api
from tests.support.tasks import ID, OTHER_ID, SECRET, install, outcome, step, uninstall

BOBS_ID = "20261101120002-bb2222"
TASKS, RUNTIME = f"{LEDGER}/tasks", f"{MARKET}/runtime/state"
#: a token as a client sends it: the routes never see one, and no answer may hold one
TOKEN = "eyJhbGciOiJIUzI1NiJ9.secret-token"


@pytest.fixture
def ledger_with_tasks(ledger: Ledger, clock: FakeClock) -> Ledger:
    """alice: an install that failed, an uninstall queued; bob: an install sent; root: admin."""
    ledger.handler.handle(
        RegisterUser("alice"), RegisterUser("bob"), RegisterUser("root", role="admin")
    )
    step(ledger, clock, install(), *outcome(task.FAILED, "installFailed")(ID))
    step(ledger, clock, uninstall(OTHER_ID))
    step(ledger, clock, install(BOBS_ID, user="bob", app_name="zed"), task.DispatchTask(BOBS_ID))
    ledger.handler.execute(
        ObserveInstallationState("bob", "zed", "downloading", clock(), source=SOURCE)
    )
    ledger.catch_up()
    return ledger


@pytest.fixture
def http(ledger_with_tasks: Ledger) -> Iterator[Api]:
    with live_api(ledger_with_tasks) as api:
        yield api


def ids(tasks: list[dict[str, Any]]) -> list[str]:
    return [t["task_id"] for t in tasks]


def test_given_a_user_when_listing_tasks_then_only_their_own_come_as_the_task_json(
    http: Api, ledger_with_tasks: Ledger
) -> None:
    listed = http.data(http.get(TASKS))
    assert ids(listed) == [OTHER_ID, ID]
    with ledger_with_tasks.read() as conn:
        assert listed == task_reads.list_tasks(conn, ledger_with_tasks.tables, user="alice")
    assert ids(http.data(http.get(TASKS, as_user="bob"))) == [BOBS_ID]
    assert http.data(http.get(TASKS, as_user="carol")) == []


def test_given_another_user_when_listing_their_tasks_then_only_an_admin_may(http: Api) -> None:
    refused = http.get(TASKS, user="bob")
    http.data(refused, 403)
    assert "admin" in refused.json()["message"]
    assert ids(http.data(http.get(TASKS, as_user="root", user="bob"))) == [BOBS_ID]


def test_given_a_task_id_then_its_owner_and_an_admin_read_it_and_others_find_nothing(
    http: Api,
) -> None:
    mine = http.data(http.get(f"{TASKS}/{ID}"))
    assert (mine["task_id"], mine["status"], mine["error"]) == (
        ID,
        "failed",
        "app-service reported installFailed",
    )
    assert http.data(http.get(f"{TASKS}/{ID}", as_user="root")) == mine
    for path in (f"{TASKS}/{BOBS_ID}", f"{TASKS}/20261101129999-nope00", f"{TASKS}/not-an-id"):
        missing = http.get(path)
        http.data(missing, 404)
        assert missing.json()["message"] == "Task not found"


def test_given_no_user_header_then_every_task_route_is_refused(http: Api) -> None:
    for path in (TASKS, f"{TASKS}/{ID}", RUNTIME):
        http.data(http.get(path, as_user=None), 401)


def test_given_a_user_when_reading_the_runtime_state_then_only_their_tasks_and_apps_are_there(
    http: Api,
) -> None:
    state = http.data(http.get(RUNTIME))
    assert list(state["tasks"]) == [OTHER_ID, ID]
    assert state["app_states"] == {}
    assert state["summary"]["total_tasks"] == 2 and state["summary"]["failed_tasks"] == 1
    assert set(state["tasks"][ID]) == {
        "task_id",
        "type",
        "status",
        "app_name",
        "user_id",
        "op_id",
        "created_at",
        "started_at",
        "completed_at",
        "error_msg",
        "metadata",
    }
    http.data(http.get(RUNTIME, user_id="bob"), 403)
    assert list(http.data(http.get(RUNTIME, user_id="alice"))["tasks"]) == [OTHER_ID, ID]


def test_given_an_admin_when_reading_the_runtime_state_then_everyones_is_there_unless_one_is_named(
    http: Api,
) -> None:
    everyone = http.data(http.get(RUNTIME, as_user="root"))
    assert list(everyone["tasks"]) == [BOBS_ID, OTHER_ID, ID]
    assert everyone["app_states"] == {
        "bob/zed": {"state": "downloading", "op_type": "", "version": "", "source": SOURCE}
    }
    bobs = http.data(http.get(RUNTIME, as_user="root", user_id="bob"))
    assert list(bobs["tasks"]) == [BOBS_ID] and bobs["tasks"][BOBS_ID]["status"] == "running"
    filtered = http.data(
        http.get(RUNTIME, as_user="root", task_type="install", task_status="failed")
    )
    assert list(filtered["tasks"]) == [ID]
    assert list(http.data(http.get(RUNTIME, as_user="root", app_name="zed"))["tasks"]) == [BOBS_ID]


@pytest.mark.parametrize("query", [{"task_status": "done"}, {"task_type": "reinstall"}])
def test_given_an_unknown_status_or_kind_then_the_runtime_state_is_a_bad_request(
    http: Api, query: dict[str, str]
) -> None:
    refused = http.get(RUNTIME, **query)
    http.data(refused, 400)
    assert next(iter(query)) in refused.json()["message"]


def test_given_a_request_with_an_env_value_and_a_token_then_no_answer_holds_either(
    http: Api,
) -> None:
    headers = {"X-Authorization": TOKEN, "Cookie": f"auth_token={TOKEN}"}
    answers = [
        http.get(path, as_user=user, headers=headers, **query).text
        for user in ("alice", "root")
        for path, query in (
            (TASKS, {"user": "alice"}),
            (f"{TASKS}/{ID}", {}),
            (RUNTIME, {}),
            (RUNTIME, {"user_id": "alice"}),
        )
    ]
    assert all(ID in answer for answer in answers)
    assert not any(SECRET in answer or TOKEN in answer for answer in answers)
