"""Installation: what app-service reports about one app of one user.

States arrive out of order and more than once (NATS redelivers; the publisher does not keep
order; status correction re-reads app-service). An observation older than the last applied
one, by its own timestamp, is recorded as ignored and never applied; an event id seen before
produces nothing.

A time is believed only up to ``MAX_CLOCK_AHEAD`` ahead of the ledger's clock: an observation
claiming a later time would make every real state after it look stale, forever. It is
recorded as refused, with the reason and the time it claimed, and never applied.

app-state messages often leave out an entrance's ``invisible`` flag, which only status
correction (reading app-service) reports: an entrance sent without it keeps the flag the
installation last recorded for that entrance, so a message never makes a hidden entrance
visible by omission.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any, assert_never
from uuid import UUID

import attrs

from market_ledger.domain import identity
from market_ledger.domain.canonical import format_instant
from market_ledger.domain.decider import (
    Command,
    CommandRejected,
    Decider,
    DecisionContext,
    members,
)
from market_ledger.domain.events import LedgerEvent, Stamper
from market_ledger.domain.limits import MAX_CLOCK_AHEAD, latest_believable

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
class StateRefused(InstallationEvent):
    """An observation claiming a time too far ahead to believe: kept for audit, never applied."""

    TOPIC = "installation.StateRefused.v1"
    HISTORY_NAME = "state_refused"
    source: str
    state: str
    op_type: str
    app_version: str
    event_id: str
    observed_at: datetime
    origin: str
    reason: str

    @property
    def claim(self) -> tuple[Any, ...]:
        """What a repeat of the refused observation would claim again, whatever its time (a
        clock running days ahead claims a new time every cycle)."""
        return (self.source, self.state, self.op_type, self.app_version, self.origin)

    @property
    def refusal(self) -> str:
        """Why the observation was refused (the handler reports it as a rejection)."""
        return f"app {self.name!r} of user {self.user!r}: {self.reason}"


@dataclass(frozen=True)
class InstallationRemoved(InstallationEvent):
    TOPIC = "installation.Removed.v1"
    HISTORY_NAME = "installation_removed"
    origin: str
    observed_at: datetime


AnyInstallationEvent = StateObserved | StateIgnored | StateRefused | InstallationRemoved


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
    #: what the last refused observation claimed (see StateRefused.claim), not to record a
    #: repeat of it (status correction reports the same state every cycle)
    last_refused: tuple[Any, ...] | None = None
    #: entrance name -> ``invisible``, as last observed (for entrances that said it)
    entrance_flags: Mapping[str, bool] = attrs.field(factory=dict)


#: the observed time of an installation whose only events are refusals: before any real one
NEVER = datetime.min.replace(tzinfo=UTC)


def _fingerprint(event: StateObserved | ObserveInstallationState) -> tuple[Any, ...]:
    """Everything an observation says except when and by which message it said it."""
    version = event.version if isinstance(event, ObserveInstallationState) else event.app_version
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


def _entrance_flags(entrances: list[dict[str, Any]]) -> dict[str, bool]:
    return {str(e.get("name")): bool(e["invisible"]) for e in entrances if "invisible" in e}


def _with_known_flags(
    command: ObserveInstallationState, state: InstallationState | None
) -> ObserveInstallationState:
    """The observation, each entrance sent without ``invisible`` given the flag recorded for
    it; an entrance never seen with one keeps none, which reads as visible."""
    flags = state.entrance_flags if state is not None else {}
    if not flags:
        return command
    entrances = tuple(
        entrance
        if "invisible" in entrance or str(entrance.get("name")) not in flags
        else {**entrance, "invisible": flags[str(entrance.get("name"))]}
        for entrance in command.entrances
    )
    return command if entrances == command.entrances else attrs.evolve(command, entrances=entrances)


def _remember(ids: tuple[str, ...], event_id: str) -> tuple[str, ...]:
    if not event_id:
        return ids
    return (*ids, event_id)[-REMEMBERED_EVENT_IDS:]


# --- commands --------------------------------------------------------------------------------


@attrs.frozen
class ObserveInstallationState(Command):
    user: str
    name: str
    state: str
    observed_at: datetime
    source: str = ""
    op_type: str = ""
    progress: str = ""
    version: str = ""
    event_id: str = ""
    origin: str = "app-state"
    raw_app_name: str = ""
    title: str = ""
    entrances: tuple[Mapping[str, Any], ...] = ()
    shared_entrances: tuple[Mapping[str, Any], ...] = ()
    #: app-service's id of the operation the state belongs to; it ties the state to the task
    #: that asked for the operation (see market_ledger.domain.task_outcomes), and is not
    #: part of what the installation records
    op_id: str = ""

    @cached_property
    def aggregate_id(self) -> UUID:
        return identity.installation_id(self.user, self.name)


@attrs.frozen
class RemoveInstallation(Command):
    user: str
    name: str
    observed_at: datetime
    origin: str = "status-correction"

    @cached_property
    def aggregate_id(self) -> UUID:
        return identity.installation_id(self.user, self.name)


InstallationCommand = ObserveInstallationState | RemoveInstallation


def evolve(state: InstallationState | None, event: AnyInstallationEvent) -> InstallationState:
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
            entrance_flags=_entrance_flags(event.entrances),
        )
    if isinstance(event, StateRefused):
        # A refusal before anything was observed: an installation of nothing, as if removed.
        base = state or InstallationState(
            id=event.originator_id,
            version=event.originator_version,
            user=event.user,
            name=event.name,
            state="",
            source=event.source,
            observed_at=NEVER,
            fingerprint=(),
            removed=True,
        )
        return attrs.evolve(
            base,
            version=event.originator_version,
            recent_event_ids=_remember(base.recent_event_ids, event.event_id),
            last_refused=event.claim,
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
    assert_never(event)


def decide(
    command: InstallationCommand, state: InstallationState | None, context: DecisionContext
) -> list[AnyInstallationEvent]:
    stamp = Stamper(command.aggregate_id, state.version if state else 0, context.at)
    latest = latest_believable(context.at)
    if isinstance(command, ObserveInstallationState):
        command = _with_known_flags(command, state)
        if state is not None and command.event_id and command.event_id in state.recent_event_ids:
            return []  # the same message again
        if command.observed_at > latest:
            return _refuse(command, state, stamp, context.at)
        if state is not None:
            # A time applied before it was bounded, too far ahead to believe, makes nothing stale.
            if command.observed_at < state.observed_at <= latest:
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
        if command.observed_at > latest:
            raise CommandRejected(
                f"removal of app {command.name!r} of user {command.user!r}: "
                f"{_too_far_ahead(command.observed_at, context.at)}"
            )
        if state is None or state.removed:
            return []
        if command.observed_at < state.observed_at <= latest:
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
    assert_never(command)


def _too_far_ahead(claimed: datetime, received_at: datetime) -> str:
    return (
        f"its time {format_instant(claimed)} is more than {_shown(MAX_CLOCK_AHEAD)} ahead of "
        f"the ledger's clock ({format_instant(received_at)})"
    )


def _shown(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    if hours % 24:
        return f"{hours:g} hours"
    days = hours / 24
    return f"{days:g} day" if days == 1 else f"{days:g} days"


def _refuse(
    command: ObserveInstallationState,
    state: InstallationState | None,
    stamp: Stamper,
    received_at: datetime,
) -> list[AnyInstallationEvent]:
    """Record an observation too far ahead to believe as refused (once per claim)."""
    refused = stamp(
        StateRefused,
        user=command.user,
        name=command.name,
        source=command.source,
        state=command.state,
        op_type=command.op_type,
        app_version=command.version,
        event_id=command.event_id,
        observed_at=command.observed_at,
        origin=command.origin,
        reason=_too_far_ahead(command.observed_at, received_at),
    )
    if state is not None and state.last_refused == refused.claim and not command.event_id:
        # The same claim again, without a message id of its own (status correction repeats
        # it every cycle): still refused, but on record already.
        raise CommandRejected(f"{refused.refusal} (already on record)")
    return [refused]


INSTALLATION: Decider[InstallationState, InstallationCommand, AnyInstallationEvent] = Decider(
    commands=members(InstallationCommand), decide=decide, evolve=evolve
)
