"""Inbound NATS messages as commands: app-state messages and user events.

Parsing is pure (bytes in, a command out); a message that cannot be used raises
:class:`MalformedMessage` naming the field. The one lookup, :func:`with_resolved_sources`,
reads the views, because app-state messages do not say which market source an app came from.

App-state (``os.application.<owner>``, reference D §2.2) -> ``ObserveInstallationState``:

============================  ==========================================================
message field                 command field
============================  ==========================================================
``user`` (required; else the  ``user``
last token of the subject)
``name`` (required)           ``name``
``state`` (required)          ``state``
``createTime`` (required,     ``observed_at`` (any number of fraction digits, ``Z`` or an
RFC 3339)                     offset; a time outside years 1 to 9999 in UTC is malformed)
``eventID`` (else the         ``event_id`` (the domain ignores an id it has seen)
``Nats-Msg-Id`` header)
``opType``, ``progress``,     ``op_type``, ``progress`` (a number becomes its text),
``rawAppName``, ``title``     ``raw_app_name``, ``title``
``entranceStatuses``,         ``entrances``, ``shared_entrances`` (objects kept as sent)
``sharedEntrances``
============================  ==========================================================

``opID``, ``type``, ``reason`` and ``message`` are not used. ``origin`` is ``"app-state"``.

Names and lengths are the domain's to judge (market_ledger.domain.limits): a user or app name the
views
cannot hold, or a time too far ahead of the clock, is refused by the command handler and
reported as a rejection, like any other refusal.

User events (``NATS_SUBJECT_SYSTEM_USER_STATE``), two shapes:

* ``{"event_type", "username", "timestamp"}`` (reference D §3): ``user_created`` ->
  ``RegisterUser(username)``, ``user_deleted`` -> ``RemoveUser(username)``;
* ``{"topic", "payload": {"user", ...}}`` (what app-service publishes on ``os.users``):
  ``Create`` -> ``RegisterUser``, ``Delete`` -> ``RemoveUser``.

Any other event type or topic (the reference's simulated ``app_install`` and the like, or
payment sign notifications on ``os.users``) changes nothing: :func:`parse_user_event` returns
None. Event types and topics are compared without regard to case.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import orjson
from sqlalchemy.engine import Connection

from market_ledger.domain.canonical import InvalidInstant, parse_instant
from market_ledger.domain.decider import Command
from market_ledger.domain.installation import ObserveInstallationState
from market_ledger.domain.user import RegisterUser, RemoveUser
from market_ledger.projections.queries import installed_app_sources, known_entrance_flags
from market_ledger.projections.schema import ViewTables

APP_STATE_ORIGIN = "app-state"
MSG_ID_HEADER = "Nats-Msg-Id"

USER_EVENT_TYPES: dict[str, type[RegisterUser] | type[RemoveUser]] = {
    "user_created": RegisterUser,
    "user_deleted": RemoveUser,
}
USER_TOPICS: dict[str, type[RegisterUser] | type[RemoveUser]] = {
    "create": RegisterUser,
    "delete": RemoveUser,
}

UserCommand = RegisterUser | RemoveUser


class MalformedMessage(ValueError):
    """A message that can never become a command; ``field`` names what is wrong."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


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
        progress=_number_text(payload, "progress"),
        event_id=event_id,
        origin=APP_STATE_ORIGIN,
        raw_app_name=_text(payload, "rawAppName"),
        title=_text(payload, "title"),
        entrances=_objects(payload, "entranceStatuses"),
        shared_entrances=_objects(payload, "sharedEntrances"),
    )


def parse_user_event(data: bytes) -> UserCommand | None:
    """A user event as RegisterUser / RemoveUser; None for an event that changes nothing."""
    payload = _decode(data)
    if "event_type" in payload:
        event_type = _text(payload, "event_type", required=True).strip().lower()
        command = USER_EVENT_TYPES.get(event_type)
        if command is None:
            return None
        return command(_text(payload, "username", required=True).strip())
    if "topic" in payload:
        topic = _text(payload, "topic", required=True).strip().lower()
        command = USER_TOPICS.get(topic)
        if command is None:
            return None
        body = payload.get("payload")
        if not isinstance(body, dict):
            raise MalformedMessage("payload", f"expected an object, got {_kind(body)}")
        return command(_text(body, "user", required=True).strip())
    raise MalformedMessage("event_type", "missing (and no 'topic' either)")


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


def with_known_invisibility(
    conn: Connection, tables: ViewTables, commands: Sequence[Command]
) -> list[Command]:
    """The commands, each entrance a message sent without ``invisible`` given the flag the
    installation already has for that entrance (status correction reads it from
    app-service); an entrance never seen before keeps none, which reads as visible.
    """
    wanted = {
        (command.user, command.name)
        for command in commands
        if isinstance(command, ObserveInstallationState)
        and any("invisible" not in entrance for entrance in command.entrances)
    }
    if not wanted:
        return list(commands)
    known = known_entrance_flags(conn, tables, wanted)
    completed: list[Command] = []
    for command in commands:
        if isinstance(command, ObserveInstallationState):
            flags = known.get((command.user, command.name), {})
            entrances = tuple(
                entrance
                if "invisible" in entrance or str(entrance.get("name")) not in flags
                else {**entrance, "invisible": flags[str(entrance.get("name"))]}
                for entrance in command.entrances
            )
            if entrances != command.entrances:
                command = attrs.evolve(command, entrances=entrances)
        completed.append(command)
    return completed
