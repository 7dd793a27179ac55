"""The task points on ``os.market.<user>``: their wire shape, and their order over a real server."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import pytest

from market_ledger.adapters.nats.connection import NatsConnection
from market_ledger.adapters.nats.notifications import NatsNotices, notification_of
from market_ledger.adapters.nats.publisher import NatsPublisher
from market_ledger.bootstrap import Ledger
from market_ledger.domain.task import AcceptTask, DispatchTask, ObserveOutcome
from market_ledger.domain.user import RegisterUser
from market_ledger.service.notifier import Notifier
from market_ledger.service.task_notices import (
    CANCELED,
    FAILED,
    SUCCEED,
    TaskExecuting,
    TaskFacts,
    TaskFinished,
    TaskOutcome,
)
from tests.conftest import StoreFactory
from tests.support.builders import SOURCE
from tests.support.nats_server import Inbox, Nats, connect, eventually, nats_for_test
from tests.support.task_rows import TASK_ID, install_request, put_task_row

AT = datetime(2026, 11, 1, 12, 0, 7, 900000, tzinfo=UTC)
INSTALL = TaskFacts(
    task_id=TASK_ID,
    kind="install",
    user="alice",
    app_name="firefox",
    version="1.0.0",
    source=SOURCE,
    error=None,
)
CANCEL = TaskFacts(
    task_id="20261101120005-zz9900",
    kind="cancel",
    user="alice",
    app_name="firefox",
    version="",
    source="",
    error=None,
)
INSTALL_EXTENSIONS = {
    "task_type": "install",
    "app_name": "firefox",
    "version": "1.0.0",
    "source": SOURCE,
    "task_id": TASK_ID,
}


def point_message(point: str, extensions: dict[str, Any]) -> dict[str, Any]:
    return {
        "timestamp": int(AT.timestamp()),
        "user": "alice",
        "notify_type": "market_system_point",
        "point": point,
        "extensions": extensions,
    }


# --- the wire shape ------------------------------------------------------------------------------


def test_given_an_install_sent_then_task_execute_names_its_version_and_source() -> None:
    notification = notification_of(TaskExecuting(INSTALL, AT))

    assert (notification.user, notification.notify_type) == ("alice", "market_system_point")
    assert notification.payload == point_message("task_execute", INSTALL_EXTENSIONS)
    assert notification.compact is None


def test_given_a_cancel_then_its_points_have_neither_version_nor_source() -> None:
    notification = notification_of(TaskExecuting(CANCEL, AT))

    assert notification.payload["extensions"] == {
        "task_type": "cancel",
        "app_name": "firefox",
        "task_id": CANCEL.task_id,
    }


@pytest.mark.parametrize("status", [SUCCEED, FAILED, CANCELED])
def test_given_a_finished_request_then_its_point_and_task_status_name_the_status(
    status: str,
) -> None:
    notification = notification_of(TaskFinished(INSTALL, status, AT))

    assert notification.payload == point_message(
        f"task_finished_{status}", {**INSTALL_EXTENSIONS, "task_status": status}
    )


def test_given_an_outcome_without_an_error_then_task_outcome_has_no_error_key() -> None:
    notification = notification_of(TaskOutcome(INSTALL, "succeeded", AT))

    assert notification.payload == point_message(
        "task_outcome", {**INSTALL_EXTENSIONS, "outcome": "succeeded"}
    )
    assert notification.compact is None


def test_given_an_outcome_with_an_error_then_it_is_sent_but_not_in_the_compact_form() -> None:
    failed = attrs.evolve(INSTALL, error="Installation failed: 500")

    notification = notification_of(TaskOutcome(failed, "failed", AT))

    extensions = {**INSTALL_EXTENSIONS, "outcome": "failed"}
    assert notification.payload == point_message(
        "task_outcome", {**extensions, "error": "Installation failed: 500"}
    )
    assert notification.compact == point_message("task_outcome", extensions)


# --- over a real server --------------------------------------------------------------------------


@pytest.fixture
def nats_env(tmp_path: Path) -> Any:
    with nats_for_test(tmp_path) as env:
        yield env


def test_given_a_task_dispatched_accepted_then_succeeded_then_its_three_points_arrive_in_order(
    ledger: Ledger, store: StoreFactory, nats_env: Nats
) -> None:
    ledger.handler.execute(RegisterUser("alice"))
    ledger.catch_up()

    async def scenario() -> Inbox:
        inbox = Inbox()
        listener = await connect(nats_env.url)
        connection = NatsConnection(nats_env.url, reconnect_wait=0.1)
        try:
            await listener.subscribe(f"{nats_env.names.market}.>", cb=inbox.receive)
            await listener.flush()
            await connection.connect(asyncio.Event())
            subject_prefix = nats_env.settings(store.url).subject_market_state
            notifier = Notifier(ledger, NatsNotices(NatsPublisher(connection, subject_prefix)))
            await notifier.publish_pending()  # the first run: nothing of the past
            ledger.handler.handle(
                install_request(),
                DispatchTask(TASK_ID),
                AcceptTask(TASK_ID, "op-1"),
                ObserveOutcome(TASK_ID, "succeeded", "running", op_id="op-1"),
            ).raise_if_rejected()
            ledger.catch_up()
            put_task_row(ledger, install_request())  # the projector fills it
            assert (await notifier.publish_pending()).published == 3
            await eventually(lambda: len(inbox.messages) == 3, what="three task points")
        finally:
            await listener.close()
            await connection.close()
        return inbox

    inbox = asyncio.run(scenario())

    assert {subject for subject, _ in inbox.messages} == {f"{nats_env.names.market}.alice"}
    messages = [message for _, message in inbox.messages]
    assert [m["point"] for m in messages] == [
        "task_execute",
        "task_finished_succeed",
        "task_outcome",
    ]
    assert {m["notify_type"] for m in messages} == {"market_system_point"}
    assert [m["extensions"].get("task_status") for m in messages] == [None, "succeed", None]
    assert messages[-1]["extensions"] == {**INSTALL_EXTENSIONS, "outcome": "succeeded"}
