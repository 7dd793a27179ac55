"""How each task event changes the task views: the ``tasks`` row and ``last_installed``.

``state`` is the task's own status (the domain's); ``status`` is the market's wire status,
where acceptance by app-service already counts as ``completed`` (the market's clients know
no other meaning), while ``outcome`` says how the operation really ended once that is known.
``last_installed`` follows observed outcomes only: an install, upgrade or clone that
app-service merely accepted, and later failed, never becomes the last installed version.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import assert_never

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from market_ledger.domain import task_events as te
from market_ledger.domain.canonical import format_instant
from market_ledger.domain.events import LedgerEvent
from market_ledger.projections.rows import Row, dumps, loads
from market_ledger.projections.store import load_rows, upsert_rows

PENDING, RUNNING, COMPLETED = "pending", "running", "completed"
FAILED, CANCELED = te.FAILED, te.CANCELED
#: the market's wire statuses, in the order a task goes through them
WIRE_STATUSES = (PENDING, RUNNING, COMPLETED, FAILED, CANCELED)
#: the outcome an observed outcome gives the wire status
_WIRE_OF_OUTCOME = {te.SUCCEEDED: COMPLETED, te.FAILED: FAILED, te.CANCELED: CANCELED}
#: the kinds whose success makes an app's version and source the last installed ones
INSTALLING = frozenset({te.INSTALL, te.UPGRADE, te.CLONE})
#: the task states still open: queued, sent, or accepted and waiting for the outcome
OPEN_STATES = (te.TaskStatus.REQUESTED, te.TaskStatus.DISPATCHED, te.TaskStatus.ACCEPTED)


def request_json(event: te.TaskRequested) -> str:
    """The request's fields beyond the columns, as the market names them; env values are
    redacted already (the event never holds one)."""
    return dumps(
        {
            "envs": [{"envName": name, "value": value} for name, value in event.envs],
            "all": event.all,
            "deleteData": event.delete_data,
            "rawAppName": event.raw_app_name,
            "requestHash": event.request_hash,
            "title": event.title,
            "entrances": [{"name": name, "title": title} for name, title in event.entrances],
            "instance": event.instance,
        }
    )


def request_of(row: Row) -> dict[str, object]:
    """The ``request`` column of a task row, read back."""
    value = loads(row["request"])
    return value if isinstance(value, dict) else {}


def task_row(row: Row | None, event: te.AnyTaskEvent, position: int) -> Row:
    at = format_instant(event.timestamp)
    if isinstance(event, te.TaskRequested):
        return {
            "task_id": event.task_id,
            "kind": event.kind,
            "user_name": event.user,
            "app_name": event.app_name,
            "source": event.source,
            "version": event.version,
            "state": te.TaskStatus.REQUESTED,
            "status": PENDING,
            "outcome": None,
            "op_id": "",
            "error": None,
            "request": request_json(event),
            "created_at": at,
            "started_at": None,
            "accepted_at": None,
            "completed_at": None,
            "position": position,
        }
    if row is None:
        raise ValueError(f"{type(event).__name__} at {position} for a task never requested")
    row = {**row, "position": position}
    if isinstance(event, te.TaskDispatched):
        row.update(state=te.TaskStatus.DISPATCHED, status=RUNNING, started_at=at)
        return row
    if isinstance(event, te.TaskAccepted | te.TaskReconciled):
        op_id = event.op_id if isinstance(event, te.TaskAccepted) else row["op_id"]
        row.update(state=te.TaskStatus.ACCEPTED, op_id=op_id, accepted_at=at)
        return _ended(row, at, COMPLETED, None)
    if isinstance(event, te.TaskRejected):
        row.update(state=te.TaskStatus.REJECTED)
        return _ended(row, at, FAILED, te.FAILED, event.reason)
    if isinstance(event, te.TaskDequeued):
        row.update(state=te.TaskStatus.DEQUEUED)
        return _ended(row, at, CANCELED, te.CANCELED)
    if isinstance(event, te.TaskSettledInQueue):
        row.update(state=te.TaskStatus.SETTLED_IN_QUEUE)
        return _ended(row, at, COMPLETED, te.SUCCEEDED)
    if isinstance(event, te.TaskOutcomeObserved):
        row.update(state=event.outcome)
        error = None if event.outcome == te.SUCCEEDED else f"app-service reported {event.app_state}"
        return _ended(row, at, _WIRE_OF_OUTCOME[event.outcome], event.outcome, error)
    if isinstance(event, te.TaskTimedOut):
        row.update(state=te.TaskStatus.TIMED_OUT)
        error = f"no outcome within {event.deadline_seconds} s of acceptance"
        return _ended(row, at, FAILED, te.TaskStatus.TIMED_OUT, error)
    if isinstance(event, te.TaskInterrupted):
        row.update(state=te.TaskStatus.INTERRUPTED)
        return _ended(row, at, FAILED, te.TaskStatus.INTERRUPTED, event.reason)
    assert_never(event)


def _ended(row: Row, at: str, status: str, outcome: str | None, error: str | None = None) -> Row:
    """The row of a task the event gave a terminal wire status."""
    row.update(status=status, outcome=outcome, error=error, completed_at=at)
    return row


def last_installed_row(task: Row, event: te.TaskEvent, position: int) -> Row | None:
    """The ``last_installed`` row an event makes, given the task row it left; None when the
    event says nothing of what is installed."""
    if not isinstance(event, te.TaskOutcomeObserved) or event.outcome != te.SUCCEEDED:
        return None
    if task["kind"] not in INSTALLING:
        return None  # an uninstall's or a cancel's success leaves the last install as it was
    return {
        "user_name": task["user_name"],
        "app_name": task["app_name"],
        "kind": task["kind"],
        "version": task["version"],
        "source": task["source"],
        "task_id": task["task_id"],
        "at": format_instant(event.timestamp),
        "position": position,
    }


class TaskRows:
    """The task rows of one projector batch: loaded, changed in memory, written at once."""

    def __init__(self, tasks: sa.Table, last_installed: sa.Table) -> None:
        self.tasks_table = tasks
        self.last_installed_table = last_installed
        self.rows: dict[str, Row] = {}
        self.changed: set[str] = set()
        self.installed: dict[tuple[str, str], Row] = {}

    def load(
        self,
        conn: Connection,
        events: Iterable[tuple[int, LedgerEvent]],
        written: set[str] | None = None,
    ) -> None:
        """Read the rows of the batch's tasks; ``written``: the keys a rebuild has written
        so far (the others cannot exist yet)."""
        keys = {e.task_id for _, e in events if isinstance(e, te.TaskEvent)}
        if written is not None:
            keys &= written
        if keys:
            self.rows = load_rows(conn, self.tasks_table, "task_id", keys)

    def apply(self, event: te.AnyTaskEvent, position: int) -> Row:
        """Apply one event; returns the task row it left."""
        key = event.task_id
        row = task_row(self.rows.get(key), event, position)
        self.rows[key] = row
        self.changed.add(key)
        installed = last_installed_row(row, event, position)
        if installed is not None:
            self.installed[(installed["user_name"], installed["app_name"])] = installed
        return row

    def write(self, conn: Connection, written: set[str] | None = None) -> None:
        upsert_rows(conn, self.tasks_table, [self.rows[k] for k in sorted(self.changed)])
        upsert_rows(
            conn, self.last_installed_table, [self.installed[k] for k in sorted(self.installed)]
        )
        if written is not None:
            written.update(self.changed)
