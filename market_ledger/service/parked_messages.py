"""The operator's use cases on parked messages (list, replay, discard), shared by the CLI and
the HTTP API.

A replay reads the stored message with the transport's parser (given by the caller) and
handles it exactly as the intake would (:func:`market_ledger.service.intake.apply_commands`).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from market_ledger.domain import parked_message as pm
from market_ledger.domain.decider import CommandRejected
from market_ledger.projections.parked_messages import parked_messages
from market_ledger.service.intake import (
    KINDS,
    Applied,
    IntakeLedger,
    Message,
    Parser,
    apply_commands,
    command_for,
    failure_reason,
)

REDACTED = "[redacted]"
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s?#]*@")


class UnknownParkedMessage(LookupError):
    def __init__(self, message_id: str) -> None:
        super().__init__(f"no parked message {message_id!r}")
        self.message_id = message_id


class ReplayFailed(RuntimeError):
    """The replayed message failed again; it stays parked, with ``reason``."""

    def __init__(self, message_id: str, reason: str) -> None:
        super().__init__(f"message {message_id} failed again and stays parked: {reason}")
        self.message_id = message_id
        self.reason = reason


def redact_text(text: str) -> str:
    """Credentials in URLs (``scheme://user:secret@host``) replaced."""
    return _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{REDACTED}@", text)


def clean_reason(reason: str) -> str:
    """A reason the views can hold, without credentials."""
    text = redact_text(reason).replace("\x00", "\\x00")
    text = text.encode("utf-8", errors="backslashreplace").decode("utf-8")
    return text[: pm.MAX_REASON] or "unknown"


def list_parked(ledger: IntakeLedger, *, include_resolved: bool = False) -> list[dict[str, Any]]:
    with ledger.read() as conn:
        return parked_messages(conn, ledger.tables, include_resolved=include_resolved)


def _parked_state(ledger: IntakeLedger, message_id: str) -> pm.ParkedMessageState:
    state = ledger.handler.state_of(pm.RecordReplay(message_id))
    if state is None:
        raise UnknownParkedMessage(message_id)
    assert isinstance(state, pm.ParkedMessageState)
    if state.status != pm.ParkedStatus.PARKED:
        raise CommandRejected(f"message {message_id} is not parked: {state.status}")
    return state


def _payload(state: pm.ParkedMessageState) -> bytes:
    if state.encoding == pm.BASE64:
        try:
            return base64.b64decode(state.payload, validate=True)
        except binascii.Error as error:
            raise ValueError(f"stored payload is not base64 ({error})") from None
    return state.payload.encode("utf-8")


def replay(
    ledger: IntakeLedger,
    message_id: str,
    *,
    parse: Parser,
    requested_by: str = "operator",
) -> dict[str, Any]:
    """Parse the parked message again and handle it exactly as the intake would.

    Taken in (or refused by the domain, or changing nothing: what the intake would settle
    on too), it is marked replayed in the same transaction as what it caused. Failing
    again, it stays parked with the new reason and :class:`ReplayFailed` is raised.
    Unknown: :class:`UnknownParkedMessage`; not parked any more: ``CommandRejected``.
    """
    state = _parked_state(ledger, message_id)
    record = pm.RecordReplay(message_id, requested_by=requested_by)
    message: Message | None = None
    try:
        if state.truncated:
            raise ValueError("the payload was too large and only its start was kept")
        if state.kind not in KINDS:
            raise ValueError(f"unknown kind {state.kind!r}")
        message = parse(state.kind, _payload(state), state.subject, dict(state.headers))
        commands = [command_for(message)] if message is not None else []
        applied = apply_commands(ledger, commands, also=[record])
    except Exception as error:
        reason = clean_reason(f"replay: {failure_reason(error)}")
        try:
            ledger.handler.handle(
                pm.RecordReplayFailure(message_id, reason, requested_by=requested_by)
            )
        except Exception as again:
            reason += f" (the new reason could not be recorded: {type(again).__name__})"
        raise ReplayFailed(message_id, reason) from error
    if applied.also_rejected:  # replayed or discarded meanwhile, by someone else
        raise CommandRejected(applied.also_rejected[0])
    return {"id": message_id, "status": pm.ParkedStatus.REPLAYED, **_outcome(message, applied)}


def _outcome(message: Message | None, applied: Applied) -> dict[str, Any]:
    if message is None:
        return {"outcome": "ignored", "detail": "the message changes nothing"}
    if 0 in applied.rejected:
        return {"outcome": "rejected", "detail": applied.rejected[0]}
    if 0 in applied.unknown_users:
        return {"outcome": "unknown_user", "detail": "recorded for a user not registered yet"}
    return {"outcome": "accepted", "detail": f"{applied.events - 1} event(s) written"}


def discard(
    ledger: IntakeLedger, message_id: str, *, requested_by: str = "operator"
) -> dict[str, Any]:
    """Give up on a parked message, on the record."""
    _parked_state(ledger, message_id)
    command = pm.DiscardParkedMessage(message_id, requested_by=requested_by)
    ledger.handler.handle(command).raise_if_rejected()
    return {"id": message_id, "status": pm.ParkedStatus.DISCARDED}
