"""Given the tasks a previous run left open, what the next run's recovery and sweeps make of
them: nothing is sent again, app-service's list of apps decides the unanswered ones."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import attrs
import pytest

from market_ledger.bootstrap import Ledger
from market_ledger.domain import task
from market_ledger.domain.task_events import TaskStatus
from market_ledger.service.remote_values import InstalledApps
from market_ledger.service.task_dispatcher import Dispatcher, TaskSettings
from market_ledger.service.task_watch import (
    RESTARTED_IN_FLIGHT,
    RESTARTED_QUEUED,
    TaskWatch,
)
from tests.conftest import FakeClock, StoreFactory
from tests.support.builders import USER
from tests.support.fake_operations import ScriptedOperations
from tests.support.tasks import ID, OTHER_ID, accepted, install, step

APP = "firefox"


@attrs.define
class ListedOperations(ScriptedOperations):
    """Scripted operations whose list of apps gives status times, in whole seconds as
    app-service writes them; and a list that breaks in a way the port does not expect."""

    status_times: dict[tuple[str, str], datetime] = attrs.field(factory=dict)
    list_breaks: bool = False

    async def all_apps(self) -> InstalledApps:
        if self.list_breaks:
            raise RuntimeError("a bug in the list")
        listed = await super().all_apps()
        return InstalledApps(
            tuple(
                attrs.evolve(app, status_time=self.status_times.get((app.owner, app.name)))
                for app in listed.apps
            )
        )


class Restart:
    """The next run on the store the previous one wrote: its open tasks read from the views."""

    def __init__(self, store: StoreFactory, clock: FakeClock, **settings: Any) -> None:
        self.ledger: Ledger = store.open(clock)
        self.port = ListedOperations()
        self.dispatcher = Dispatcher(self.ledger, self.port, TaskSettings(**settings), clock)
        self.watch = TaskWatch(self.dispatcher)

    def start(self) -> None:
        self.ledger.catch_up()
        asyncio.run(self.watch.recover())

    def sweep(self) -> None:
        asyncio.run(self.watch.sweep())

    def status(self, task_id: str = ID) -> str:
        state = self.ledger.handler.state_of(task.DispatchTask(task_id))
        return str(state.status)

    def reason(self, task_id: str = ID) -> str:
        return str(self.ledger.handler.state_of(task.DispatchTask(task_id)).reason)


def whole_second(at: datetime) -> datetime:
    return at.replace(microsecond=0)


def test_given_a_task_queued_by_the_previous_run_when_it_recovers_then_it_is_interrupted_unsent(
    ledger: Ledger, store: StoreFactory, clock: FakeClock
) -> None:
    step(ledger, clock, install(ID))
    ledger.catch_up()
    after = Restart(store, clock)
    after.start()
    after.sweep()
    assert after.status() == TaskStatus.INTERRUPTED
    assert after.reason() == RESTARTED_QUEUED
    assert after.port.calls == []
    assert after.ledger.open_tasks.get(ID) is None


@pytest.mark.parametrize(
    ("listed", "expected"),
    [({(USER, APP): "downloading"}, TaskStatus.ACCEPTED), ({}, TaskStatus.INTERRUPTED)],
    ids=["listed", "absent"],
)
def test_given_a_task_sent_by_the_previous_run_when_it_restarts_then_the_list_of_apps_decides(
    ledger: Ledger,
    store: StoreFactory,
    clock: FakeClock,
    listed: dict[tuple[str, str], str],
    expected: str,
) -> None:
    step(ledger, clock, install(ID), task.DispatchTask(ID))
    ledger.catch_up()
    after = Restart(store, clock)
    after.port.installed.update(listed)
    after.start()
    assert after.status() == TaskStatus.DISPATCHED, "decided by the sweep, not by the recovery"
    after.sweep()
    assert after.status() == expected
    assert after.port.calls == [], "nothing is sent again"
    if expected == TaskStatus.INTERRUPTED:
        assert after.reason().startswith(RESTARTED_IN_FLIGHT)


def test_given_app_service_unreachable_at_the_restart_then_the_task_stays_sent_until_it_answers(
    ledger: Ledger, store: StoreFactory, clock: FakeClock
) -> None:
    step(ledger, clock, install(ID), task.DispatchTask(ID))
    ledger.catch_up()
    after = Restart(store, clock)
    after.port.list_fails = True
    after.start()
    after.sweep()
    after.sweep()
    assert after.status() == TaskStatus.DISPATCHED
    after.port.list_fails = False
    after.sweep()
    assert after.status() == TaskStatus.INTERRUPTED
    assert after.reason().startswith(RESTARTED_IN_FLIGHT), "the restart stays the reason"
    assert after.port.calls == []


def test_given_a_reconciled_install_whose_app_runs_then_the_sweep_that_reconciled_it_closes_it(
    ledger: Ledger, store: StoreFactory, clock: FakeClock
) -> None:
    step(ledger, clock, install(ID), task.DispatchTask(ID))
    ledger.catch_up()
    after = Restart(store, clock)
    after.port.installed[(USER, APP)] = "running"
    after.port.status_times[(USER, APP)] = whole_second(clock.advance(5))
    after.start()
    after.sweep()
    assert after.status() == TaskStatus.SUCCEEDED
    assert after.port.calls == []


@pytest.mark.parametrize(
    ("seconds_after_dispatch", "expected"),
    [(0.0, TaskStatus.SUCCEEDED), (-1.0, TaskStatus.ACCEPTED)],
    ids=["the dispatch's second", "the second before"],
)
def test_given_the_list_names_whole_seconds_then_a_state_of_the_dispatch_s_second_is_not_older(
    ledger: Ledger,
    store: StoreFactory,
    clock: FakeClock,
    seconds_after_dispatch: float,
    expected: str,
) -> None:
    clock.advance(0.5)
    step(ledger, clock, install(ID), task.DispatchTask(ID))
    dispatched = clock()
    step(ledger, clock, task.ReconcileTask(ID, found="pending"))
    ledger.catch_up()
    after = Restart(store, clock)
    after.port.installed[(USER, APP)] = "running"
    seen = whole_second(dispatched) + timedelta(seconds=seconds_after_dispatch)
    after.port.status_times[(USER, APP)] = seen
    after.start()
    after.sweep()
    assert after.status() == expected


def test_given_an_accepted_task_when_it_restarts_then_it_waits_for_its_outcome(
    ledger: Ledger, store: StoreFactory, clock: FakeClock
) -> None:
    step(ledger, clock, install(ID), *accepted(ID, "op-7"))
    ledger.catch_up()
    after = Restart(store, clock)
    after.port.installed[(USER, APP)] = "downloading"
    after.start()
    after.sweep()
    assert after.status() == TaskStatus.ACCEPTED
    found = after.ledger.open_tasks.get(ID)
    assert found is not None and found.op_id == "op-7"
    assert after.port.calls == []


def test_given_an_accepted_task_whose_deadline_passed_while_down_then_the_first_sweep_times_it_out(
    ledger: Ledger, store: StoreFactory, clock: FakeClock
) -> None:
    step(ledger, clock, install(ID), *accepted(ID))
    step(ledger, clock, install(OTHER_ID), *accepted(OTHER_ID, "op-2"))
    ledger.catch_up()
    clock.advance(60 - 10)  # the first is 60 s old, the second 50 s
    after = Restart(store, clock, outcome_deadline=timedelta(seconds=60))
    after.start()
    after.sweep()
    assert after.status(ID) == TaskStatus.TIMED_OUT
    assert after.status(OTHER_ID) == TaskStatus.ACCEPTED


@pytest.mark.parametrize(
    ("age", "expected"), [(31, TaskStatus.SUCCEEDED), (29, TaskStatus.ACCEPTED)]
)
def test_given_an_accepted_task_with_an_op_id_then_the_list_is_looked_at_only_once_it_is_old(
    ledger: Ledger, store: StoreFactory, clock: FakeClock, age: int, expected: str
) -> None:
    step(ledger, clock, install(ID), *accepted(ID))
    ledger.catch_up()
    after = Restart(store, clock)
    after.port.installed[(USER, APP)] = "running"
    after.port.status_times[(USER, APP)] = whole_second(clock.advance(2))
    clock.advance(age - 2)
    after.start()
    after.sweep()
    assert after.status() == expected


def test_given_a_sweep_that_breaks_then_the_watch_goes_on_and_stops_when_told(
    ledger: Ledger, store: StoreFactory, clock: FakeClock
) -> None:
    step(ledger, clock, install(ID), task.DispatchTask(ID))
    ledger.catch_up()
    after = Restart(store, clock, sweep_seconds=0.01)
    after.port.list_breaks = True
    after.start()

    async def scenario() -> None:
        stop = asyncio.Event()
        watching = asyncio.create_task(after.watch.run(stop))
        await asyncio.sleep(0.05)
        assert not watching.done(), "a broken sweep does not end the watch"
        after.port.list_breaks = False
        after.port.installed[(USER, APP)] = "installing"
        for _ in range(500):
            if after.status() != TaskStatus.DISPATCHED:
                break
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(watching, 5)

    asyncio.run(scenario())
    assert after.status() == TaskStatus.ACCEPTED


def test_given_a_long_sweep_interval_then_the_first_sweep_is_made_at_once(
    ledger: Ledger, store: StoreFactory, clock: FakeClock
) -> None:
    step(ledger, clock, install(ID), task.DispatchTask(ID))
    ledger.catch_up()
    after = Restart(store, clock, sweep_seconds=3600)
    after.start()

    async def scenario() -> None:
        stop = asyncio.Event()
        watching = asyncio.create_task(after.watch.run(stop))
        for _ in range(500):
            if after.status() != TaskStatus.DISPATCHED:
                break
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(watching, 5)

    asyncio.run(scenario())
    assert after.status() == TaskStatus.INTERRUPTED
