"""The open tasks, in memory: which task is open for an app, and which accepted task an
app-state message is about.

Filled from the task views when the service starts and kept current from the events the
service itself commits, so a state that arrives a moment after its task was accepted finds
it even before the views show the acceptance. The task aggregate still decides every step:
this index only says which task a message may be about.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import attrs

from market_ledger.domain import task_events as te
from market_ledger.projections.task_rows import request_of

#: how many closed task ids the index remembers
REMEMBERED_CLOSED = 10_000


@attrs.frozen
class OpenTask:
    task_id: str
    kind: str
    user: str
    app_name: str
    state: str
    op_id: str = ""
    accepted_at: datetime | None = None
    created_at: datetime | None = None
    #: the instance holding the task's token while it is queued ("" when not recorded)
    instance: str = ""

    @property
    def accepted(self) -> bool:
        return self.state == te.TaskStatus.ACCEPTED


class OpenTasks:
    """Open tasks by id, thread-safe (the intake and the dispatcher run in threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tasks: dict[str, OpenTask] = {}
        #: tasks seen closing here, newest last: views that lag behind do not reopen them
        self._closed: dict[str, None] = {}
        self.loaded = False

    def load(self, tasks: Iterable[OpenTask]) -> None:
        with self._lock:
            for found in tasks:
                self._tasks.setdefault(found.task_id, found)
            self.loaded = True

    def refresh(self, tasks: Iterable[OpenTask], instance: str) -> None:
        """Take the views' open tasks of the other instances as they are now (theirs are
        followed only through the views); this instance's own stay as its events left them,
        which the views may not show yet."""
        found = {t.task_id: t for t in tasks}
        with self._lock:
            mine = {k: t for k, t in self._tasks.items() if t.instance == instance}
            views = {k: t for k, t in found.items() if k not in mine and k not in self._closed}
            self._tasks = {**views, **mine}
            self.loaded = True

    def forget(self, task_id: str) -> None:
        """A task found closed after all (closed by another instance's intake)."""
        with self._lock:
            self._tasks.pop(task_id, None)
            self._remember_closed(task_id)

    def _remember_closed(self, task_id: str) -> None:
        self._closed[task_id] = None
        if len(self._closed) > REMEMBERED_CLOSED:
            del self._closed[next(iter(self._closed))]

    def get(self, task_id: str) -> OpenTask | None:
        with self._lock:
            return self._tasks.get(task_id)

    def all(self) -> list[OpenTask]:
        with self._lock:
            return sorted(self._tasks.values(), key=lambda t: t.task_id)

    def open_for(self, user: str, app_name: str, kind: str) -> OpenTask | None:
        """The open task of ``kind`` for ``user``'s ``app_name``, the oldest if several."""
        with self._lock:
            found = [
                t
                for t in self._tasks.values()
                if (t.user, t.app_name, t.kind) == (user, app_name, kind)
            ]
        return min(found, key=lambda t: t.task_id) if found else None

    def accepted_with_op_id(self, op_id: str) -> OpenTask | None:
        if not op_id:
            return None
        with self._lock:
            for found in self._tasks.values():
                if found.accepted and found.op_id == op_id:
                    return found
        return None

    def sent_for(self, user: str, app_name: str, kind: str) -> OpenTask | None:
        """The open task of ``kind`` for the app once sent to app-service (accepted or not)."""
        found = self.open_for(user, app_name, kind)
        sent = (te.TaskStatus.DISPATCHED, te.TaskStatus.ACCEPTED)
        return found if found is not None and found.state in sent else None

    def accepted_for(self, user: str, app_name: str, kind: str) -> OpenTask | None:
        found = self.open_for(user, app_name, kind)
        return found if found is not None and found.accepted else None

    def apply(self, events: Iterable[Any]) -> None:
        """Follow committed task events: a new task opens, each step updates, closing ends."""
        with self._lock:
            for event in events:
                if isinstance(event, te.TaskEvent):
                    self._apply(event)

    def _apply(self, event: te.TaskEvent) -> None:
        if isinstance(event, te.TaskRequested):
            self._tasks[event.task_id] = OpenTask(
                event.task_id,
                event.kind,
                event.user,
                event.app_name,
                te.TaskStatus.REQUESTED,
                created_at=event.timestamp,
                instance=event.instance,
            )
            return
        known = self._tasks.get(event.task_id)
        if known is None:
            return
        if isinstance(event, te.TaskDispatched):
            self._tasks[event.task_id] = attrs.evolve(known, state=te.TaskStatus.DISPATCHED)
        elif isinstance(event, te.TaskAccepted | te.TaskReconciled):
            op_id = event.op_id if isinstance(event, te.TaskAccepted) else ""
            self._tasks[event.task_id] = attrs.evolve(
                known, state=te.TaskStatus.ACCEPTED, op_id=op_id, accepted_at=event.timestamp
            )
        else:  # every other step closes the task
            del self._tasks[event.task_id]
            self._remember_closed(event.task_id)


def open_task_of(row: Mapping[str, Any], parse: Any) -> OpenTask:
    """An open task from its view row (``parse``: RFC 3339 text to a time)."""
    accepted = row.get("accepted_at")
    request = request_of(dict(row))
    return OpenTask(
        task_id=row["task_id"],
        kind=row["kind"],
        user=row["user_name"],
        app_name=row["app_name"],
        state=row["state"],
        op_id=row["op_id"] or "",
        accepted_at=parse(accepted) if accepted else None,
        created_at=parse(row["created_at"]),
        instance=str(request.get("instance") or ""),
    )
