"""The decider shape every aggregate follows.

``decide(command, state, context) -> events`` says what happens; ``evolve(state, event) ->
state`` says what it means. Both are pure, so a given/when/then test is one call each and
replay is deterministic by construction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from functools import cached_property
from typing import Any, Generic, Protocol, TypeVar, get_args
from uuid import UUID

import attrs

from market_ledger.domain.events import LedgerEvent
from market_ledger.domain.retry_policy import RetryPolicy

# --- commands --------------------------------------------------------------------------------


@attrs.frozen
class Command:
    @cached_property
    def aggregate_id(self) -> UUID:
        raise NotImplementedError

    def prerequisites(self) -> tuple[Command, ...]:
        """Commands handled just before this one, in the same transaction."""
        return ()


class CommandRejected(Exception):
    """The command cannot be carried out; ``reason`` says why, for the caller to show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@attrs.frozen
class DecisionContext:
    """What a decision may depend on besides the command and the state."""

    at: datetime
    retry_policy: RetryPolicy = attrs.field(factory=RetryPolicy)


class HasVersion(Protocol):
    @property
    def version(self) -> int: ...


S = TypeVar("S", bound=HasVersion)
C = TypeVar("C", bound=Command)
E = TypeVar("E", bound=LedgerEvent)


def members(union: Any) -> tuple[type[Any], ...]:
    """The classes of a union alias (``A | B``), or the one class it is."""
    return get_args(union) or (union,)


@attrs.frozen
class Decider(Generic[S, C, E]):
    """An aggregate's rules: the commands it decides, ``decide`` and ``evolve``.

    ``commands`` is read from the aggregate's own command union, so the command handler's
    table follows the aggregates instead of being kept by hand.
    """

    commands: tuple[type[C], ...]
    decide: Callable[[C, S | None, DecisionContext], Sequence[E]]
    evolve: Callable[[S | None, E], S]
    #: a stream that never changes after its first event may be remembered without reloading
    write_once: bool = False

    def fold(self, state: S | None, events: Iterable[E]) -> S | None:
        for event in events:
            state = self.evolve(state, event)
        return state
