"""Given/when/then for deciders: pure calls of ``decide`` and ``evolve``, no store.

    spec = DeciderSpec(LISTING, CONTEXT)
    spec.given(offer(), render(offer())).when(offer(version="2")).then(Offered)
    spec.given(*events).when(RetryParked(...)).then_rejected("is not parked")
    spec.given(offer()).when(fail(offer())).then(RenderFailed).after.when(...)

``given`` takes the history as events, or as commands (each decided against the state so
far, which is how most histories are easiest to write); ``when`` decides one command;
``then`` checks the kinds of the events it produced, ``then_rejected`` its refusal,
``then_accepted`` only that it was not refused (for checks on the events themselves).
``state`` is the aggregate's state (after the history, or after the decision) and ``after``
continues from a decision, so a test can take several steps without rebuilding its history.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

import attrs

from market_ledger.domain.decider import Command, CommandRejected, Decider, DecisionContext
from market_ledger.domain.events import LedgerEvent

S = TypeVar("S")


@attrs.frozen
class Then(Generic[S]):
    """What deciding one command did: its events (or its refusal) and the state after."""

    given: Given[S]
    events: tuple[Any, ...] = ()
    rejected: CommandRejected | None = None

    @property
    def kinds(self) -> list[type]:
        return [type(event) for event in self.events]

    @property
    def state(self) -> S | None:
        """The state after the events (the state before, for a refusal)."""
        return self.given.decider.fold(self.given.state, self.events)  # type: ignore[no-any-return]

    @property
    def after(self) -> Given[S]:
        """The aggregate after this decision, to decide the next command against; a refused
        step is a mistake in the test, so it fails here."""
        assert self.rejected is None, f"refused: {self.rejected.reason}"
        return Given(
            self.given.decider, self.given.context, self.given.events + self.events, self.state
        )

    def then(self, *kinds: type) -> Then[S]:
        """The command produced events of exactly these kinds, in this order."""
        assert self.rejected is None, f"refused: {self.rejected.reason}"
        assert self.kinds == list(kinds), self.events
        return self

    def then_nothing(self) -> Then[S]:
        return self.then()

    def then_accepted(self) -> Then[S]:
        """The command was not refused, whatever it produced: for tests that check the
        events in a way ``then`` cannot say (a count, one of two outcomes)."""
        assert self.rejected is None, f"refused: {self.rejected.reason}"
        return self

    def then_events(self, *expected: Any) -> Then[S]:
        """The command produced exactly these events."""
        assert self.rejected is None, f"refused: {self.rejected.reason}"
        assert list(self.events) == list(expected)
        return self

    def then_rejected(self, reason: str = "") -> str:
        """The command was refused, for a reason matching the pattern ``reason``."""
        assert self.rejected is not None, f"not refused: {self.events}"
        assert re.search(reason, self.rejected.reason), self.rejected.reason
        return self.rejected.reason


@attrs.frozen
class Given(Generic[S]):
    """An aggregate after its history: the events of that history and the state they fold to."""

    decider: Decider[Any, Any, Any]
    context: DecisionContext
    events: tuple[Any, ...]
    state: S | None

    def when(self, command: Command, context: DecisionContext | None = None) -> Then[S]:
        try:
            events = self.decider.decide(command, self.state, context or self.context)
        except CommandRejected as rejected:
            return Then(self, rejected=rejected)
        return Then(self, tuple(events))


@attrs.frozen
class DeciderSpec(Generic[S]):
    """One aggregate's decider, with the context its decisions are taken in."""

    decider: Decider[S, Any, Any]
    context: DecisionContext

    def given(self, *history: Command | LedgerEvent) -> Given[S]:
        """The aggregate after ``history``: events applied as they are, commands decided
        against the state so far (a refusal in the history is a mistake in the test)."""
        state: Any = None
        events: list[Any] = []
        for item in history:
            new: Sequence[Any] = (
                self.decider.decide(item, state, self.context)
                if isinstance(item, Command)
                else [item]
            )
            state = self.decider.fold(state, new)
            events.extend(new)
        return Given(self.decider, self.context, tuple(events), state)

    def when(self, command: Command, context: DecisionContext | None = None) -> Then[S]:
        """A command on a stream with no history."""
        return self.given().when(command, context)
