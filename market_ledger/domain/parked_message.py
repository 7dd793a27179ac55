"""ParkedMessage: an inbound message the intake could not take in, kept for an operator.

Nothing the intake receives is dropped without a record: a message that cannot be parsed,
or whose handling keeps failing, is parked with what was received (subject, payload,
headers), what it was meant to be (its kind) and why it failed. An operator lists parked
messages, replays one (it is parsed and handled again, exactly as the intake would), or
discards it. One stream per message, named by a digest of its subject and payload, so the
same message failing again (a redelivery) meets its own record instead of adding another.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from typing import assert_never
from uuid import UUID, uuid5

import attrs

from market_ledger.domain.decider import (
    Command,
    CommandRejected,
    Decider,
    DecisionContext,
    members,
)
from market_ledger.domain.events import LedgerEvent, Stamper
from market_ledger.domain.identity import LEDGER_NAMESPACE
from market_ledger.domain.limits import check_text

#: how the failure came about
MALFORMED = "malformed"  # the message can never become a command
UNPARSABLE = "unparsable"  # parsing it failed unexpectedly
FAILED = "failed"  # handling it kept failing
FAILURES = frozenset({MALFORMED, UNPARSABLE, FAILED})
#: how the stored payload is written: as received (UTF-8 text) or base64 of its bytes
TEXT, BASE64 = "utf-8", "base64"

#: the longest stored payload (characters of text or of base64) and reason
MAX_PAYLOAD = 128 * 1024
MAX_REASON = 4000
MAX_SUBJECT = 4000
MAX_HEADERS = 64


class ParkedStatus:
    PARKED = "parked"
    REPLAYED = "replayed"
    DISCARDED = "discarded"


def message_key(subject: str, payload: bytes) -> str:
    """The id of a parked message: a digest of its subject and its payload as received."""
    return hashlib.sha256(subject.encode() + b"\0" + payload).hexdigest()[:24]


def parked_message_id(key: str) -> UUID:
    return uuid5(LEDGER_NAMESPACE, json.dumps(["parked-message", key]))


# --- commands ------------------------------------------------------------------------------------


@attrs.frozen
class ParkedMessageCommandBase(Command):
    message_id: str

    @cached_property
    def aggregate_id(self) -> UUID:
        return parked_message_id(self.message_id)


@attrs.frozen
class ParkMessage(ParkedMessageCommandBase):
    subject: str
    payload: str
    kind: str
    failure: str
    reason: str
    deliveries: int = 1
    encoding: str = TEXT
    truncated: bool = False
    #: (name, value) pairs, in the order received, secrets left out
    headers: tuple[tuple[str, str], ...] = ()


@attrs.frozen
class RecordReplay(ParkedMessageCommandBase):
    """The message was handled again; saved in the same transaction as what it caused."""

    requested_by: str = "operator"


@attrs.frozen
class RecordReplayFailure(ParkedMessageCommandBase):
    reason: str
    requested_by: str = "operator"


@attrs.frozen
class DiscardParkedMessage(ParkedMessageCommandBase):
    requested_by: str = "operator"


ParkedMessageCommand = ParkMessage | RecordReplay | RecordReplayFailure | DiscardParkedMessage


# --- events --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParkedMessageEvent(LedgerEvent):
    message_id: str


@dataclass(frozen=True)
class MessageParked(ParkedMessageEvent):
    TOPIC = "intake.MessageParked.v1"
    HISTORY_NAME = "message_parked"
    subject: str
    payload: str
    encoding: str
    truncated: bool
    #: a list of [name, value] pairs (never an object: nothing received may look like the
    #: store's own encoding of a typed value)
    headers: list[list[str]]
    kind: str
    failure: str
    reason: str
    deliveries: int


@dataclass(frozen=True)
class ReplayFailed(ParkedMessageEvent):
    TOPIC = "intake.ReplayFailed.v1"
    HISTORY_NAME = "replay_failed"
    reason: str
    requested_by: str


@dataclass(frozen=True)
class MessageReplayed(ParkedMessageEvent):
    TOPIC = "intake.MessageReplayed.v1"
    HISTORY_NAME = "message_replayed"
    requested_by: str


@dataclass(frozen=True)
class MessageDiscarded(ParkedMessageEvent):
    TOPIC = "intake.MessageDiscarded.v1"
    HISTORY_NAME = "message_discarded"
    requested_by: str


AnyParkedMessageEvent = MessageParked | ReplayFailed | MessageReplayed | MessageDiscarded


# --- state ---------------------------------------------------------------------------------------


@attrs.frozen
class ParkedMessageState:
    id: UUID
    version: int
    message_id: str
    status: str
    subject: str
    payload: str
    encoding: str
    truncated: bool
    headers: tuple[tuple[str, str], ...]
    kind: str
    reason: str


def evolve(state: ParkedMessageState | None, event: AnyParkedMessageEvent) -> ParkedMessageState:
    if isinstance(event, MessageParked):
        return ParkedMessageState(
            id=event.originator_id,
            version=event.originator_version,
            message_id=event.message_id,
            status=ParkedStatus.PARKED,
            subject=event.subject,
            payload=event.payload,
            encoding=event.encoding,
            truncated=event.truncated,
            headers=tuple((str(name), str(value)) for name, value in event.headers),
            kind=event.kind,
            reason=event.reason,
        )
    if state is None:
        raise ValueError(f"{type(event).__name__} before the message was parked")
    if isinstance(event, ReplayFailed):
        return attrs.evolve(state, version=event.originator_version, reason=event.reason)
    if isinstance(event, MessageReplayed):
        return attrs.evolve(state, version=event.originator_version, status=ParkedStatus.REPLAYED)
    if isinstance(event, MessageDiscarded):
        return attrs.evolve(state, version=event.originator_version, status=ParkedStatus.DISCARDED)
    assert_never(event)


# --- decisions -----------------------------------------------------------------------------------


def _check_text(field: str, value: str, limit: int) -> None:
    """Refuse text over ``limit`` (what the views cannot hold is refused by the handler)."""
    if len(value) > limit:
        raise CommandRejected(f"parked message: {field} longer than {limit} characters")
    check_text(field, value)


def _validate(command: ParkMessage) -> None:
    key = command.message_id
    if not key or len(key) > 64 or any(ch not in "0123456789abcdef" for ch in key):
        raise CommandRejected(f"invalid parked message id {key!r}")
    if not command.subject:
        raise CommandRejected("parked message: subject is empty")
    if not command.reason:
        raise CommandRejected("parked message: reason is empty")
    if command.failure not in FAILURES:
        raise CommandRejected(f"parked message: unknown failure {command.failure!r}")
    if command.encoding not in (TEXT, BASE64):
        raise CommandRejected(f"parked message: unknown encoding {command.encoding!r}")
    if not 0 <= command.deliveries < 2**31:
        raise CommandRejected(f"parked message: delivery count {command.deliveries} out of range")
    if len(command.headers) > MAX_HEADERS:
        raise CommandRejected(f"parked message: more than {MAX_HEADERS} headers")
    _check_text("subject", command.subject, MAX_SUBJECT)
    _check_text("payload", command.payload, MAX_PAYLOAD)
    _check_text("reason", command.reason, MAX_REASON)
    _check_text("kind", command.kind, 16)
    for name, value in command.headers:
        _check_text("header name", name, 256)
        _check_text(f"header {name}", value, 4096)


def decide(
    command: ParkedMessageCommand, state: ParkedMessageState | None, context: DecisionContext
) -> list[AnyParkedMessageEvent]:
    stamp = Stamper(command.aggregate_id, state.version if state else 0, context.at)
    if isinstance(command, ParkMessage):
        _validate(command)
        if state is not None and state.status == ParkedStatus.PARKED:
            return []  # parked already (a redelivery of the same message): one record
        return [
            stamp(
                MessageParked,
                message_id=command.message_id,
                subject=command.subject,
                payload=command.payload,
                encoding=command.encoding,
                truncated=command.truncated,
                headers=[[name, value] for name, value in command.headers],
                kind=command.kind,
                failure=command.failure,
                reason=command.reason,
                deliveries=command.deliveries,
            )
        ]
    if state is None:
        raise CommandRejected(f"no parked message {command.message_id!r}")
    if state.status != ParkedStatus.PARKED:
        raise CommandRejected(f"message {command.message_id} is not parked: {state.status}")
    if isinstance(command, RecordReplay):
        return [
            stamp(MessageReplayed, message_id=state.message_id, requested_by=command.requested_by)
        ]
    if isinstance(command, RecordReplayFailure):
        reason = command.reason[:MAX_REASON]
        _check_text("reason", reason, MAX_REASON)
        return [
            stamp(
                ReplayFailed,
                message_id=state.message_id,
                reason=reason,
                requested_by=command.requested_by,
            )
        ]
    if isinstance(command, DiscardParkedMessage):
        return [
            stamp(MessageDiscarded, message_id=state.message_id, requested_by=command.requested_by)
        ]
    assert_never(command)


PARKED_MESSAGE: Decider[ParkedMessageState, ParkedMessageCommand, AnyParkedMessageEvent] = Decider(
    commands=members(ParkedMessageCommand), decide=decide, evolve=evolve
)
