"""Given tasks queued with the dispatcher, how they reach app-service and what is recorded."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from market_ledger.bootstrap import Ledger
from market_ledger.domain.task import DispatchTask, RequestTask
from market_ledger.domain.task_events import (
    CANCEL,
    INSTALL,
    UNINSTALL,
    TaskAccepted,
    TaskDequeued,
    TaskDispatched,
    TaskInterrupted,
    TaskReconciled,
    TaskSettledInQueue,
    TaskStatus,
)
from market_ledger.service.app_operations import AnswerUnknown, Operation, Rejected
from market_ledger.service.handler import utc_now
from market_ledger.service.task_dispatcher import Dispatcher, TaskSettings
from tests.support.fake_operations import ScriptedOperations

USER = "alice"
SOURCE = "market.olares"


def task_id(n: int) -> str:
    return f"20261204120000-t{n:05d}"


def queue(dispatcher: Dispatcher, n: int, kind: str, app: str, **fields: Any) -> str:
    """Record a task and queue it, as the request use case does."""
    tid = task_id(n)
    version = "" if kind in (CANCEL, UNINSTALL) else "1.0.0"
    source = "" if kind == CANCEL else SOURCE
    outcome = dispatcher.ledger.handler.handle(
        RequestTask(tid, kind=kind, user=USER, app_name=app, source=source, version=version)
    )
    dispatcher.ledger.open_tasks.apply(outcome.events)
    dispatcher.enqueue(
        tid, Operation(kind=kind, user=USER, app_name=app, token="tok-secret", **fields)
    )
    return tid


def kinds_of(ledger: Ledger, tid: str) -> list[type]:
    events = ledger.application.repository.event_store.get(
        RequestTask(tid, kind=INSTALL, user=USER, app_name="x").aggregate_id
    )
    return [type(event) for event in events][1:]


async def settled(dispatcher: Dispatcher, *task_ids: str) -> None:
    for tid in task_ids:
        state = await dispatcher.wait_answered(tid, 5.0)
        assert state is not None, f"{tid} was never answered"


def dispatcher_for(ledger: Ledger, port: ScriptedOperations, **settings: Any) -> Dispatcher:
    return Dispatcher(ledger, port, TaskSettings(**settings), utc_now)


async def until(condition: Any, what: str) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never: {what}")


def test_given_an_install_when_app_service_accepts_then_it_is_accepted_with_its_op_id(
    ledger: Ledger,
) -> None:
    async def scenario() -> None:
        port = ScriptedOperations()
        dispatcher = dispatcher_for(ledger, port)
        tid = queue(dispatcher, 1, INSTALL, "firefox")
        await settled(dispatcher, tid)
        assert kinds_of(ledger, tid) == [TaskDispatched, TaskAccepted]
        # the index follows the commit a moment after the store has it
        await until(lambda: getattr(ledger.open_tasks.get(tid), "accepted", False), "indexed")
        found = ledger.open_tasks.get(tid)
        assert found is not None and found.op_id == "op-1"
        assert port.calls[0].token == "tok-secret"

    asyncio.run(scenario())


def test_given_an_answer_other_than_code_200_then_the_task_is_rejected_with_the_reason(
    ledger: Ledger,
) -> None:
    async def scenario() -> None:
        port = ScriptedOperations(answers={"firefox": Rejected("code 500: boom", '{"code":500}')})
        dispatcher = dispatcher_for(ledger, port)
        tid = queue(dispatcher, 1, UNINSTALL, "firefox")
        state = await dispatcher.wait_answered(tid, 5.0)
        assert state.status == TaskStatus.REJECTED and state.reason == "code 500: boom"
        assert state.backend_answer == '{"code":500}'
        assert ledger.open_tasks.get(tid) is None

    asyncio.run(scenario())


def test_given_one_app_s_call_hanging_then_another_app_s_task_is_sent_and_answered(
    ledger: Ledger,
) -> None:
    async def scenario() -> None:
        port = ScriptedOperations()
        gate = port.hold("slow")
        dispatcher = dispatcher_for(ledger, port)
        hung = queue(dispatcher, 1, INSTALL, "slow")
        other = queue(dispatcher, 2, INSTALL, "fast")
        await settled(dispatcher, other)
        assert ledger.open_tasks.get(hung).state == TaskStatus.DISPATCHED  # type: ignore[union-attr]
        gate.set()
        await settled(dispatcher, hung)

    asyncio.run(scenario())


def test_given_tasks_of_one_app_then_they_are_sent_one_at_a_time_in_order(
    ledger: Ledger,
) -> None:
    async def scenario() -> None:
        port = ScriptedOperations()
        gate = port.hold("firefox")
        dispatcher = dispatcher_for(ledger, port)
        first = queue(dispatcher, 1, INSTALL, "firefox")
        second = queue(dispatcher, 2, UNINSTALL, "firefox")
        await until(lambda: port.calls, "the first call")
        await asyncio.sleep(0.05)
        assert port.kinds() == [(INSTALL, "firefox")], "the second waits for the first"
        gate.set()
        await settled(dispatcher, first, second)
        assert port.kinds() == [(INSTALL, "firefox"), (UNINSTALL, "firefox")]

    asyncio.run(scenario())


def test_given_more_apps_than_the_limit_then_no_more_calls_than_the_limit_are_in_flight(
    ledger: Ledger,
) -> None:
    async def scenario() -> None:
        port = ScriptedOperations()
        gates = [port.hold(f"app{n}") for n in range(6)]
        dispatcher = dispatcher_for(ledger, port, concurrency=2)
        ids = [queue(dispatcher, n, INSTALL, f"app{n}") for n in range(6)]
        await until(lambda: port.in_flight == 2, "two calls in flight")
        await asyncio.sleep(0.05)
        assert port.in_flight == 2
        for gate in gates:
            gate.set()
        await settled(dispatcher, *ids)
        assert port.most_in_flight == 2

    asyncio.run(scenario())


def test_given_a_queued_install_when_canceled_then_it_leaves_the_queue_and_nothing_is_sent(
    ledger: Ledger,
) -> None:
    async def scenario() -> None:
        port = ScriptedOperations()
        gate = port.hold("firefox")
        dispatcher = dispatcher_for(ledger, port)
        busy = queue(dispatcher, 1, UNINSTALL, "firefox")  # holds the app's lane
        await until(lambda: port.calls, "the uninstall in flight")
        install = queue(dispatcher, 2, INSTALL, "firefox")
        cancel = queue(dispatcher, 3, CANCEL, "firefox")
        await until(lambda: ledger.open_tasks.get(cancel) is None, "the cancel settled")
        assert kinds_of(ledger, install) == [TaskDequeued]
        assert kinds_of(ledger, cancel) == [TaskSettledInQueue]
        gate.set()
        await settled(dispatcher, busy)
        await asyncio.sleep(0.05)
        assert port.kinds() == [(UNINSTALL, "firefox")], "neither install nor cancel was sent"

    asyncio.run(scenario())


def test_given_every_slot_taken_when_an_install_waiting_for_one_is_canceled_then_none_is_sent(
    ledger: Ledger,
) -> None:
    async def scenario() -> None:
        port = ScriptedOperations()
        gate = port.hold("slow")
        dispatcher = dispatcher_for(ledger, port, concurrency=1)
        busy = queue(dispatcher, 1, INSTALL, "slow")  # takes the only slot
        await until(lambda: port.calls, "the slow call in flight")
        install = queue(dispatcher, 2, INSTALL, "firefox")
        await asyncio.sleep(0.05)
        cancel = queue(dispatcher, 3, CANCEL, "firefox")
        await until(lambda: ledger.open_tasks.get(cancel) is None, "the cancel settled")
        assert kinds_of(ledger, install) == [TaskDequeued]
        gate.set()
        await settled(dispatcher, busy)
        await asyncio.sleep(0.05)
        assert port.kinds() == [(INSTALL, "slow")], "neither install nor cancel was sent"

    asyncio.run(scenario())


def test_given_an_install_in_flight_when_canceled_then_the_cancel_is_sent_after_it(
    ledger: Ledger,
) -> None:
    async def scenario() -> None:
        port = ScriptedOperations()
        gate = port.hold("firefox")
        dispatcher = dispatcher_for(ledger, port)
        install = queue(dispatcher, 1, INSTALL, "firefox")
        queue(dispatcher, 2, UNINSTALL, "firefox")
        await until(lambda: port.calls, "the install in flight")
        cancel = queue(dispatcher, 3, CANCEL, "firefox")
        gate.set()
        await settled(dispatcher, install, cancel)
        assert port.kinds()[:2] == [(INSTALL, "firefox"), (CANCEL, "firefox")]

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("installed", "expected"),
    [({(USER, "firefox"): "downloading"}, TaskReconciled), ({}, TaskInterrupted)],
)
def test_given_no_answer_then_the_list_of_apps_decides_and_nothing_is_sent_again(
    ledger: Ledger, installed: dict[tuple[str, str], str], expected: type
) -> None:
    async def scenario() -> None:
        port = ScriptedOperations(
            answers={"firefox": AnswerUnknown("read timeout after 60 s")}, installed=installed
        )
        dispatcher = dispatcher_for(ledger, port)
        tid = queue(dispatcher, 1, INSTALL, "firefox")
        await until(lambda: tid in dispatcher.unanswered, "left for the next sweep")
        assert kinds_of(ledger, tid) == [TaskDispatched]  # app-service gets time to list it
        await dispatcher.reconcile(tid, "no answer")  # what the sweep does
        assert kinds_of(ledger, tid) == [TaskDispatched, expected]
        assert len(port.calls) == 1

    asyncio.run(scenario())


def test_given_no_answer_and_no_list_then_the_task_waits_to_be_reconciled(
    ledger: Ledger,
) -> None:
    async def scenario() -> None:
        port = ScriptedOperations(answers={"firefox": AnswerUnknown("timeout")}, list_fails=True)
        dispatcher = dispatcher_for(ledger, port)
        tid = queue(dispatcher, 1, INSTALL, "firefox")
        await until(lambda: tid in dispatcher.unanswered, "left for the sweep")
        assert await dispatcher.wait_answered(tid, 0.1) is None
        port.list_fails = False
        port.installed[(USER, "firefox")] = "installing"
        await dispatcher.reconcile(tid, "no answer")
        assert kinds_of(ledger, tid) == [TaskDispatched, TaskReconciled]

    asyncio.run(scenario())


def test_given_a_rejected_task_then_its_token_is_nowhere_in_the_log(ledger: Ledger) -> None:
    async def scenario() -> Sequence[Any]:
        port = ScriptedOperations(answers={"firefox": Rejected("nope")})
        dispatcher = dispatcher_for(ledger, port)
        await settled(dispatcher, queue(dispatcher, 1, INSTALL, "firefox"))
        return list(ledger.application.recorder.select_notifications(1, 100))

    for record in asyncio.run(scenario()):
        assert b"tok-secret" not in record.state


def test_given_a_task_dispatched_already_then_it_is_not_sent_again(ledger: Ledger) -> None:
    async def scenario() -> ScriptedOperations:
        port = ScriptedOperations()
        dispatcher = dispatcher_for(ledger, port)
        tid = task_id(1)
        ledger.handler.handle(
            RequestTask(
                tid, kind=INSTALL, user=USER, app_name="firefox", source=SOURCE, version="1"
            )
        )
        ledger.handler.handle(DispatchTask(tid))  # by another writer, a moment before
        dispatcher.enqueue(tid, Operation(kind=INSTALL, user=USER, app_name="firefox", token="t"))
        await asyncio.sleep(0.2)
        return port

    assert asyncio.run(scenario()).calls == []
