"""The task reads on a real store: the task JSON, the lists, the open tasks, /runtime/state."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

import pytest

from market_ledger.bootstrap import Ledger
from market_ledger.domain import task
from market_ledger.domain.canonical import format_instant
from market_ledger.domain.installation import ObserveInstallationState
from market_ledger.projections import task_reads
from market_ledger.projections.schema import ViewTables
from tests.conftest import FakeClock
from tests.support.builders import SOURCE
from tests.support.tasks import ID, OTHER_ID, SECRET, accepted, install, outcome, step, uninstall

T = TypeVar("T")
THIRD_ID = "20261101120002-cc3333"
TASK_KEYS = {
    "task_id",
    "kind",
    "user",
    "app_name",
    "source",
    "version",
    "status",
    "outcome",
    "op_id",
    "created_at",
    "started_at",
    "completed_at",
    "error",
}


def read(ledger: Ledger, query: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    ledger.catch_up()
    with ledger.read() as conn:
        return query(conn, ledger.tables, *args, **kwargs)


def runtime(ledger: Ledger, clock: FakeClock, **filters: Any) -> dict[str, Any]:
    def query(conn: Any, tables: ViewTables) -> dict[str, Any]:
        values = {"user": None, **filters}
        return task_reads.runtime_state(conn, tables, now=clock(), **values)

    return read(ledger, query)


@pytest.fixture
def three_tasks(ledger: Ledger, clock: FakeClock) -> Ledger:
    """alice's install (succeeded), then her uninstall (queued), then bob's install (sent)."""
    step(ledger, clock, install(), *outcome(task.SUCCEEDED, "running")(ID))
    step(ledger, clock, uninstall(OTHER_ID))
    step(ledger, clock, install(THIRD_ID, user="bob"), task.DispatchTask(THIRD_ID))
    return ledger


def test_given_a_task_then_its_json_has_exactly_the_public_keys(
    ledger: Ledger, clock: FakeClock
) -> None:
    # given an install accepted by app-service
    step(ledger, clock, install(), *accepted(ID, "op-9"))
    # when it is read
    shown = read(ledger, task_reads.get_task, ID)
    # then it has the public keys, its wire status and its times
    assert shown is not None and set(shown) == TASK_KEYS
    assert {k: shown[k] for k in ("kind", "user", "app_name", "source", "version")} == {
        "kind": "install",
        "user": "alice",
        "app_name": "firefox",
        "source": SOURCE,
        "version": "1.0.2",
    }
    assert (shown["status"], shown["outcome"], shown["op_id"], shown["error"]) == (
        "completed",
        None,
        "op-9",
        None,
    )
    assert shown["created_at"] == format_instant(clock()) == shown["completed_at"]
    assert SECRET not in repr(shown)


def test_given_an_unknown_id_then_there_is_no_task(ledger: Ledger) -> None:
    assert read(ledger, task_reads.get_task, ID) is None


def test_given_tasks_of_two_users_then_the_list_is_newest_first_per_user_and_limited(
    three_tasks: Ledger,
) -> None:
    everyone = read(three_tasks, task_reads.list_tasks)
    assert [t["task_id"] for t in everyone] == [THIRD_ID, OTHER_ID, ID]
    alices = read(three_tasks, task_reads.list_tasks, user="alice")
    assert [t["task_id"] for t in alices] == [OTHER_ID, ID]
    assert [t["task_id"] for t in read(three_tasks, task_reads.list_tasks, limit=1)] == [THIRD_ID]
    assert read(three_tasks, task_reads.list_tasks, user="carol") == []


def test_given_open_and_closed_tasks_then_the_open_ones_are_listed_oldest_first(
    three_tasks: Ledger, clock: FakeClock
) -> None:
    # given a fourth task accepted and waiting for its outcome
    fourth = "20261101120003-dd4444"
    step(three_tasks, clock, install(fourth, app_name="zed"), *accepted(fourth, "op-4"))
    # when the open tasks are read, then the succeeded one is not among them
    opened = read(three_tasks, task_reads.open_tasks)
    assert [(r["task_id"], r["state"]) for r in opened] == [
        (OTHER_ID, "requested"),
        (THIRD_ID, "dispatched"),
        (fourth, "accepted"),
    ]
    # and the open task of a kind for a user's app is found by its key, or by its operation
    assert read(three_tasks, task_reads.open_task_for, "alice", "firefox", "uninstall") == OTHER_ID
    assert read(three_tasks, task_reads.open_task_for, "alice", "firefox", "install") is None
    assert read(three_tasks, task_reads.open_task_for, "alice", "firefox", "upgrade") is None
    found = read(three_tasks, task_reads.accepted_task_by_op_id, "op-4")
    assert found is not None and found["task_id"] == fourth
    assert read(three_tasks, task_reads.accepted_task_by_op_id, "op-1") is None  # closed
    assert read(three_tasks, task_reads.accepted_task_by_op_id, "") is None


def test_given_a_succeeded_install_then_it_is_the_last_installed(three_tasks: Ledger) -> None:
    found = read(three_tasks, task_reads.last_installed, "alice", "firefox")
    assert found is not None and (found["version"], found["task_id"]) == ("1.0.2", ID)
    assert read(three_tasks, task_reads.last_installed, "bob", "firefox") is None


def test_given_tasks_then_runtime_state_keys_them_by_id_with_only_the_keys_they_have(
    three_tasks: Ledger, clock: FakeClock
) -> None:
    # given bob's install sent 30 s ago, alice's queued, her other one completed
    clock.advance(30)
    # when the runtime state is read for everyone
    state = runtime(three_tasks, clock)
    # then every task is there, keyed by id, its empty optional keys left out
    assert set(state) == {"timestamp", "app_states", "tasks", "components", "summary"}
    assert state["timestamp"] == format_instant(clock()) and state["components"] == {}
    tasks = state["tasks"]
    assert list(tasks) == [THIRD_ID, OTHER_ID, ID]
    assert tasks[OTHER_ID] == {
        "task_id": OTHER_ID,
        "type": "uninstall",
        "status": "pending",
        "app_name": "firefox",
        "user_id": "alice",
        "created_at": tasks[OTHER_ID]["created_at"],
        "metadata": {"source": "", "version": "", "envs": []},
    }
    done = tasks[ID]
    assert (done["status"], done["progress"], done["op_id"]) == ("completed", 100, "op-1")
    assert {"started_at", "completed_at"} <= set(done) and "error_msg" not in done
    assert done["metadata"] == {
        "source": SOURCE,
        "version": "1.0.2",
        "envs": [{"envName": "API_KEY", "value": "***"}, {"envName": "EMPTY", "value": ""}],
    }
    assert tasks[THIRD_ID]["progress"] == 10  # 30 s of the guessed 5 minutes
    assert state["summary"] == {
        "total_tasks": 3,
        "pending_tasks": 1,
        "running_tasks": 1,
        "completed_tasks": 1,
        "failed_tasks": 0,
        "canceled_tasks": 0,
    }
    assert SECRET not in repr(state)


def test_given_a_task_running_long_then_its_progress_stops_at_90(
    ledger: Ledger, clock: FakeClock
) -> None:
    step(ledger, clock, install(), task.DispatchTask(ID))
    clock.advance(timedelta(hours=1).total_seconds())
    assert runtime(ledger, clock)["tasks"][ID]["progress"] == 90


def test_given_a_failed_task_then_runtime_state_has_its_error_and_no_progress(
    ledger: Ledger, clock: FakeClock
) -> None:
    step(ledger, clock, install(), *outcome(task.FAILED, "installFailed")(ID))
    shown = runtime(ledger, clock)["tasks"][ID]
    assert shown["error_msg"] == "app-service reported installFailed"
    assert shown["status"] == "failed" and "progress" not in shown


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"user": "alice"}, [OTHER_ID, ID]),
        ({"app_name": "zed"}, []),
        ({"source": SOURCE}, [THIRD_ID, ID]),
        ({"task_status": "pending"}, [OTHER_ID]),
        ({"task_type": "install"}, [THIRD_ID, ID]),
        ({"user": "bob", "task_type": "uninstall"}, []),
    ],
)
def test_given_filters_then_runtime_state_lists_and_counts_only_the_tasks_they_select(
    three_tasks: Ledger, clock: FakeClock, filters: dict[str, str], expected: list[str]
) -> None:
    state = runtime(three_tasks, clock, **filters)
    assert list(state["tasks"]) == expected
    assert state["summary"]["total_tasks"] == len(expected)


def test_given_installed_apps_then_runtime_state_has_their_states_per_user(
    ledger: Ledger, clock: FakeClock
) -> None:
    # given alice's firefox running and bob's zed being installed
    for user, app, state in (("alice", "firefox", "running"), ("bob", "zed", "installing")):
        ledger.handler.execute(
            ObserveInstallationState(
                user, app, state, clock(), source=SOURCE, op_type="install", version="1.0.2"
            )
        )
    # when the runtime state is read for everyone, and for alice
    everyone = runtime(ledger, clock)["app_states"]
    alices = runtime(ledger, clock, user="alice")["app_states"]
    # then each installation is keyed by user and app
    assert everyone == {
        "alice/firefox": {
            "state": "running",
            "op_type": "install",
            "version": "1.0.2",
            "source": SOURCE,
        },
        "bob/zed": {
            "state": "installing",
            "op_type": "install",
            "version": "1.0.2",
            "source": SOURCE,
        },
    }
    assert list(alices) == ["alice/firefox"]
    assert runtime(ledger, clock, source="elsewhere")["app_states"] == {}
