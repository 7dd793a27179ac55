"""User: someone whose catalog the ledger keeps."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import assert_never
from uuid import UUID

import attrs

from market_ledger.domain import identity
from market_ledger.domain.decider import (
    Command,
    CommandRejected,
    Decider,
    DecisionContext,
    members,
)
from market_ledger.domain.events import LedgerEvent, Stamper
from market_ledger.domain.limits import printable

#: the role of a user registered by a "user created" event
DEFAULT_ROLE = "normal"


@dataclass(frozen=True)
class UserEvent(LedgerEvent):
    name: str


@dataclass(frozen=True)
class UserRegistered(UserEvent):
    TOPIC = "user.Registered.v1"
    HISTORY_NAME = "user_registered"
    role: str
    zone: str


@dataclass(frozen=True)
class UserRemoved(UserEvent):
    TOPIC = "user.Removed.v1"
    HISTORY_NAME = "user_removed"


@dataclass(frozen=True)
class UserMarkedDirty(UserEvent):
    """An explicit request to recompute and re-announce the user's hash."""

    TOPIC = "user.MarkedDirty.v1"
    HISTORY_NAME = "user_marked_dirty"
    reason: str


AnyUserEvent = UserRegistered | UserRemoved | UserMarkedDirty


@attrs.frozen
class UserState:
    id: UUID
    version: int
    name: str
    role: str
    zone: str
    registered: bool


# --- commands --------------------------------------------------------------------------------


@attrs.frozen
class RegisterUser(Command):
    name: str
    role: str = DEFAULT_ROLE
    zone: str = ""

    @cached_property
    def aggregate_id(self) -> UUID:
        return identity.user_id(self.name)


@attrs.frozen
class EnsureUserRegistered(Command):
    """The user exists (a "user created" event): registered with the default role when not
    registered; a registered user is left as they are, so a repeated event never resets a
    role an operator gave."""

    name: str

    @cached_property
    def aggregate_id(self) -> UUID:
        return identity.user_id(self.name)


@attrs.frozen
class RemoveUser(Command):
    name: str

    @cached_property
    def aggregate_id(self) -> UUID:
        return identity.user_id(self.name)


@attrs.frozen
class MarkUserDirty(Command):
    """Recompute and re-announce the user's hash (an operator's request)."""

    name: str
    reason: str = "operator request"

    @cached_property
    def aggregate_id(self) -> UUID:
        return identity.user_id(self.name)


UserCommand = RegisterUser | EnsureUserRegistered | RemoveUser | MarkUserDirty


def evolve(state: UserState | None, event: AnyUserEvent) -> UserState:
    if isinstance(event, UserRegistered):
        return UserState(
            id=event.originator_id,
            version=event.originator_version,
            name=event.name,
            role=event.role,
            zone=event.zone,
            registered=True,
        )
    if state is None:
        raise ValueError(f"{type(event).__name__} before the user was registered")
    if isinstance(event, UserRemoved):
        return attrs.evolve(state, version=event.originator_version, registered=False)
    if isinstance(event, UserMarkedDirty):
        return attrs.evolve(state, version=event.originator_version)
    assert_never(event)


def validate_user_name(name: str) -> None:
    if not name or name != name.strip() or any(ch in name for ch in "/\\\x00 \t\n"):
        raise CommandRejected(f"invalid user name {name!r}")


def decide(
    command: UserCommand, state: UserState | None, context: DecisionContext
) -> list[AnyUserEvent]:
    stamp = Stamper(command.aggregate_id, state.version if state else 0, context.at)
    if isinstance(command, RegisterUser):
        validate_user_name(command.name)
        if (
            state is not None
            and state.registered
            and (state.role, state.zone) == (command.role, command.zone)
        ):
            return []
        return [stamp(UserRegistered, name=command.name, role=command.role, zone=command.zone)]
    if isinstance(command, EnsureUserRegistered):
        validate_user_name(command.name)
        if state is not None and state.registered:
            return []
        return [stamp(UserRegistered, name=command.name, role=DEFAULT_ROLE, zone="")]
    if state is None or not state.registered:
        raise CommandRejected(f"unknown user {command.name!r}")
    if isinstance(command, RemoveUser):
        return [stamp(UserRemoved, name=command.name)]
    if isinstance(command, MarkUserDirty):
        return [stamp(UserMarkedDirty, name=command.name, reason=printable(command.reason))]
    assert_never(command)


USER: Decider[UserState, UserCommand, AnyUserEvent] = Decider(
    commands=members(UserCommand), decide=decide, evolve=evolve
)
