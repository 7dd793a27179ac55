"""Parked messages: what the intake keeps of a message it could not take in, and the
operator's use cases on them (list, replay, discard), shared by the CLI and the HTTP API.

A parked message keeps its subject, its payload (as text when it is UTF-8 without NUL,
else as base64; the first ``MAX_PAYLOAD_BYTES`` only, flagged ``truncated``), its headers
and the reason. Nothing secret is kept: headers whose names say they carry credentials
are left out, and in a JSON payload the values of such keys and the credentials in URLs
are replaced by ``[redacted]`` (the parser reads none of them, so a replay is unchanged).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

import orjson

from market_ledger.adapters.nats.handling import (
    KINDS,
    Applied,
    IntakeLedger,
    Parser,
    apply_commands,
    parse_message,
)
from market_ledger.adapters.nats.messages import MalformedMessage
from market_ledger.domain import parked_message as pm
from market_ledger.domain.decider import CommandRejected
from market_ledger.projections.parked_messages import parked_messages

#: the most of a payload kept (a NATS payload is at most 1 MiB by default)
MAX_PAYLOAD_BYTES = 64 * 1024
REDACTED = "[redacted]"
_SECRET_NAME = re.compile(
    r"(^|[-_.])(auth|authorization|token|access[-_]?token|password|passwd|secret|"
    r"cookie|set-cookie|api[-_]?key|credentials?|signature|jwt|session)$",
    re.IGNORECASE,
)
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


def is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name.strip()))


def redact_text(text: str) -> str:
    """Credentials in URLs (``scheme://user:secret@host``) replaced."""
    return _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{REDACTED}@", text)


def _redacted(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: REDACTED if is_secret_name(str(key)) else _redacted(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_redacted(item) for item in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def redact_payload(data: bytes) -> bytes:
    """The payload without secrets: JSON re-encoded when something had to be replaced."""
    try:
        decoded = orjson.loads(data)
    except orjson.JSONDecodeError:
        text = data.decode("utf-8", errors="surrogateescape")
        cleaned = redact_text(text)
        return data if cleaned == text else cleaned.encode("utf-8", errors="surrogateescape")
    cleaned_value = _redacted(decoded)
    return data if cleaned_value == decoded else orjson.dumps(cleaned_value)


def clean_reason(reason: str) -> str:
    """A reason the views can hold, without credentials."""
    text = redact_text(reason).replace("\x00", "\\x00")
    text = text.encode("utf-8", errors="backslashreplace").decode("utf-8")
    return text[: pm.MAX_REASON] or "unknown"


def park_command(
    *,
    kind: str,
    subject: str,
    data: bytes,
    headers: Mapping[str, str] | None,
    failure: str,
    reason: str,
    deliveries: int = 1,
) -> pm.ParkMessage:
    """The record of a message as received (secrets left out), ready to be handled."""
    key = pm.message_key(subject, data)
    kept = redact_payload(data)
    truncated = len(kept) > MAX_PAYLOAD_BYTES
    kept = kept[:MAX_PAYLOAD_BYTES]
    try:
        payload, encoding = kept.decode("utf-8"), pm.TEXT
        if "\x00" in payload:
            raise ValueError("NUL")
    except ValueError:  # not text the views can hold as is
        payload, encoding = base64.b64encode(kept).decode("ascii"), pm.BASE64
    kept_headers = tuple(
        (name, value.replace("\x00", "\\x00")[:4096])
        for name, value in (headers or {}).items()
        if not is_secret_name(name) and "\x00" not in name
    )[: pm.MAX_HEADERS]
    return pm.ParkMessage(
        key,
        subject=subject,
        payload=payload,
        kind=kind,
        failure=failure,
        reason=clean_reason(reason),
        deliveries=max(0, min(deliveries, 2**31 - 1)),
        encoding=encoding,
        truncated=truncated,
        headers=tuple((n, redact_text(v)) for n, v in kept_headers),
    )


def failure_reason(error: BaseException) -> str:
    return str(error) if isinstance(error, MalformedMessage) else f"{type(error).__name__}: {error}"


# --- the operator's use cases --------------------------------------------------------------------


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
    requested_by: str = "operator",
    parse: Parser = parse_message,
) -> dict[str, Any]:
    """Parse the parked message again and handle it exactly as the intake would.

    Taken in (or refused by the domain, or changing nothing: what the intake would settle
    on too), it is marked replayed in the same transaction as what it caused. Failing
    again, it stays parked with the new reason and :class:`ReplayFailed` is raised.
    Unknown: :class:`UnknownParkedMessage`; not parked any more: ``CommandRejected``.
    """
    state = _parked_state(ledger, message_id)
    record = pm.RecordReplay(message_id, requested_by=requested_by)
    try:
        if state.truncated:
            raise ValueError("the payload was too large and only its start was kept")
        if state.kind not in KINDS:
            raise ValueError(f"unknown kind {state.kind!r}")
        command = parse(state.kind, _payload(state), state.subject, dict(state.headers))
        applied = apply_commands(ledger, [command] if command else [], also=[record])
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
    return {"id": message_id, "status": pm.ParkedStatus.REPLAYED, **_outcome(command, applied)}


def _outcome(command: Any, applied: Applied) -> dict[str, Any]:
    if command is None:
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
