"""Parked messages: what the intake keeps of a message it could not take in. The operator's
use cases on them live in :mod:`market_ledger.service.parked_messages`; they are bound here
to the NATS wire formats, for the CLI and the HTTP API.

A parked message keeps its subject, its payload (as text when it is UTF-8 without NUL,
else as base64; the first ``MAX_PAYLOAD_BYTES`` only, flagged ``truncated``), its headers
and the reason. Nothing secret is kept: headers whose names say they carry credentials
are left out, and in a JSON payload the values of such keys and the credentials in URLs
are replaced by ``[redacted]`` (the parser reads none of them, so a replay is unchanged).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any

import orjson

from market_ledger.adapters.nats.messages import parse_message
from market_ledger.domain import parked_message as pm
from market_ledger.service import parked_messages as use_cases
from market_ledger.service.intake import IntakeLedger, Parser, failure_reason
from market_ledger.service.parked_messages import (
    REDACTED,
    ReplayFailed,
    UnknownParkedMessage,
    clean_reason,
    list_parked,
    redact_text,
)

__all__ = [
    "REDACTED",
    "ReplayFailed",
    "UnknownParkedMessage",
    "discard",
    "failure_reason",
    "list_parked",
    "park_command",
    "redact_payload",
    "replay",
]

#: the most of a payload kept (a NATS payload is at most 1 MiB by default)
MAX_PAYLOAD_BYTES = 64 * 1024
_SECRET_NAME = re.compile(
    r"(^|[-_.])(auth|authorization|token|access[-_]?token|password|passwd|secret|"
    r"cookie|set-cookie|api[-_]?key|credentials?|signature|jwt|session)$",
    re.IGNORECASE,
)


def is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name.strip()))


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


# --- the operator's use cases, with this transport's parser -------------------------------------


def replay(
    ledger: IntakeLedger,
    message_id: str,
    *,
    requested_by: str = "operator",
    parse: Parser = parse_message,
) -> dict[str, Any]:
    """Replay a parked message (:func:`market_ledger.service.parked_messages.replay`), read
    with the NATS wire formats."""
    return use_cases.replay(ledger, message_id, parse=parse, requested_by=requested_by)


def discard(
    ledger: IntakeLedger, message_id: str, *, requested_by: str = "operator"
) -> dict[str, Any]:
    return use_cases.discard(ledger, message_id, requested_by=requested_by)
