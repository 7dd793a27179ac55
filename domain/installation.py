"""Installation: what app-service reports about one app of one user.

States arrive out of order and more than once (NATS redelivers; the publisher does not keep
order; status correction re-reads app-service). An observation older than the last applied
one, by its own timestamp, is recorded as ignored and never applied; an event id seen before
produces nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import attrs

from domain.commands import Command, ObserveInstallationState, RemoveInstallation
from domain.decider import Decider, DecisionContext
from domain.events import LedgerEvent, Stamper

#: how many recent event ids an installation remembers to recognise redeliveries
REMEMBERED_EVENT_IDS = 64


@dataclass(frozen=True)
class InstallationEvent(LedgerEvent):
    user: str
    name: str


@dataclass(frozen=True)
class StateObserved(InstallationEvent):
    TOPIC = "installation.StateObserved.v1"
    HISTORY_NAME = "state_observed"
    source: str
    state: str
    op_type: str
    progress: str
    app_version: str
    event_id: str
    observed_at: datetime
    origin: str
    raw_app_name: str
    title: str
    entrances: list[dict[str, Any]]
    shared_entrances: list[dict[str, Any]]


@dataclass(frozen=True)
class StateIgnored(InstallationEvent):
    """An observation older than the one applied: kept for audit, never applied."""

    TOPIC = "installation.StateIgnored.v1"
    HISTORY_NAME = "state_ignored_stale"
    state: str
    event_id: str
    observed_at: datetime
    origin: str
    newer_than: datetime


@dataclass(frozen=True)
class InstallationRemoved(InstallationEvent):
    TOPIC = "installation.Removed.v1"
    HISTORY_NAME = "installation_removed"
    origin: str
    observed_at: datetime


@attrs.frozen
class InstallationState:
    id: UUID
    version: int
    user: str
    name: str
    state: str
    source: str
    observed_at: datetime
    fingerprint: tuple[Any, ...]
    removed: bool = False
    recent_event_ids: tuple[str, ...] = ()


def _fingerprint(event: StateObserved | ObserveInstallationState) -> tuple[Any, ...]:
    """Everything an observation says except when and by which message it said it."""
    version = event.app_version if isinstance(event, StateObserved) else event.version
    return (
        event.source,
        event.state,
        event.op_type,
        event.progress,
        version,
        event.raw_app_name,
        event.title,
        tuple(tuple(sorted(e.items())) for e in event.entrances),
        tuple(tuple(sorted(e.items())) for e in event.shared_entrances),
    )


def _remember(ids: tuple[str, ...], event_id: str) -> tuple[str, ...]:
    if not event_id:
        return ids
    return (*ids, event_id)[-REMEMBERED_EVENT_IDS:]


def evolve(state: InstallationState | None, event: Any) -> InstallationState:
    if isinstance(event, StateObserved):
        remembered = state.recent_event_ids if state else ()
        return InstallationState(
            id=event.originator_id,
            version=event.originator_version,
            user=event.user,
            name=event.name,
            state=event.state,
            source=event.source,
            observed_at=event.observed_at,
            fingerprint=_fingerprint(event),
            removed=False,
            recent_event_ids=_remember(remembered, event.event_id),
        )
    if state is None:
        raise ValueError(f"{type(event).__name__} before any state was observed")
    if isinstance(event, StateIgnored):
        return attrs.evolve(
            state,
            version=event.originator_version,
            recent_event_ids=_remember(state.recent_event_ids, event.event_id),
        )
    if isinstance(event, InstallationRemoved):
        return attrs.evolve(
            state,
            version=event.originator_version,
            removed=True,
            observed_at=max(state.observed_at, event.observed_at),
        )
    raise TypeError(f"not an installation event: {event!r}")


def decide(
    command: Command, state: InstallationState | None, context: DecisionContext
) -> list[LedgerEvent]:
    stamp = Stamper(command.aggregate_id, state.version if state else 0, context.at)
    if isinstance(command, ObserveInstallationState):
        if state is not None:
            if command.event_id and command.event_id in state.recent_event_ids:
                return []  # the same message again
            if command.observed_at < state.observed_at:
                return [
                    stamp(
                        StateIgnored,
                        user=command.user,
                        name=command.name,
                        state=command.state,
                        event_id=command.event_id,
                        observed_at=command.observed_at,
                        origin=command.origin,
                        newer_than=state.observed_at,
                    )
                ]
            if not state.removed and _fingerprint(command) == state.fingerprint:
                return []  # nothing new (a status correction that agrees)
        return [
            stamp(
                StateObserved,
                user=command.user,
                name=command.name,
                source=command.source,
                state=command.state,
                op_type=command.op_type,
                progress=command.progress,
                app_version=command.version,
                event_id=command.event_id,
                observed_at=command.observed_at,
                origin=command.origin,
                raw_app_name=command.raw_app_name,
                title=command.title,
                entrances=[dict(e) for e in command.entrances],
                shared_entrances=[dict(e) for e in command.shared_entrances],
            )
        ]
    if isinstance(command, RemoveInstallation):
        if state is None or state.removed:
            return []
        if command.observed_at < state.observed_at:
            return []  # the app was seen again after this removal was observed
        return [
            stamp(
                InstallationRemoved,
                user=command.user,
                name=command.name,
                origin=command.origin,
                observed_at=command.observed_at,
            )
        ]
    raise TypeError(f"not an installation command: {command!r}")


INSTALLATION: Decider[InstallationState] = Decider(
    name="Installation", decide=decide, evolve=evolve, event_base=InstallationEvent
)
