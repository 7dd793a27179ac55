"""Given/when/then for parked messages, and their view on a real store."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from market_ledger.bootstrap import Ledger
from market_ledger.domain import parked_message as pm
from market_ledger.domain.decider import DecisionContext
from market_ledger.projections import queries
from market_ledger.projections.parked_messages import parked_message, parked_messages
from tests.support.decider import DeciderSpec

CONTEXT = DecisionContext(at=datetime(2026, 11, 1, tzinfo=UTC))
KEY = pm.message_key("os.application.alice", b"{}")
parked: DeciderSpec[pm.ParkedMessageState] = DeciderSpec(pm.PARKED_MESSAGE, CONTEXT)


def park(key: str = KEY, **fields: Any) -> pm.ParkMessage:
    values: dict[str, Any] = {
        "subject": "os.application.alice",
        "payload": "{}",
        "kind": "app_state",
        "failure": pm.MALFORMED,
        "reason": "name: missing or empty",
        "headers": (("Nats-Msg-Id", "m1"),),
    }
    values.update(fields)
    return pm.ParkMessage(key, **values)


def test_given_a_parked_message_when_it_is_parked_again_then_nothing_is_added() -> None:
    state = parked.given(park()).when(park(reason="another delivery")).then_nothing().state
    assert state is not None
    assert state.status == "parked" and state.reason == "name: missing or empty"


def test_given_a_replayed_message_when_the_same_message_fails_again_then_it_is_parked_again() -> (
    None
):
    given = parked.given(park(), pm.RecordReplay(KEY))
    state = given.when(park(reason="again")).then(pm.MessageParked).state
    assert state is not None and state.status == "parked"


def test_given_a_parked_message_when_a_replay_fails_then_it_stays_parked_with_the_new_reason() -> (
    None
):
    given = parked.given(park())
    state = given.when(pm.RecordReplayFailure(KEY, "store unreachable")).then(pm.ReplayFailed).state
    assert state is not None
    assert state.status == "parked" and state.reason == "store unreachable"


def test_given_no_such_message_when_it_is_replayed_or_discarded_then_that_is_refused() -> None:
    parked.when(pm.RecordReplay(KEY)).then_rejected("no parked message")
    given = parked.given(park(), pm.DiscardParkedMessage(KEY))
    given.when(pm.RecordReplay(KEY)).then_rejected("is not parked: discarded")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"payload": "a\x00b"}, "'payload' contains a NUL"),
        ({"payload": "x" * (pm.MAX_PAYLOAD + 1)}, "payload longer than"),
        ({"reason": "\ud800"}, "'reason' is not valid Unicode"),
        ({"failure": "whatever"}, "unknown failure"),
        ({"deliveries": 2**31}, "delivery count"),
        ({"headers": (("X", "a\x00"),)}, "'header X' contains a NUL"),
    ],
)
def test_given_a_value_the_view_cannot_hold_when_parking_then_the_domain_refuses_it(
    fields: dict[str, Any], message: str
) -> None:
    parked.when(park(**fields)).then_rejected(message)


def test_given_parked_replayed_and_discarded_messages_then_the_view_and_a_rebuild_agree(
    ledger: Ledger,
) -> None:
    other = pm.message_key("os.users", b"[]")
    third = pm.message_key("os.users", b"{}")
    ledger.handler.handle(park(headers=(("_type_", "x"), ("_data_", "y"))))
    ledger.handler.handle(park(other, subject="os.users", payload="[]", kind="user"))
    ledger.handler.handle(park(third, subject="os.users", payload="{}", kind="user"))
    ledger.handler.handle(pm.RecordReplayFailure(KEY, "still malformed"))
    ledger.handler.handle(pm.RecordReplay(other, requested_by="root"))
    ledger.handler.handle(pm.DiscardParkedMessage(third))
    ledger.catch_up()
    with ledger.read() as conn:
        waiting = parked_messages(conn, ledger.tables)
        every = parked_messages(conn, ledger.tables, include_resolved=True)
        replayed = parked_message(conn, ledger.tables, other)
        status = queries.status(conn, ledger.tables, ledger.projector.head())
    assert [m["id"] for m in waiting] == [KEY]
    assert waiting[0]["reason"] == "still malformed" and waiting[0]["replay_failures"] == 1
    assert waiting[0]["headers"] == {"_type_": "x", "_data_": "y"}
    assert {m["status"] for m in every} == {"parked", "replayed", "discarded"}
    assert replayed is not None and replayed["resolved_by"] == "root"
    assert status["parked_messages"] == 1
    report = ledger.rebuild(verify=True)
    assert report.differences == ()
