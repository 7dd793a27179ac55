"""Given open tasks and app states observed, which tasks the states close, and how."""

from __future__ import annotations

from datetime import UTC, datetime

from market_ledger.bootstrap import Ledger
from market_ledger.domain.installation import ObserveInstallationState, RemoveInstallation
from market_ledger.domain.task import AcceptTask, DispatchTask, ObserveOutcome, RequestTask
from market_ledger.domain.task_events import CANCEL, INSTALL, UPGRADE, TaskStatus
from market_ledger.service.open_tasks import OpenTask, OpenTasks
from market_ledger.service.task_closing import closing_commands
from tests.conftest import FakeClock
from tests.support.builders import SOURCE

AT = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
INSTALL_ID = "20261204120000-inst01"
CANCEL_ID = "20261204120001-canc01"


def open_tasks(*tasks: OpenTask) -> OpenTasks:
    index = OpenTasks()
    index.load(tasks)
    return index


def accepted(task_id: str, kind: str, op_id: str, app: str = "firefox") -> OpenTask:
    return OpenTask(task_id, kind, "alice", app, TaskStatus.ACCEPTED, op_id=op_id, accepted_at=AT)


def state(name: str, op_type: str, op_id: str, app: str = "firefox") -> ObserveInstallationState:
    return ObserveInstallationState("alice", app, name, AT, op_type=op_type, op_id=op_id)


def closed(commands: list[object]) -> dict[str, str]:
    return {c.task_id: c.outcome for c in commands if isinstance(c, ObserveOutcome)}


def test_given_an_install_and_its_cancel_when_the_state_names_the_install_then_both_close() -> None:
    index = open_tasks(accepted(INSTALL_ID, INSTALL, "op-i"), accepted(CANCEL_ID, CANCEL, "op-c"))

    found = closing_commands(index, [state("installingCanceled", INSTALL, "op-i")])

    assert closed(found) == {INSTALL_ID: "canceled", CANCEL_ID: "succeeded"}


def test_given_an_install_and_its_cancel_when_the_state_names_the_cancel_then_both_close() -> None:
    index = open_tasks(accepted(INSTALL_ID, INSTALL, "op-i"), accepted(CANCEL_ID, CANCEL, "op-c"))

    found = closing_commands(index, [state("installingCanceled", CANCEL, "op-c")])

    assert closed(found) == {CANCEL_ID: "succeeded", INSTALL_ID: "canceled"}


def test_given_a_cancel_that_failed_then_only_the_cancel_closes_and_the_install_goes_on() -> None:
    index = open_tasks(accepted(INSTALL_ID, INSTALL, "op-i"), accepted(CANCEL_ID, CANCEL, "op-c"))

    found = closing_commands(index, [state("installCancelFailed", INSTALL, "op-c")])

    assert closed(found) == {CANCEL_ID: "failed"}


def test_given_a_running_app_then_its_install_closes_and_an_open_cancel_of_it_does_not() -> None:
    index = open_tasks(accepted(INSTALL_ID, INSTALL, "op-i"), accepted(CANCEL_ID, CANCEL, "op-c"))

    found = closing_commands(index, [state("running", INSTALL, "op-i")])

    assert closed(found) == {INSTALL_ID: "succeeded"}


def test_given_a_state_of_another_operation_then_no_task_with_an_operation_id_closes() -> None:
    index = open_tasks(accepted(INSTALL_ID, INSTALL, "op-i"), accepted(CANCEL_ID, CANCEL, "op-c"))

    found = closing_commands(index, [state("installingCanceled", INSTALL, "op-old")])

    assert closed(found) == {}


def test_given_a_canceled_state_then_a_cancel_of_another_app_stays_open() -> None:
    other = "20261204120002-canc02"
    index = open_tasks(
        accepted(INSTALL_ID, INSTALL, "op-i"),
        accepted(other, CANCEL, "op-x", app="thunderbird"),
    )

    found = closing_commands(index, [state("installingCanceled", INSTALL, "op-i")])

    assert closed(found) == {INSTALL_ID: "canceled"}


def test_given_an_app_gone_from_app_service_then_its_accepted_cancel_succeeds() -> None:
    index = open_tasks(accepted(CANCEL_ID, CANCEL, "op-c"), accepted(INSTALL_ID, UPGRADE, "op-u"))

    found = closing_commands(index, [RemoveInstallation("alice", "firefox", AT)])

    assert closed(found) == {CANCEL_ID: "succeeded"}


def accepted_in(ledger: Ledger, task_id: str, kind: str, op_id: str) -> None:
    version = "1.0.0" if kind == INSTALL else ""
    source = SOURCE if kind == INSTALL else ""
    outcome = ledger.handler.handle(
        RequestTask(task_id, kind, "alice", "firefox", source=source, version=version),
        DispatchTask(task_id),
        AcceptTask(task_id, op_id),
    )
    outcome.raise_if_rejected()
    ledger.open_tasks.apply(outcome.events)


def test_given_a_canceled_state_naming_the_install_then_the_aggregate_closes_the_cancel_too(
    ledger: Ledger, clock: FakeClock
) -> None:
    accepted_in(ledger, INSTALL_ID, INSTALL, "op-i")
    accepted_in(ledger, CANCEL_ID, CANCEL, "op-c")
    clock.advance(5)
    seen = ObserveInstallationState(
        "alice", "firefox", "installingCanceled", clock(), op_type=INSTALL, op_id="op-i"
    )

    ledger.handler.handle(seen, *closing_commands(ledger.open_tasks, [seen])).raise_if_rejected()

    statuses = {
        t: ledger.handler.state_of(AcceptTask(t, "")).status for t in (INSTALL_ID, CANCEL_ID)
    }
    assert statuses == {INSTALL_ID: TaskStatus.CANCELED, CANCEL_ID: TaskStatus.SUCCEEDED}


def test_given_a_state_that_beats_the_index_to_the_acceptance_then_it_still_closes_the_task(
    ledger: Ledger,
) -> None:
    # given a task accepted in the store while this instance's index still knows it as sent
    tid = "20261204120000-race01"
    index = OpenTasks()
    request = RequestTask(
        tid, kind=INSTALL, user="alice", app_name="firefox", source=SOURCE, version="1"
    )
    index.apply(ledger.handler.handle(request).events)
    index.apply(ledger.handler.handle(DispatchTask(tid)).events)
    ledger.handler.handle(AcceptTask(tid, op_id="op-9"))  # not applied to the index
    running = ObserveInstallationState(
        "alice", "firefox", "running", ledger.handler.clock(), op_type="install"
    )
    # when the state is handled with the commands it closes
    outcome = ledger.handler.handle(running, *closing_commands(index, [running]))
    # then the task is closed as succeeded
    assert ledger.handler.state_of(DispatchTask(tid)).status == TaskStatus.SUCCEEDED
    assert not outcome.rejections
