"""The task reads: the one JSON shape of a task, the lists the CLI and routes show, the open
tasks the dispatcher works on, and the data of ``GET /runtime/state``.

Nothing here can show a secret: the views never hold a token, and env values reach them
redacted.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from market_ledger.domain.canonical import format_instant, parse_instant
from market_ledger.domain.task_events import TaskStatus
from market_ledger.projections.rows import Row
from market_ledger.projections.schema import ViewTables
from market_ledger.projections.task_rows import (
    COMPLETED,
    OPEN_STATES,
    PENDING,
    RUNNING,
    WIRE_STATUSES,
    request_of,
)

#: the most tasks ``runtime_state`` lists besides the pending and running ones
RUNTIME_RECENT_TASKS = 100
#: a running task's progress is guessed as the share of this many seconds gone by
PROGRESS_SPAN_SECONDS = 300
PROGRESS_RUNNING_CAP = 90


#: the fields of a task as every reader shows it, in this order
TASK_FIELDS = (
    "task_id",
    "kind",
    "user",
    "app_name",
    "source",
    "version",
    "status",
    "outcome",
    "op_id",
    "created_at",
    "started_at",
    "completed_at",
    "error",
)


def task_json(row: Row) -> dict[str, Any]:
    """A task as the CLI's ``--json`` and the task routes show it."""
    return {
        "task_id": row["task_id"],
        "kind": row["kind"],
        "user": row["user_name"],
        "app_name": row["app_name"],
        "source": row["source"],
        "version": row["version"],
        "status": row["status"],
        "outcome": row["outcome"],
        "op_id": row["op_id"] or None,
        "created_at": row["created_at"],
        "started_at": row["started_at"],
        "completed_at": row["completed_at"],
        "error": row["error"],
    }


def _rows(conn: Connection, query: sa.Select[Any]) -> list[Row]:
    return [dict(r) for r in conn.execute(query).mappings()]


def _newest_first(tables: ViewTables) -> tuple[Any, ...]:
    t = tables.tasks
    return (t.c.created_at.desc(), t.c.task_id.desc())


def list_tasks(
    conn: Connection, tables: ViewTables, user: str | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """Tasks newest first (of ``user``, or everyone's), at most ``limit``."""
    t = tables.tasks
    query = sa.select(t).order_by(*_newest_first(tables))
    if user is not None:
        query = query.where(t.c.user_name == user)
    if limit is not None:
        query = query.limit(limit)
    return [task_json(row) for row in _rows(conn, query)]


def task_row(conn: Connection, tables: ViewTables, task_id: str) -> Row | None:
    t = tables.tasks
    found = conn.execute(sa.select(t).where(t.c.task_id == task_id)).mappings().first()
    return None if found is None else dict(found)


def get_task(conn: Connection, tables: ViewTables, task_id: str) -> dict[str, Any] | None:
    row = task_row(conn, tables, task_id)
    return None if row is None else task_json(row)


def last_installed(conn: Connection, tables: ViewTables, user: str, app: str) -> Row | None:
    """The install, upgrade or clone of ``app`` last observed to succeed for ``user``."""
    t = tables.last_installed
    query = sa.select(t).where(t.c.user_name == user, t.c.app_name == app)
    found = conn.execute(query).mappings().first()
    return None if found is None else dict(found)


# --- for the dispatcher and the task routes ---------------------------------------------------


def open_tasks(conn: Connection, tables: ViewTables) -> list[Row]:
    """Tasks queued, sent, or accepted and waiting for their outcome; oldest first."""
    t = tables.tasks
    query = sa.select(t).where(t.c.state.in_(OPEN_STATES)).order_by(t.c.created_at, t.c.task_id)
    return _rows(conn, query)


def open_task_for(
    conn: Connection, tables: ViewTables, user: str, app_name: str, kind: str
) -> str | None:
    """The id of the open task of ``kind`` for the user's app (the oldest if several)."""
    t = tables.tasks
    query = (
        sa.select(t.c.task_id)
        .where(
            t.c.user_name == user,
            t.c.app_name == app_name,
            t.c.kind == kind,
            t.c.state.in_(OPEN_STATES),
        )
        .order_by(t.c.created_at, t.c.task_id)
        .limit(1)
    )
    found = conn.execute(query).scalar()
    return None if found is None else str(found)


def accepted_task_by_op_id(conn: Connection, tables: ViewTables, op_id: str) -> Row | None:
    """The accepted task that app-service's operation ``op_id`` is about, if still open."""
    if not op_id:
        return None
    t = tables.tasks
    query = (
        sa.select(t)
        .where(t.c.op_id == op_id, t.c.state == TaskStatus.ACCEPTED)
        .order_by(t.c.created_at, t.c.task_id)
        .limit(1)
    )
    found = conn.execute(query).mappings().first()
    return None if found is None else dict(found)


# --- GET /runtime/state ------------------------------------------------------------------------


def progress(row: Row, now: datetime) -> int:
    """The progress the market's clients are shown: a guess from the time gone by while
    running, 100 once completed, else 0."""
    if row["status"] == COMPLETED:
        return 100
    if row["status"] != RUNNING or row["started_at"] is None:
        return 0
    elapsed = (now - parse_instant(row["started_at"])).total_seconds()
    share = max(elapsed, 0.0) / PROGRESS_SPAN_SECONDS * 100
    return int(min(PROGRESS_RUNNING_CAP, share))


def task_state(row: Row, now: datetime) -> dict[str, Any]:
    """A task as ``/runtime/state`` shows it; optional keys that are empty are left out."""
    request = request_of(row)
    shown: dict[str, Any] = {
        "task_id": row["task_id"],
        "type": row["kind"],
        "status": row["status"],
        "app_name": row["app_name"],
        "user_id": row["user_name"],
        "op_id": row["op_id"],
        "progress": progress(row, now),
        "created_at": row["created_at"],
        "started_at": row["started_at"],
        "completed_at": row["completed_at"],
        "error_msg": row["error"],
        "metadata": {
            "source": row["source"],
            "version": row["version"],
            "envs": request.get("envs", []),
        },
    }
    required = ("task_id", "type", "status", "app_name", "user_id", "created_at")
    return {k: v for k, v in shown.items() if k in required or v}


def _task_filters(
    tables: ViewTables,
    user: str | None,
    source: str | None,
    app_name: str | None,
    task_status: str | None,
    task_type: str | None,
) -> list[Any]:
    t = tables.tasks
    wanted = [
        (t.c.user_name, user),
        (t.c.source, source),
        (t.c.app_name, app_name),
        (t.c.status, task_status),
        (t.c.kind, task_type),
    ]
    return [column == value for column, value in wanted if value is not None]


def _app_states(
    conn: Connection,
    tables: ViewTables,
    user: str | None,
    source: str | None,
    app_name: str | None,
) -> dict[str, dict[str, str]]:
    i = tables.installations
    query = sa.select(i).where(i.c.removed.is_(False)).order_by(i.c.user_name, i.c.name)
    for column, value in ((i.c.user_name, user), (i.c.source, source), (i.c.name, app_name)):
        if value is not None:
            query = query.where(column == value)
    return {
        f"{row['user_name']}/{row['name']}": {
            "state": row["state"],
            "op_type": row["op_type"],
            "version": row["app_version"],
            "source": row["source"],
        }
        for row in _rows(conn, query)
    }


def _summary(conn: Connection, tables: ViewTables, filters: Sequence[Any]) -> dict[str, int]:
    t = tables.tasks
    counts = dict.fromkeys(WIRE_STATUSES, 0)
    query = sa.select(t.c.status, sa.func.count()).where(*filters).group_by(t.c.status)
    for status, count in conn.execute(query):
        counts[status] = int(count)
    return {
        "total_tasks": sum(counts.values()),
        **{f"{status}_tasks": counts[status] for status in WIRE_STATUSES},
    }


def runtime_state(
    conn: Connection,
    tables: ViewTables,
    *,
    user: str | None,
    app_name: str | None = None,
    source: str | None = None,
    task_status: str | None = None,
    task_type: str | None = None,
    now: datetime,
) -> dict[str, Any]:
    """The data of ``GET /runtime/state``: the installed apps' states, the tasks (every
    pending or running one, and the newest others) keyed by id, and counts per status of
    every task the filters select. ``user`` None: every user's."""
    t = tables.tasks
    filters = _task_filters(tables, user, source, app_name, task_status, task_type)
    newest = sa.select(t).where(*filters).order_by(*_newest_first(tables))
    active = newest.where(t.c.status.in_((PENDING, RUNNING)))
    rows = {r["task_id"]: r for r in _rows(conn, active)}
    for row in _rows(conn, newest.limit(RUNTIME_RECENT_TASKS)):
        rows.setdefault(row["task_id"], row)
    ordered = sorted(rows.values(), key=lambda r: (r["created_at"], r["task_id"]), reverse=True)
    return {
        "timestamp": format_instant(now),
        "app_states": _app_states(conn, tables, user, source, app_name),
        "tasks": {row["task_id"]: task_state(row, now) for row in ordered},
        "components": {},
        "summary": _summary(conn, tables, filters),
    }
