"""Given notices, each message carries an id that names the change, the same on every
publication, so a subscriber can drop a repeat after a crash or a failover."""

from __future__ import annotations

from datetime import UTC, datetime

from market_ledger.adapters.nats.notifications import message_id, notification_of
from market_ledger.service.notifier import AppStateChanged, HashChanged
from market_ledger.service.task_notices import TaskFacts, TaskFinished, TaskOutcome

AT = datetime(2026, 12, 4, 12, 0, 0, 123456, tzinfo=UTC)
TASK = TaskFacts("20261204120000-a1B2c3", "install", "alice", "firefox", "1.0", "market", None)


def state(at: datetime = AT, state_name: str = "running") -> AppStateChanged:
    return AppStateChanged("alice", "market", "firefox", {"state": state_name}, None, at)


def test_given_the_same_change_announced_twice_then_both_messages_have_one_id() -> None:
    first, again = notification_of(state()), notification_of(state())
    assert first.message_id == again.message_id != ""


def test_given_different_changes_then_their_ids_differ() -> None:
    ids = {
        message_id(state()),
        message_id(state(at=AT.replace(microsecond=123457))),
        message_id(HashChanged("alice", "h1", AT)),
        message_id(HashChanged("alice", "h2", AT)),
        message_id(TaskFinished(TASK, "succeed", AT)),
        message_id(TaskOutcome(TASK, "succeeded", AT)),
    }
    assert len(ids) == 6


def test_given_a_hash_announced_at_two_moments_then_it_is_one_change() -> None:
    later = AT.replace(hour=13)
    assert message_id(HashChanged("alice", "h1", AT)) == message_id(
        HashChanged("alice", "h1", later)
    )
