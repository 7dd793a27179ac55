"""The wire formats of inbound NATS messages: app-state messages and user events.

Parsing is pure (bytes in, a typed value out); a message that cannot be used raises
:class:`MalformedMessage` naming the field. What the values mean (which command each
becomes, the market source an app state does not name) is the service's:
:mod:`market_ledger.service.intake`.

The fields each message carries and what becomes of them are in docs/protocols.md#nats.
Names and lengths are the domain's to judge (:mod:`market_ledger.domain.limits`): a user or
app name the views cannot hold, or a time too far ahead of the clock, is refused by the
command handler and reported as a rejection, like any other refusal. A user event of any
other type or topic (simulated ``app_install`` events, payment notices on ``os.users``)
changes nothing: :func:`parse_user_event` returns None.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from market_ledger.domain.canonical import InvalidInstant, parse_instant
from market_ledger.domain.installation import ObserveInstallationState
from market_ledger.service.intake import APP_STATE, MalformedMessage, Message, UserChange

__all__ = ["MalformedMessage", "parse_app_state", "parse_message", "parse_user_event"]

APP_STATE_ORIGIN = "app-state"
MSG_ID_HEADER = "Nats-Msg-Id"

#: user event type or topic -> whether it says the user was created (else deleted)
USER_EVENT_TYPES = {"user_created": True, "user_deleted": False}
USER_TOPICS = {"create": True, "delete": False}


def _decode(data: bytes) -> dict[str, Any]:
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise MalformedMessage("payload", f"not JSON ({error})") from None
    if not isinstance(payload, dict):
        raise MalformedMessage("payload", f"expected a JSON object, got {_kind(payload)}")
    return payload


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "a number"
    )


def _text(payload: Mapping[str, Any], field: str, *, required: bool = False) -> str:
    value = payload.get(field)
    if value is None:
        value = ""
    if isinstance(value, bool) or not isinstance(value, str):
        raise MalformedMessage(field, f"expected a string, got {_kind(value)}")
    if required and not value.strip():
        raise MalformedMessage(field, "missing or empty")
    return value


def _number_text(payload: Mapping[str, Any], field: str) -> str:
    """``progress`` is a numeric string; a bare number is accepted and kept as text."""
    value = payload.get(field)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return _text(payload, field)


def _objects(payload: Mapping[str, Any], field: str) -> tuple[dict[str, Any], ...]:
    value = payload.get(field)
    if value is None:
        return ()
    if not isinstance(value, list):
        raise MalformedMessage(field, f"expected a list, got {_kind(value)}")
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise MalformedMessage(f"{field}[{index}]", f"expected an object, got {_kind(item)}")
    return tuple(value)


def _subject_owner(subject: str) -> str:
    """``os.application.alice`` -> ``alice`` (app-service publishes to its owner's subject)."""
    tokens = subject.split(".")
    return tokens[-1] if len(tokens) > 1 and tokens[-1] not in ("*", ">") else ""


def parse_app_state(
    data: bytes, *, subject: str = "", headers: Mapping[str, str] | None = None
) -> ObserveInstallationState:
    """An app-state message as the observation it reports (source not yet resolved)."""
    payload = _decode(data)
    user = _text(payload, "user").strip() or _subject_owner(subject)
    if not user:
        raise MalformedMessage("user", "missing or empty")
    created = _text(payload, "createTime", required=True)
    try:
        observed_at = parse_instant(created)
    except InvalidInstant as error:
        raise MalformedMessage(
            "createTime", f"not an RFC 3339 time: {created!r} ({error.reason})"
        ) from None
    event_id = _text(payload, "eventID") or (headers or {}).get(MSG_ID_HEADER, "")
    return ObserveInstallationState(
        user=user,
        name=_text(payload, "name", required=True).strip(),
        state=_text(payload, "state", required=True).strip(),
        observed_at=observed_at,
        op_type=_text(payload, "opType"),
        op_id=_text(payload, "opID"),
        progress=_number_text(payload, "progress"),
        event_id=event_id,
        origin=APP_STATE_ORIGIN,
        raw_app_name=_text(payload, "rawAppName"),
        title=_text(payload, "title"),
        entrances=_objects(payload, "entranceStatuses"),
        shared_entrances=_objects(payload, "sharedEntrances"),
    )


def parse_user_event(data: bytes) -> UserChange | None:
    """A user event as the change it reports; None for an event that changes nothing."""
    payload = _decode(data)
    if "event_type" in payload:
        event_type = _text(payload, "event_type", required=True).strip().lower()
        created = USER_EVENT_TYPES.get(event_type)
        if created is None:
            return None
        return UserChange(_text(payload, "username", required=True).strip(), created)
    if "topic" in payload:
        topic = _text(payload, "topic", required=True).strip().lower()
        created = USER_TOPICS.get(topic)
        if created is None:
            return None
        body = payload.get("payload")
        if not isinstance(body, dict):
            raise MalformedMessage("payload", f"expected an object, got {_kind(body)}")
        return UserChange(_text(body, "user", required=True).strip(), created)
    raise MalformedMessage("event_type", "missing (and no 'topic' either)")


def parse_message(
    kind: str, data: bytes, subject: str, headers: Mapping[str, str] | None
) -> Message | None:
    """A message of either kind (see :data:`market_ledger.service.intake.Parser`)."""
    if kind == APP_STATE:
        return parse_app_state(data, subject=subject, headers=headers)
    return parse_user_event(data)
