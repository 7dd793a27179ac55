"""How one inbound message becomes events: parse it, then handle it in one transaction.

Shared by the intake (a batch at a time) and by the replay of a parked message, so that a
replayed message is handled exactly as the intake would have handled it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

import attrs
from sqlalchemy.engine import Connection

from market_ledger.adapters.nats.messages import (
    parse_app_state,
    parse_user_event,
    with_known_invisibility,
    with_resolved_sources,
)
from market_ledger.domain.decider import Command
from market_ledger.domain.installation import ObserveInstallationState
from market_ledger.domain.user import RegisterUser, RemoveUser
from market_ledger.projections.queries import registered_users
from market_ledger.projections.schema import ViewTables
from market_ledger.service.handler import Outcome

APP_STATE = "app_state"
USER = "user"
KINDS = (APP_STATE, USER)

#: ``(kind, payload, subject, headers)`` -> the command, or None for a message that
#: changes nothing; raises MalformedMessage for one that can never become a command
Parser = Callable[[str, bytes, str, Mapping[str, str] | None], Command | None]


class IntakeHandler(Protocol):
    def handle(self, *commands: Command) -> Outcome: ...

    def state_of(self, command: Command) -> Any: ...


class IntakeLedger(Protocol):
    """What taking a message in needs of the wired ledger."""

    @property
    def handler(self) -> IntakeHandler: ...

    @property
    def tables(self) -> ViewTables: ...

    def read(self) -> AbstractContextManager[Connection]: ...


def parse_message(
    kind: str, data: bytes, subject: str, headers: Mapping[str, str] | None
) -> Command | None:
    if kind == APP_STATE:
        return parse_app_state(data, subject=subject, headers=headers)
    return parse_user_event(data)


@attrs.frozen
class Applied:
    """What one call of the handler did with a batch of commands, by index in the batch."""

    events: int
    rejected: dict[int, str] = attrs.field(factory=dict)
    unknown_users: frozenset[int] = frozenset()
    #: the log position of the last event written, if any
    position: int | None = None
    #: why each of the ``also`` commands was refused, by index among them
    also_rejected: dict[int, str] = attrs.field(factory=dict)


def apply_commands(
    ledger: IntakeLedger, commands: Sequence[Command], also: Sequence[Command] = ()
) -> Applied:
    """Resolve sources, note unknown users and handle the commands in one transaction,
    with ``also`` (e.g. the record of a replay) handled last in the same transaction.

    A ``RegisterUser`` for a user who is registered already is left out: a repeated
    "user created" event must not reset a role an operator gave. Whether a user exists
    is read from the store for user events, and from the views (then the store, for a
    user the views do not know yet) for state messages, which only report it.
    """
    users = {command.user for command in commands if isinstance(command, ObserveInstallationState)}
    with ledger.read() as conn:
        batch = with_resolved_sources(conn, ledger.tables, commands)
        batch = with_known_invisibility(conn, ledger.tables, batch)
        in_views = registered_users(conn, ledger.tables, users)
    registered: dict[str, bool] = {}

    def is_registered(name: str, *, views_suffice: bool = False) -> bool:
        if name not in registered:
            if views_suffice and name in in_views:
                registered[name] = True
            else:
                state: Any = ledger.handler.state_of(RegisterUser(name))
                registered[name] = bool(state is not None and state.registered)
        return registered[name]

    chosen: list[tuple[int, Command]] = []
    unknown: set[int] = set()
    for index, command in enumerate(batch):
        if isinstance(command, RegisterUser):
            if is_registered(command.name):
                continue
            registered[command.name] = True
        elif isinstance(command, RemoveUser):
            is_registered(command.name)
            registered[command.name] = False
        elif isinstance(command, ObserveInstallationState) and not is_registered(
            command.user, views_suffice=True
        ):
            unknown.add(index)
        chosen.append((index, command))
    if not chosen and not also:
        return Applied(events=0)
    outcome = ledger.handler.handle(*(command for _, command in chosen), *also)
    index_of = {id(command): index for index, command in chosen}
    also_index = {id(command): index for index, command in enumerate(also)}
    rejected = {
        index_of[id(r.command)]: r.reason for r in outcome.rejections if id(r.command) in index_of
    }
    also_rejected = {
        also_index[id(r.command)]: r.reason
        for r in outcome.rejections
        if id(r.command) in also_index
    }
    return Applied(
        len(outcome.events), rejected, frozenset(unknown), outcome.position, also_rejected
    )
