"""The intake's interpretation: what an inbound app-state or user event means, as commands.

The wire formats (bytes into typed values) belong to the transport; what those values mean
is decided here, and handled in one transaction. Shared by the intake (a batch at a time)
and by the replay of a parked message, so that a replayed message is handled exactly as the
intake would have handled it.

* An app state is an observation of the installation; one that names no market source is
  given the source the views know for it (app-state messages do not say which).
* "User created" becomes :class:`EnsureUserRegistered` (the user aggregate leaves a
  registered user as they are, so a repeated event never resets a role an operator gave);
  "user deleted" becomes ``RemoveUser``.
* A state for a user who is not registered is recorded all the same, and reported, so the
  transport can log and count it.
* A state that ends an operation closes the task that asked for it, in the same transaction
  (see market_ledger.service.task_closing).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

import attrs
from sqlalchemy.engine import Connection

from market_ledger.domain.decider import Command
from market_ledger.domain.installation import ObserveInstallationState
from market_ledger.domain.user import EnsureUserRegistered, RegisterUser, RemoveUser
from market_ledger.projections.intake_reads import installed_app_sources, registered_among
from market_ledger.projections.schema import ViewTables
from market_ledger.service.handler import Outcome
from market_ledger.service.open_tasks import OpenTasks
from market_ledger.service.task_closing import closing_commands

APP_STATE = "app_state"
USER = "user"
KINDS = (APP_STATE, USER)


class MalformedMessage(ValueError):
    """A message that can never become a command; ``field`` names what is wrong."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@attrs.frozen
class UserChange:
    """A user event, read from the wire: the user was created, or deleted."""

    user: str
    created: bool


#: what a parser reads from a message: an app state, or a user change
Message = ObserveInstallationState | UserChange
#: ``(kind, payload, subject, headers)`` -> the message read, or None for one that changes
#: nothing; raises MalformedMessage for one that can never become a command
Parser = Callable[[str, bytes, str, Mapping[str, str] | None], Message | None]


def command_for(message: Message) -> Command:
    """The command a message read from the wire becomes."""
    if isinstance(message, UserChange):
        return EnsureUserRegistered(message.user) if message.created else RemoveUser(message.user)
    return message


def failure_reason(error: BaseException) -> str:
    """How a failure to take a message in is recorded."""
    return str(error) if isinstance(error, MalformedMessage) else f"{type(error).__name__}: {error}"


class IntakeHandler(Protocol):
    def handle(self, *commands: Command) -> Outcome: ...

    def state_of(self, command: Command) -> Any: ...


class IntakeLedger(Protocol):
    """What taking a message in needs of the wired ledger."""

    @property
    def handler(self) -> IntakeHandler: ...

    @property
    def tables(self) -> ViewTables: ...

    @property
    def open_tasks(self) -> OpenTasks: ...

    def read(self) -> AbstractContextManager[Connection]: ...


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

    Whether a state's user exists only decides how it is reported: read from the views,
    then the store for a user the views do not know yet, following the user events of the
    batch itself.
    """
    users = {command.user for command in commands if isinstance(command, ObserveInstallationState)}
    with ledger.read() as conn:
        batch = with_resolved_sources(conn, ledger.tables, commands)
        in_views = registered_among(conn, ledger.tables, users)
    registered: dict[str, bool] = {}

    def is_registered(name: str) -> bool:
        if name not in registered:
            if name in in_views:
                registered[name] = True
            else:
                state: Any = ledger.handler.state_of(RegisterUser(name))
                registered[name] = bool(state is not None and state.registered)
        return registered[name]

    unknown: set[int] = set()
    for index, command in enumerate(batch):
        if isinstance(command, RegisterUser | EnsureUserRegistered):
            registered[command.name] = True
        elif isinstance(command, RemoveUser):
            registered[command.name] = False
        elif isinstance(command, ObserveInstallationState) and not is_registered(command.user):
            unknown.add(index)
    if not batch and not also:
        return Applied(events=0)
    # The tasks these states close are closed in the same transaction; a refusal among them
    # (a state about an earlier operation) is the task's business, not the message's.
    closing = closing_commands(ledger.open_tasks, batch)
    outcome = ledger.handler.handle(*batch, *closing, *also)
    ledger.open_tasks.apply(outcome.events)
    index_of = {id(command): index for index, command in enumerate(batch)}
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


def with_resolved_sources(
    conn: Connection, tables: ViewTables, commands: Sequence[Command]
) -> list[Command]:
    """The commands, each observation that names no market source given one from the views.

    The installation's current source if known, else the one source that lists an app of
    that name for the user, else ``""`` (system apps and middlewares: such an installation
    matches the app of that name in any source).
    """
    wanted = {
        (command.user, command.name, command.raw_app_name)
        for command in commands
        if isinstance(command, ObserveInstallationState) and not command.source
    }
    if not wanted:
        return list(commands)
    sources = installed_app_sources(conn, tables, wanted)
    resolved: list[Command] = []
    for command in commands:
        if isinstance(command, ObserveInstallationState) and not command.source:
            source = sources[(command.user, command.name, command.raw_app_name)]
            command = attrs.evolve(command, source=source) if source else command
        resolved.append(command)
    return resolved
