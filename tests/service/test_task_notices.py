"""The notifier's task notices: which steps of a task are announced, and what they say."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import timedelta

import pytest

from market_ledger.bootstrap import Ledger
from market_ledger.domain.decider import Command
from market_ledger.domain.task import (
    AcceptTask,
    DequeueTask,
    DispatchTask,
    InterruptTask,
    ObserveOutcome,
    ReconcileTask,
    RejectTask,
    SettleCancelInQueue,
    TimeOutTask,
)
from market_ledger.domain.user import RegisterUser
from market_ledger.service.notifier import Notice, Notifier, PublishFailed
from market_ledger.service.task_notices import (
    TaskExecuting,
    TaskFacts,
    TaskFinished,
    TaskNotice,
    TaskOutcome,
)
from tests.conftest import FakeClock
from tests.support.builders import SOURCE
from tests.support.task_rows import (
    CANCEL_ID,
    TASK_ID,
    cancel_request,
    drop_task_row,
    install_request,
    put_task_row,
)

DISPATCHED = (install_request(), DispatchTask(TASK_ID))
ACCEPTED = (*DISPATCHED, AcceptTask(TASK_ID, "op-1"))


class Recording:
    """A publisher that keeps the typed notices; fails while ``down``."""

    def __init__(self) -> None:
        self.sent: list[Notice] = []
        self.down = False

    async def publish(self, notices: Sequence[Notice]) -> None:
        if self.down:
            raise PublishFailed("NATS is not connected")
        self.sent.extend(notices)

    def tasks(self) -> list[TaskNotice]:
        return [n for n in self.sent if isinstance(n, TaskExecuting | TaskFinished | TaskOutcome)]


def point(notice: TaskNotice) -> tuple[str, ...]:
    if isinstance(notice, TaskExecuting):
        return ("execute",)
    if isinstance(notice, TaskFinished):
        return ("finished", notice.status)
    return ("outcome", notice.outcome)


def started(ledger: Ledger) -> tuple[Notifier, Recording]:
    """A notifier that has had its first run (it announces nothing of the past)."""
    ledger.handler.execute(RegisterUser("alice"))
    ledger.catch_up()
    publisher = Recording()
    notifier = Notifier(ledger, publisher)
    asyncio.run(notifier.publish_pending())
    return notifier, publisher


def happen(ledger: Ledger, *commands: Command) -> None:
    ledger.handler.handle(*commands).raise_if_rejected()
    ledger.catch_up()


@pytest.mark.parametrize(
    ("commands", "points"),
    [
        pytest.param(
            (*ACCEPTED, ObserveOutcome(TASK_ID, "succeeded", "running", op_id="op-1")),
            [("execute",), ("finished", "succeed"), ("outcome", "succeeded")],
            id="accepted-then-running",
        ),
        pytest.param(
            (*ACCEPTED, ObserveOutcome(TASK_ID, "failed", "installFailed")),
            [("execute",), ("finished", "succeed"), ("outcome", "failed")],
            id="accepted-then-failed",
        ),
        pytest.param(
            (*ACCEPTED, ObserveOutcome(TASK_ID, "canceled", "installCanceled")),
            [("execute",), ("finished", "succeed"), ("outcome", "canceled")],
            id="accepted-then-canceled",
        ),
        pytest.param(
            (*DISPATCHED, ReconcileTask(TASK_ID, "installing")),
            [("execute",), ("finished", "succeed")],
            id="reconciled-outcome-not-known-yet",
        ),
        pytest.param(
            (*DISPATCHED, RejectTask(TASK_ID, "app-service answered 500")),
            [("execute",), ("finished", "failed"), ("outcome", "failed")],
            id="rejected",
        ),
        pytest.param(
            (*DISPATCHED, InterruptTask(TASK_ID, "restarted mid-call")),
            [("execute",), ("finished", "failed"), ("outcome", "interrupted")],
            id="interrupted-after-dispatch",
        ),
        pytest.param(
            (install_request(), InterruptTask(TASK_ID, "no token after a restart")),
            [("finished", "failed"), ("outcome", "interrupted")],
            id="interrupted-in-the-queue",
        ),
        pytest.param(
            (install_request(), DequeueTask(TASK_ID, canceled_by=CANCEL_ID)),
            [("finished", "canceled"), ("outcome", "canceled")],
            id="dequeued-by-a-cancel",
        ),
    ],
)
def test_given_a_task_step_when_the_notifier_runs_then_its_points_go_out_in_order(
    ledger: Ledger, commands: tuple[Command, ...], points: list[tuple[str, ...]]
) -> None:
    notifier, publisher = started(ledger)
    happen(ledger, *commands)
    put_task_row(ledger, install_request())  # the projector fills it

    asyncio.run(notifier.publish_pending())

    assert [point(n) for n in publisher.tasks()] == points


def test_given_a_cancel_that_removed_a_queued_install_then_both_tasks_announce_their_ends(
    ledger: Ledger,
) -> None:
    notifier, publisher = started(ledger)
    happen(
        ledger,
        install_request(),
        cancel_request(),
        DequeueTask(TASK_ID, canceled_by=CANCEL_ID),
        SettleCancelInQueue(CANCEL_ID, removed_task=TASK_ID),
    )
    put_task_row(ledger, install_request())  # the projector fills them
    put_task_row(ledger, cancel_request())

    asyncio.run(notifier.publish_pending())

    assert [(n.task.task_id, *point(n)) for n in publisher.tasks()] == [
        (TASK_ID, "finished", "canceled"),
        (TASK_ID, "outcome", "canceled"),
        (CANCEL_ID, "finished", "succeed"),
        (CANCEL_ID, "outcome", "succeeded"),
    ]


def test_given_an_accepted_task_past_its_deadline_then_its_outcome_is_timed_out(
    ledger: Ledger, clock: FakeClock
) -> None:
    notifier, publisher = started(ledger)
    happen(ledger, *ACCEPTED)
    clock.advance(601)
    happen(ledger, TimeOutTask(TASK_ID, timedelta(seconds=600)))
    put_task_row(ledger, install_request())  # the projector fills it

    asyncio.run(notifier.publish_pending())

    assert [point(n) for n in publisher.tasks()][-1] == ("outcome", "timed_out")


def test_given_a_task_row_then_the_notices_say_what_it_says_and_the_outcome_its_error(
    ledger: Ledger,
) -> None:
    notifier, publisher = started(ledger)
    happen(ledger, *DISPATCHED, RejectTask(TASK_ID, "app-service answered 500"))
    put_task_row(ledger, install_request(), error="Installation failed: 500")  # as projected

    asyncio.run(notifier.publish_pending())

    facts = TaskFacts(
        task_id=TASK_ID,
        kind="install",
        user="alice",
        app_name="firefox",
        version="1.0.0",
        source=SOURCE,
        error="Installation failed: 500",
    )
    assert {n.task for n in publisher.tasks()} == {facts}
    assert all(n.user == "alice" for n in publisher.tasks())


def test_given_a_task_without_its_row_then_only_its_notices_are_skipped_and_it_is_logged(
    ledger: Ledger, caplog: pytest.LogCaptureFixture
) -> None:
    notifier, publisher = started(ledger)
    happen(ledger, *DISPATCHED, cancel_request(), DispatchTask(CANCEL_ID))
    put_task_row(ledger, cancel_request())  # the projector fills them; one is missing
    drop_task_row(ledger, TASK_ID)

    with caplog.at_level(logging.WARNING, logger="market_ledger.service.notifier"):
        report = asyncio.run(notifier.publish_pending())

    assert [(n.task.task_id, *point(n)) for n in publisher.tasks()] == [(CANCEL_ID, "execute")]
    assert report.error is None and report.position == ledger.projector.position()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and TASK_ID in warnings[0] and "TaskDispatched" in warnings[0]


def test_given_publishing_fails_then_the_task_notices_go_out_once_it_is_back(
    ledger: Ledger,
) -> None:
    notifier, publisher = started(ledger)
    happen(ledger, *ACCEPTED)
    put_task_row(ledger, install_request())  # the projector fills it
    publisher.down = True

    failed = asyncio.run(notifier.publish_pending())
    publisher.down = False
    asyncio.run(notifier.publish_pending())
    asyncio.run(notifier.publish_pending())

    assert failed.error is not None
    assert [point(n) for n in publisher.tasks()] == [("execute",), ("finished", "succeed")]
