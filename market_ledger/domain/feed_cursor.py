"""FeedCursor: how far a state-changes feed has been consumed.

Its events are saved in the same transaction as the events the consumed changes caused, so
the cursor can never run ahead of what it stands for, and it never moves backwards (the
system this replaces reset its cursor to 0 when a whole batch failed).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import assert_never
from uuid import UUID

import attrs

from market_ledger.domain import identity
from market_ledger.domain.decider import Command, Decider, DecisionContext, members
from market_ledger.domain.events import LedgerEvent, Stamper


@dataclass(frozen=True)
class FeedEvent(LedgerEvent):
    feed: str


@dataclass(frozen=True)
class FeedConsumed(FeedEvent):
    TOPIC = "feed_cursor.Consumed.v1"
    HISTORY_NAME = "feed_consumed"
    up_to_id: int


AnyFeedEvent = FeedConsumed


@attrs.frozen
class FeedCursorState:
    id: UUID
    version: int
    feed: str
    position: int


# --- commands --------------------------------------------------------------------------------


@attrs.frozen
class ConsumeFeed(Command):
    """The feed's changes up to ``up_to_id`` are consumed; never moves backwards."""

    feed: str
    up_to_id: int

    @cached_property
    def aggregate_id(self) -> UUID:
        return identity.feed_cursor_id(self.feed)


FeedCursorCommand = ConsumeFeed


def evolve(state: FeedCursorState | None, event: AnyFeedEvent) -> FeedCursorState:
    if isinstance(event, FeedConsumed):
        return FeedCursorState(
            id=event.originator_id,
            version=event.originator_version,
            feed=event.feed,
            position=event.up_to_id,
        )
    assert_never(event)


def decide(
    command: FeedCursorCommand, state: FeedCursorState | None, context: DecisionContext
) -> list[AnyFeedEvent]:
    if state is not None and command.up_to_id <= state.position:
        return []
    stamp = Stamper(command.aggregate_id, state.version if state else 0, context.at)
    return [stamp(FeedConsumed, feed=command.feed, up_to_id=command.up_to_id)]


FEED_CURSOR: Decider[FeedCursorState, FeedCursorCommand, AnyFeedEvent] = Decider(
    commands=members(FeedCursorCommand), decide=decide, evolve=evolve
)
