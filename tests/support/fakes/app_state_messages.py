"""The app-state messages the fake app-service publishes, as app-service builds them.

A message is the JSON object of docs/protocols.md#nats: ``eventID`` is
``{owner}-{name}-{unixMilli}`` and ``createTime`` is RFC 3339 in UTC with the fraction's
trailing zeros trimmed (how Go writes a time). The times of one app's messages strictly
increase, each at least a millisecond after the one before, so that every message gets a
fresh event id even on a clock that does not move.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

Clock = Callable[[], datetime]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MILLISECOND = timedelta(milliseconds=1)
#: how far before an app's last message a stale one is dated
STALE_BY = timedelta(hours=1)

#: the progress text each state carries ("" when nothing is being downloaded)
PROGRESS = {"downloading": "50.00", "downloadFailed": "50.00", "installing": "100.00"}


def system_clock() -> datetime:
    return datetime.now(UTC)


def create_time(at: datetime) -> str:
    """``at`` as app-service writes ``createTime``: UTC, trailing fraction zeros trimmed."""
    at = at.astimezone(UTC)
    fraction = f".{at.microsecond:06d}".rstrip("0") if at.microsecond else ""
    return at.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


def status_time(at: datetime) -> str:
    """``at`` as all/apps writes a status time: whole seconds, never after the message."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def event_id(user: str, name: str, at: datetime) -> str:
    return f"{user}-{name}-{(at - EPOCH) // MILLISECOND}"


class Instants:
    """The time of each app's next message: the clock's, unless that is not a millisecond
    after the app's last one."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[tuple[str, str], datetime] = {}

    def next(self, user: str, name: str) -> datetime:
        with self._lock:
            now = self._clock()
            last = self._last.get((user, name))
            at = now if last is None or now >= last + MILLISECOND else last + MILLISECOND
            self._last[(user, name)] = at
            return at

    def stale(self, user: str, name: str) -> datetime:
        """A time well before the app's last message (and the clock's now, if none yet)."""
        with self._lock:
            return self._last.get((user, name), self._clock()) - STALE_BY


@attrs.frozen
class AppState:
    """One message's content, apart from its id and time."""

    user: str
    name: str
    state: str
    op_type: str
    op_id: str
    raw_app_name: str = ""
    title: str = ""
    entrance_statuses: tuple[dict[str, Any], ...] = ()
    shared_entrances: tuple[dict[str, Any], ...] = ()


def app_state_message(content: AppState, at: datetime) -> dict[str, Any]:
    """The message app-service publishes on ``<prefix>.<user>``."""
    message: dict[str, Any] = {
        "eventID": event_id(content.user, content.name, at),
        "createTime": create_time(at),
        "name": content.name,
        "rawAppName": content.raw_app_name or content.name,
        "title": content.title or content.name.title(),
        "type": "app",
        "opID": content.op_id,
        "opType": content.op_type,
        "state": content.state,
        "user": content.user,
        "progress": PROGRESS.get(content.state, ""),
    }
    if content.entrance_statuses:
        message["entranceStatuses"] = [dict(e) for e in content.entrance_statuses]
    if content.shared_entrances:
        message["sharedEntrances"] = [dict(e) for e in content.shared_entrances]
    return message


def entrance_statuses(record: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    """An all/apps record's entrances as a message carries them."""
    spec = {e["name"]: e for e in record["spec"].get("entrances", [])}
    statuses = []
    for status in record["status"].get("entranceStatuses", []):
        entrance = spec.get(status["name"], {})
        url = entrance.get("url", "")
        statuses.append(
            {
                "id": url.split(".", 1)[0],
                "name": status["name"],
                "state": status["state"],
                "statusTime": status["statusTime"],
                "reason": status["reason"],
                "url": url,
                "invisible": bool(entrance.get("invisible", False)),
            }
        )
    return tuple(statuses)
