"""The command handler: load, decide, save; on a conflict, reload and decide again.

Consistency takes no lock. Two writers deciding about the same stream both try to append
the next version; the event store accepts one and raises an integrity error for the other,
which reloads the stream (now holding the winner's events) and decides again, a bounded
number of times.

A batch of several commands is decided during a *turn* (:data:`WriteTurn`), when the store
provides one: the store appends one transaction at a time anyway, and a batch that lost the
race would be decided again in full, so writers sharing a store take turns at deciding
batches instead of throwing most decisions away. The turn never replaces the check above.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import attrs
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from market_ledger.domain.admission import check_command
from market_ledger.domain.decider import Command, CommandRejected, Decider, DecisionContext
from market_ledger.domain.events import LedgerEvent
from market_ledger.domain.feed_cursor import FEED_CURSOR
from market_ledger.domain.installation import INSTALLATION
from market_ledger.domain.listing import LISTING
from market_ledger.domain.manifest_record import MANIFEST_RECORD
from market_ledger.domain.market_source import MARKET_SOURCE
from market_ledger.domain.parked_message import PARKED_MESSAGE
from market_ledger.domain.retry_policy import RetryPolicy
from market_ledger.domain.task import TASK
from market_ledger.domain.user import USER
from market_ledger.service.application import LedgerApplication

log = logging.getLogger(__name__)

#: a turn at deciding and appending a batch, shared with every writer of the store
WriteTurn = Callable[[], AbstractContextManager[object]]

#: every aggregate the ledger keeps; a new one is added here
AGGREGATES: tuple[Decider[Any, Any, Any], ...] = (
    USER,
    MARKET_SOURCE,
    LISTING,
    INSTALLATION,
    FEED_CURSOR,
    MANIFEST_RECORD,
    PARKED_MESSAGE,
    TASK,
)


def command_table(
    deciders: Sequence[Decider[Any, Any, Any]],
) -> dict[type[Command], Decider[Any, Any, Any]]:
    """Command type -> the aggregate that decides it, from the aggregates' own command unions;
    a command claimed by two aggregates is a mistake found at import."""
    table: dict[type[Command], Decider[Any, Any, Any]] = {}
    for decider in deciders:
        for command_type in decider.commands:
            if command_type in table:
                raise TypeError(f"{command_type.__name__} is decided by two aggregates")
            table[command_type] = decider
    return table


DECIDERS = command_table(AGGREGATES)


def utc_now() -> datetime:
    return datetime.now(UTC)


#: how many write-once stream states the handler remembers
SETTLED_LIMIT = 100_000
#: reads the new events of many streams at once: {stream id: version known} -> {id: events}
BulkLoader = Callable[[Mapping[UUID, int]], Mapping[UUID, Sequence[Any]]]


class ConcurrencyConflict(RuntimeError):
    """Other writers kept winning for longer than the handler is willing to retry."""


@attrs.frozen
class Rejection:
    command: Command
    reason: str
    #: the refusal itself is in the log, for audit (e.g. a state claiming a time too far ahead)
    recorded: bool = False


@attrs.frozen
class Outcome:
    """What handling a group of commands did."""

    events: tuple[LedgerEvent, ...] = ()
    rejections: tuple[Rejection, ...] = ()
    #: the log position of the last event written, if any
    position: int | None = None

    def raise_if_rejected(self) -> Outcome:
        if self.rejections:
            raise CommandRejected("; ".join(r.reason for r in self.rejections))
        return self


class CommandHandler:
    def __init__(
        self,
        application: LedgerApplication,
        *,
        retry_policy: RetryPolicy | None = None,
        clock: Callable[[], datetime] = utc_now,
        max_attempts: int = 5,
        bulk_loader: BulkLoader | None = None,
        write_turn: WriteTurn = nullcontext,
    ) -> None:
        self.application = application
        self.write_turn = write_turn
        self.bulk_loader = bulk_loader
        #: states of write-once streams, known never to change once they exist
        self._settled: dict[UUID, Any] = {}
        self.retry_policy = retry_policy or RetryPolicy()
        self.clock = clock
        self.max_attempts = max_attempts

    def execute(self, command: Command) -> Outcome:
        """Handle one command; a rejection is raised as :class:`CommandRejected`."""
        return self.handle(command).raise_if_rejected()

    def handle(self, *commands: Command) -> Outcome:
        """Decide every command in order and save all resulting events in one transaction.

        A later command sees the events of an earlier one. Rejected commands are reported in
        the outcome and do not stop the others: a command carrying a value the views cannot
        hold (see market_ledger.domain.limits), one its aggregate refuses, and one whose refusal its
        aggregate records as an event.
        """
        commands = tuple(p for command in commands for p in (*command.prerequisites(), command))
        # a lone command is decided in a moment, so losing a race costs little
        turn = self.write_turn if len(commands) > 1 else nullcontext
        for attempt in range(1, self.max_attempts + 1):
            with turn():
                outcome = self._decide_and_save(commands)
            if outcome is not None:
                return outcome
            log.info(
                "concurrent write on one of the streams of %d command(s); deciding again "
                "(attempt %d of %d)",
                len(commands),
                attempt,
                self.max_attempts,
            )
        raise ConcurrencyConflict(
            f"{len(commands)} command(s) lost the race {self.max_attempts} times in a row"
        )

    def _decide_and_save(self, commands: Sequence[Command]) -> Outcome | None:
        """One attempt; None when another writer appended to one of the streams first."""
        states = self._preload(commands)
        events: list[LedgerEvent] = []
        rejections: list[Rejection] = []
        context = DecisionContext(at=self.clock(), retry_policy=self.retry_policy)
        for command in commands:
            decider = decider_for(command)
            aggregate_id = command.aggregate_id
            if aggregate_id not in states:
                states[aggregate_id] = self.load(aggregate_id, decider)
            try:
                check_command(command)
                new_events = decider.decide(command, states[aggregate_id], context)
            except CommandRejected as rejected:
                rejections.append(Rejection(command, rejected.reason))
                continue
            rejections.extend(
                Rejection(command, event.refusal, recorded=True)
                for event in new_events
                if event.refusal is not None
            )
            if new_events:
                states[aggregate_id] = decider.fold(states[aggregate_id], new_events)
                events.extend(new_events)
        if not events:
            self._remember(states, commands)
            return Outcome(rejections=tuple(rejections))
        try:
            recordings = self.application.events.put(events)
        except IntegrityError:
            return None
        self._remember(states, commands)
        position = recordings[-1].notification.id if recordings else None
        return Outcome(tuple(events), tuple(rejections), position)

    def _preload(self, commands: Sequence[Command]) -> dict[UUID, Any]:
        """Bring the streams of a group of commands up to date with one query.

        Streams already in the cache are read only from the version the cache holds, so a
        long stream (an installation with many progress reports) costs its new events only.
        """
        if self.bulk_loader is None or len(commands) < 2:
            return {}
        cache = self.application.repository.cache
        deciders: dict[UUID, Decider[Any, Any, Any]] = {}
        cached: dict[UUID, Any] = {}
        for command in commands:
            aggregate_id = command.aggregate_id
            if aggregate_id in self._settled or aggregate_id in deciders:
                continue
            deciders[aggregate_id] = decider_for(command)
            if cache is not None:
                try:  # noqa: SIM105 (a suppress() block per command costs more, in bulk)
                    cached[aggregate_id] = cache.get(aggregate_id)
                except KeyError:
                    pass  # not cached: read from the start
        if not deciders:
            return {}
        known = {i: getattr(cached.get(i), "version", 0) for i in deciders}
        found = self.bulk_loader(known)
        return {
            aggregate_id: decider.fold(cached.get(aggregate_id), found.get(aggregate_id, ()))
            for aggregate_id, decider in deciders.items()
        }

    def load(self, aggregate_id: UUID, decider: Decider[Any, Any, Any]) -> Any:
        """The current state of a stream, or None if it has no events yet."""
        if aggregate_id in self._settled:
            return self._settled[aggregate_id]
        try:
            return self.application.repository.get(
                aggregate_id,
                projector_func=decider.fold,
                deepcopy_from_cache=False,
            )
        except AggregateNotFoundError:
            return None

    def state_of(self, command: Command) -> Any:
        """The current state of the stream ``command`` targets (None if it has none)."""
        return self.load(command.aggregate_id, decider_for(command))

    def _remember(self, states: dict[UUID, Any], commands: Sequence[Command]) -> None:
        for command in commands:
            state = states.get(command.aggregate_id)
            if state is not None and decider_for(command).write_once:
                if len(self._settled) >= SETTLED_LIMIT:
                    self._settled.clear()
                self._settled[command.aggregate_id] = state
        cache = self.application.repository.cache
        if cache is None:
            return
        for aggregate_id, state in states.items():
            if state is not None:
                cache.put(aggregate_id, state)


def decider_for(command: Command) -> Decider[Any, Any, Any]:
    decider = DECIDERS.get(type(command))
    if decider is not None:
        return decider
    for command_type in type(command).__mro__:
        decider = DECIDERS.get(command_type)
        if decider is not None:
            return decider
    raise TypeError(f"no aggregate handles {type(command).__name__}")
