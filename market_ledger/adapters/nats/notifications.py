"""The notifier's notices as NATS messages on ``<NATS_SUBJECT_SYSTEM_MARKET_STATE>.<user>``.

The wire format the market's clients read:

* ``app_state_change``: ``{"app_state_latest", "app_info_latest" (the full entry, or null),
  "timestamp", "user", "app_name", "notify_type": "app_state_change", "source"}``;
* ``market_system_point`` / ``new_app_ready``: ``{"timestamp", "user", "notify_type",
  "point": "new_app_ready", "extensions": {"app_name", "app_version", "source"},
  "extensions_obj": {"app_info": <the rendered entry>}}``;
* ``market_hash_changed``: ``{"notify_type", "user", "hash", "timestamp"}``;
* ``market_system_point`` / the task points: ``{"timestamp", "user", "notify_type", "point",
  "extensions": {"task_type", "app_name", "version"?, "source"?, "task_id", ...}}`` with
  ``point`` ``task_execute``; ``task_finished_succeed|failed|canceled`` (and ``task_status``:
  ``succeed|failed|canceled`` in the extensions); or ``task_outcome`` (and ``outcome``, and
  ``error`` when the task has one). ``version`` and ``source`` are there only when the task
  has them (a cancel and an uninstall have neither).

Each message carries a ``Nats-Msg-Id`` header that names the change it announces, the same
every time that change is announced (see :func:`message_id`): after a crash or a failover a
notice may be published again, and a subscriber that remembers the ids it has seen drops the
repeat.

``timestamp`` is in unix seconds: the moment the ledger decided the event (the hash notice:
when it is sent). The entries and states inside are the market API's own shapes
(``market_ledger.projections.market_shapes``). Each message has a compact form, sent when
the full one exceeds the server's payload limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, assert_never

import attrs

from market_ledger.adapters.nats.publisher import NatsPublisher, Notification
from market_ledger.service.notifier import AppStateChanged, HashChanged, NewAppReady, Notice
from market_ledger.service.task_notices import (
    TaskExecuting,
    TaskFinished,
    TaskNotice,
    TaskOutcome,
)

APP_STATE_CHANGE = "app_state_change"
MARKET_SYSTEM_POINT = "market_system_point"
NEW_APP_READY = "new_app_ready"
HASH_CHANGED = "market_hash_changed"
TASK_EXECUTE = "task_execute"
TASK_FINISHED = "task_finished_"
TASK_OUTCOME = "task_outcome"


def unix_seconds(moment: datetime) -> int:
    return int(moment.timestamp())


def _instant(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%S.%fZ")


def message_id(notice: Notice) -> str:
    """A stable id for the change ``notice`` announces: made of what the change is (the
    event's user, app and time, the task and its point, the hash), never of when it is sent."""
    if isinstance(notice, AppStateChanged):
        return f"state:{notice.user}:{notice.source}:{notice.app_name}:{_instant(notice.at)}"
    if isinstance(notice, NewAppReady):
        return (
            f"ready:{notice.user}:{notice.source}:{notice.app_name}:{notice.app_version}:"
            f"{_instant(notice.at)}"
        )
    if isinstance(notice, HashChanged):
        return f"hash:{notice.user}:{notice.hash}"
    if isinstance(notice, TaskExecuting):
        return f"task:{notice.task.task_id}:{TASK_EXECUTE}"
    if isinstance(notice, TaskFinished):
        return f"task:{notice.task.task_id}:{TASK_FINISHED}{notice.status}"
    if isinstance(notice, TaskOutcome):
        return f"task:{notice.task.task_id}:{TASK_OUTCOME}"
    assert_never(notice)


def notification_of(notice: Notice) -> Notification:
    """A notice as the message (and its compact form) the market's clients read."""
    return attrs.evolve(_notification_of(notice), message_id=message_id(notice))


def _notification_of(notice: Notice) -> Notification:
    if isinstance(notice, AppStateChanged):
        payload: dict[str, Any] = {
            "app_state_latest": dict(notice.state),
            "app_info_latest": None if notice.app_info is None else dict(notice.app_info),
            "timestamp": unix_seconds(notice.at),
            "user": notice.user,
            "app_name": notice.app_name,
            "notify_type": APP_STATE_CHANGE,
            "source": notice.source,
        }
        compact = {**payload, "app_info_latest": None} if notice.app_info else None
        return Notification(notice.user, APP_STATE_CHANGE, payload, compact)
    if isinstance(notice, NewAppReady):
        payload = {
            "timestamp": unix_seconds(notice.at),
            "user": notice.user,
            "notify_type": MARKET_SYSTEM_POINT,
            "point": NEW_APP_READY,
            "extensions": {
                "app_name": notice.app_name,
                "app_version": notice.app_version,
                "source": notice.source,
            },
            "extensions_obj": {"app_info": dict(notice.app_info)},
        }
        compact = {k: v for k, v in payload.items() if k != "extensions_obj"}
        return Notification(notice.user, MARKET_SYSTEM_POINT, payload, compact)
    if isinstance(notice, HashChanged):
        payload = {
            "notify_type": HASH_CHANGED,
            "user": notice.user,
            "hash": notice.hash,
            "timestamp": unix_seconds(notice.at),
        }
        return Notification(notice.user, HASH_CHANGED, payload)
    if isinstance(notice, TaskExecuting | TaskFinished | TaskOutcome):
        return task_point(notice)
    assert_never(notice)


def task_point(notice: TaskNotice) -> Notification:
    """A task notice as its ``market_system_point`` (compact: without the error text)."""
    task = notice.task
    extensions: dict[str, Any] = {"task_type": task.kind, "app_name": task.app_name}
    if task.version:
        extensions["version"] = task.version
    if task.source:
        extensions["source"] = task.source
    extensions["task_id"] = task.task_id
    if isinstance(notice, TaskExecuting):
        point = TASK_EXECUTE
    elif isinstance(notice, TaskFinished):
        point = TASK_FINISHED + notice.status
        extensions["task_status"] = notice.status
    else:
        point = TASK_OUTCOME
        extensions["outcome"] = notice.outcome
        if task.error:
            extensions["error"] = task.error
    payload = {
        "timestamp": unix_seconds(notice.at),
        "user": task.user,
        "notify_type": MARKET_SYSTEM_POINT,
        "point": point,
        "extensions": extensions,
    }
    compact = None
    if "error" in extensions:
        compact = {**payload, "extensions": {k: v for k, v in extensions.items() if k != "error"}}
    return Notification(task.user, MARKET_SYSTEM_POINT, payload, compact)


class NatsNotices:
    """The notifier's publisher over NATS: notices formatted, then published and flushed."""

    def __init__(self, publisher: NatsPublisher) -> None:
        self.publisher = publisher

    async def publish(self, notices: Sequence[Notice]) -> None:
        await self.publisher.publish([notification_of(notice) for notice in notices])
