"""The task views on a real store: each step's row, the last installed version, the history."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from market_ledger.bootstrap import Ledger
from market_ledger.domain import task
from market_ledger.domain.decider import Command
from market_ledger.domain.redaction import REDACTED
from market_ledger.projections import queries
from market_ledger.projections.rebuild import rebuild
from market_ledger.projections.rows import loads
from tests.conftest import FakeClock, StoreFactory
from tests.support.builders import SOURCE
from tests.support.tasks import (
    ID,
    OTHER_ID,
    SECRET,
    Steps,
    accepted,
    install,
    outcome,
    step,
    uninstall,
)


def task_row(ledger: Ledger, task_id: str = ID) -> dict[str, Any]:
    ledger.catch_up()
    tasks = ledger.tables.tasks
    with ledger.read() as conn:
        row = conn.execute(sa.select(tasks).where(tasks.c.task_id == task_id)).mappings().one()
    return dict(row)


def last_installed(ledger: Ledger, app: str = "firefox") -> dict[str, Any] | None:
    ledger.catch_up()
    table = ledger.tables.last_installed
    with ledger.read() as conn:
        query = sa.select(table).where(table.c.user_name == "alice", table.c.app_name == app)
        row = conn.execute(query).mappings().first()
    return None if row is None else dict(row)


#: (steps after the request, state, wire status, outcome, error)
MAPPINGS: list[tuple[str, Steps, str, str, str | None, str | None]] = [
    ("requested", lambda t: [], "requested", "pending", None, None),
    ("dispatched", lambda t: [task.DispatchTask(t)], "dispatched", "running", None, None),
    ("accepted", accepted, "accepted", "completed", None, None),
    (
        "reconciled",
        lambda t: [task.DispatchTask(t), task.ReconcileTask(t, found="running")],
        "accepted",
        "completed",
        None,
        None,
    ),
    (
        "rejected",
        lambda t: [task.DispatchTask(t), task.RejectTask(t, "app-service said 422", "{}")],
        "rejected",
        "failed",
        "failed",
        "app-service said 422",
    ),
    (
        "dequeued",
        lambda t: [task.DequeueTask(t, canceled_by=OTHER_ID)],
        "dequeued",
        "canceled",
        "canceled",
        None,
    ),
    ("succeeded", outcome(task.SUCCEEDED, "running"), "succeeded", "completed", "succeeded", None),
    (
        "failed",
        outcome(task.FAILED, "installFailed"),
        "failed",
        "failed",
        "failed",
        "app-service reported installFailed",
    ),
    (
        "canceled",
        outcome(task.CANCELED, "installingCanceled"),
        "canceled",
        "canceled",
        "canceled",
        "app-service reported installingCanceled",
    ),
    (
        "timed_out",
        lambda t: [*accepted(t), task.TimeOutTask(t, deadline=timedelta(0))],
        "timed_out",
        "failed",
        "timed_out",
        "no outcome within 0 s of acceptance",
    ),
    (
        "interrupted",
        lambda t: [task.DispatchTask(t), task.InterruptTask(t, "restarted mid-call")],
        "interrupted",
        "failed",
        "interrupted",
        "restarted mid-call",
    ),
]


@pytest.mark.parametrize(
    ("steps", "state", "status", "result", "error"),
    [pytest.param(*case[1:], id=case[0]) for case in MAPPINGS],
)
def test_given_an_install_taken_to_a_step_then_its_row_has_that_state_status_and_outcome(
    ledger: Ledger,
    clock: FakeClock,
    steps: Steps,
    state: str,
    status: str,
    result: str | None,
    error: str | None,
) -> None:
    # given an install request, then each further step in a transaction of its own
    step(ledger, clock, install())
    for command in steps(ID):
        step(ledger, clock, command)
    # when the views catch up
    row = task_row(ledger)
    # then the row shows the domain's state, the wire status, the outcome and the error
    assert (row["state"], row["status"], row["outcome"], row["error"]) == (
        state,
        status,
        result,
        error,
    )
    terminal = status in ("completed", "failed", "canceled")
    assert (row["completed_at"] is not None) is terminal


def test_given_a_cancel_that_settles_in_the_queue_then_it_is_completed_and_succeeded(
    ledger: Ledger, clock: FakeClock
) -> None:
    # given an install still queued, and a cancel that took it off the queue
    cancel = task.RequestTask(OTHER_ID, task.CANCEL, "alice", "firefox")
    step(ledger, clock, install(), cancel)
    step(
        ledger,
        clock,
        task.DequeueTask(ID, canceled_by=OTHER_ID),
        task.SettleCancelInQueue(OTHER_ID, removed_task=ID),
    )
    # when the views catch up, then the install is canceled and the cancel succeeded
    settled, removed = task_row(ledger, OTHER_ID), task_row(ledger, ID)
    assert (settled["state"], settled["status"], settled["outcome"]) == (
        "settled_in_queue",
        "completed",
        "succeeded",
    )
    assert (removed["status"], removed["outcome"]) == ("canceled", "canceled")
    assert settled["completed_at"] == removed["completed_at"] is not None


def test_given_a_task_through_its_life_then_each_step_keeps_its_own_time(
    ledger: Ledger, clock: FakeClock
) -> None:
    # given an install requested, dispatched, accepted, then observed running
    step(ledger, clock, install())
    created = task_row(ledger)
    step(ledger, clock, task.DispatchTask(ID))
    started = task_row(ledger)
    step(ledger, clock, task.AcceptTask(ID, "op-7"))
    on_acceptance = task_row(ledger)
    step(ledger, clock, task.ObserveOutcome(ID, task.SUCCEEDED, "running"))
    # when the row is read at the end
    row = task_row(ledger)
    # then creation, dispatch and acceptance keep their times; completion is the outcome's
    assert row["created_at"] == created["created_at"] < row["started_at"]
    assert row["started_at"] == started["started_at"] < row["accepted_at"]
    assert on_acceptance["completed_at"] == row["accepted_at"] < row["completed_at"]
    assert (row["op_id"], row["position"]) == ("op-7", ledger.projector.head())


def test_given_a_request_with_envs_then_the_row_keeps_names_and_never_a_value(
    ledger: Ledger, clock: FakeClock
) -> None:
    # given a clone request with envs, a title and entrances
    clone = install(
        kind=task.CLONE,
        app_name="firefoxabc123",
        raw_app_name="firefox",
        request_hash="abc123",
        title="Work",
        entrances=(("web", "Firefox Web"),),
    )
    step(ledger, clock, clone)
    # when the views catch up
    row = task_row(ledger)
    # then the request column has the market's names, with the env value redacted
    assert loads(row["request"]) == {
        "envs": [{"envName": "API_KEY", "value": REDACTED}, {"envName": "EMPTY", "value": ""}],
        "all": False,
        "deleteData": False,
        "rawAppName": "firefox",
        "requestHash": "abc123",
        "title": "Work",
        "entrances": [{"name": "web", "title": "Firefox Web"}],
        "instance": "",
    }
    assert (row["kind"], row["app_name"], row["version"], row["source"]) == (
        "clone",
        "firefoxabc123",
        "1.0.2",
        SOURCE,
    )
    assert SECRET not in repr(row)


def test_given_an_accepted_install_then_nothing_is_last_installed_until_it_succeeds(
    ledger: Ledger, clock: FakeClock
) -> None:
    # given an install accepted by app-service
    step(ledger, clock, install(), *accepted(ID))
    # then acceptance alone installs nothing
    assert last_installed(ledger) is None
    # when its success is observed
    step(ledger, clock, task.ObserveOutcome(ID, task.SUCCEEDED, "running"))
    # then its version and source are the last installed ones
    found = last_installed(ledger)
    assert found is not None
    assert (found["kind"], found["version"], found["source"], found["task_id"]) == (
        "install",
        "1.0.2",
        SOURCE,
        ID,
    )
    assert found["at"] == task_row(ledger)["completed_at"]


def a_failed_upgrade() -> list[Command]:
    return [install(OTHER_ID, task.UPGRADE, version="2.0.0"), *outcome("failed", "x")(OTHER_ID)]


def an_accepted_upgrade() -> list[Command]:
    return [install(OTHER_ID, task.UPGRADE, version="2.0.0"), *accepted(OTHER_ID)]


def a_succeeded_uninstall() -> list[Command]:
    return [uninstall(OTHER_ID), *outcome("succeeded", "uninstalled")(OTHER_ID)]


@pytest.mark.parametrize("later", [a_failed_upgrade, an_accepted_upgrade, a_succeeded_uninstall])
def test_given_an_installed_app_when_a_later_task_does_not_succeed_at_installing_then_it_stays(
    ledger: Ledger, clock: FakeClock, later: Callable[[], list[Command]]
) -> None:
    # given version 1.0.2 observed installed
    step(ledger, clock, install(), *outcome(task.SUCCEEDED, "running")(ID))
    before = last_installed(ledger)
    # when a later task fails, is only accepted, or uninstalls the app
    for command in later():
        step(ledger, clock, command)
    # then the last installed version is still 1.0.2
    assert last_installed(ledger) == before is not None


def test_given_a_succeeded_upgrade_then_its_version_is_the_last_installed(
    ledger: Ledger, clock: FakeClock
) -> None:
    # given version 1.0.2 installed, then an upgrade to 2.0.0
    step(ledger, clock, install(), *outcome(task.SUCCEEDED, "running")(ID))
    upgrade = install(OTHER_ID, task.UPGRADE, version="2.0.0", source="upload")
    # when the upgrade is observed to succeed
    step(ledger, clock, upgrade, *outcome(task.SUCCEEDED, "running")(OTHER_ID))
    # then the upgrade's version and source are the last installed
    found = last_installed(ledger)
    assert found is not None
    assert (found["kind"], found["version"], found["source"], found["task_id"]) == (
        "upgrade",
        "2.0.0",
        "upload",
        OTHER_ID,
    )


def test_given_task_events_then_they_are_in_the_apps_history_without_env_values(
    ledger: Ledger, clock: FakeClock
) -> None:
    # given an install through to its outcome, and another user's task on the same app
    step(ledger, clock, install(), *outcome(task.FAILED, "downloadFailed")(ID))
    step(ledger, clock, install(OTHER_ID, user="bob"))
    ledger.catch_up()
    # when alice's history of the app is read
    with ledger.read() as conn:
        history = queries.history(conn, ledger.tables, "alice", "firefox")
    # then every step of her task is there, in order, with its own fields
    assert [entry["event"] for entry in history] == [
        "task_requested",
        "task_dispatched",
        "task_accepted",
        "task_outcome_observed",
    ]
    requested, _, acceptance, observed = history
    assert {e["task_id"] for e in history} == {ID} and {e["kind"] for e in history} == {"install"}
    assert requested["source"] == SOURCE and requested["version"] == "1.0.2"
    assert requested["envs"] == [
        {"envName": "API_KEY", "value": REDACTED},
        {"envName": "EMPTY", "value": ""},
    ]
    assert acceptance["op_id"] == "op-1"
    assert (observed["outcome"], observed["app_state"]) == ("failed", "downloadFailed")
    assert SECRET not in repr(history)
    with ledger.read() as conn:
        kinds = conn.execute(sa.select(ledger.tables.history.c.kind).distinct()).scalars().all()
    assert kinds == ["task"]


def every_step(ledger: Ledger, clock: FakeClock) -> None:
    """Tasks of every kind through every step, some in one transaction, some apart."""
    ids = [f"20261101120{n:03d}-abc{n:03d}" for n in range(10)]
    step(ledger, clock, install(ids[0]), *outcome(task.SUCCEEDED, "running")(ids[0]))
    step(ledger, clock, install(ids[1], task.UPGRADE, version="2"), *accepted(ids[1]))
    step(ledger, clock, task.ObserveOutcome(ids[1], task.FAILED, "upgradeFailed"))
    step(ledger, clock, uninstall(ids[2]), task.DispatchTask(ids[2]))
    step(ledger, clock, task.RejectTask(ids[2], "no", "{}"))
    step(ledger, clock, install(ids[3], app_name="zed"), task.DispatchTask(ids[3]))
    step(ledger, clock, task.ReconcileTask(ids[3], "running"))
    step(ledger, clock, task.ObserveOutcome(ids[3], task.SUCCEEDED, "running"))
    cancel = task.RequestTask(ids[5], task.CANCEL, "alice", "zed")
    step(ledger, clock, install(ids[4], app_name="zed"), cancel)
    step(ledger, clock, task.DequeueTask(ids[4], canceled_by=ids[5]))
    step(ledger, clock, task.SettleCancelInQueue(ids[5], removed_task=ids[4]))
    step(ledger, clock, install(ids[6], user="bob"), *accepted(ids[6]))
    step(ledger, clock, task.TimeOutTask(ids[6], deadline=timedelta(0)))
    step(ledger, clock, install(ids[7], user="bob"), task.DispatchTask(ids[7]))
    step(ledger, clock, task.InterruptTask(ids[7], "restarted"))
    step(ledger, clock, install(ids[8], app_name="zed"))


def test_given_tasks_through_every_step_then_the_views_equal_a_rebuild(
    ledger: Ledger, clock: FakeClock, store: StoreFactory
) -> None:
    # given tasks through every step, projected batch by batch as they came
    every_step(ledger, clock)
    ledger.catch_up()
    with ledger.read() as conn:
        tasks = conn.execute(sa.select(sa.func.count()).select_from(ledger.tables.tasks))
        assert tasks.scalar_one() == 9
    # when the views are rebuilt from position 0 and compared, also with the history filled
    # by a second process
    report = ledger.rebuild(verify=True)
    url = ledger.writer.url.render_as_string(hide_password=False)
    apart = rebuild(
        ledger.application, ledger.writer, ledger.tables, verify=True, parallel=(url, store.schema)
    )
    # then they are identical, tasks, last installed and history included
    assert report.differences == () and apart.differences == ()
    assert report.compared_rows > 9
    with ledger.read() as conn:
        installed = conn.execute(sa.select(ledger.tables.last_installed)).mappings().all()
    assert sorted((r["app_name"], r["version"]) for r in installed) == [
        ("firefox", "1.0.2"),
        ("zed", "1.0.2"),
    ]
