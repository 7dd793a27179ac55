"""The task read routes: the ledger's own under ``/app-store/api/v2/ledger``, the market's
runtime state under ``/app-store/api/v2``.

- ``GET ledger/tasks``: the requester's tasks, newest first (``?user=``: another user's, admin);
- ``GET ledger/tasks/{task_id}``: one task; another user's task is "not found" unless the requester
  is an admin, so an id says nothing of whose it is;
- ``GET runtime/state``: the installed apps' states, the tasks keyed by id and counts per
  status, filtered by ``user_id``, ``source_id``, ``app_name``, ``task_status`` and
  ``task_type``. A user sees their own; an admin everyone's unless ``user_id`` is given.

Each task has the one shape of :mod:`market_ledger.projections.task_reads`; no answer holds a
token or an env value (the views never have them).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from market_ledger.adapters.http_api.common import (
    ADMIN_ROLE,
    ApiError,
    BadRequest,
    HttpServices,
    HttpSettings,
    authorize_read,
    consistent,
    envelope,
    query_name,
    read_in_thread,
    requester,
    role_of,
)
from market_ledger.domain.task_events import KINDS, task_id_problem
from market_ledger.projections import task_reads
from market_ledger.projections.task_rows import WIRE_STATUSES

PREFIX = "/app-store/api/v2"
LEDGER_PREFIX = f"{PREFIX}/ledger"
TASK_NOT_FOUND = "Task not found"
#: how long reading one task waits for the views when they are behind the log
VIEWS_WAIT_SECONDS = 3.0


def query_choice(request: Request, name: str, choices: Sequence[str]) -> str | None:
    """An optional parameter that is one of ``choices``; 400 for any other value."""
    raw = request.query_params.get(name)
    if raw is None or not raw.strip():
        return None
    value = raw.strip()
    if value not in choices:
        raise BadRequest(f"parameter {name!r} must be one of {', '.join(choices)}")
    return value


def task_read_routes(services: HttpServices, settings: HttpSettings) -> list[Route]:
    tables = services.tables

    async def tasks(request: Request) -> Response:
        who = requester(request)
        target = query_name(request, "user") or who

        def work() -> list[dict[str, Any]]:
            with services.read() as conn:
                conn = consistent(conn)
                authorize_read(conn, tables, who, target)
                return task_reads.list_tasks(conn, tables, user=target)

        return envelope(await read_in_thread(work), "Tasks retrieved successfully")

    async def one_task(request: Request) -> Response:
        who = requester(request)
        task_id = str(request.path_params["task_id"])
        if task_id_problem(task_id) is not None:
            raise ApiError(404, TASK_NOT_FOUND)

        def work() -> dict[str, Any] | None:
            with services.read() as conn:
                conn = consistent(conn)
                row = task_reads.task_row(conn, tables, task_id)
                if row is None:
                    return None
                if row["user_name"] != who and role_of(conn, tables, who) != ADMIN_ROLE:
                    raise ApiError(404, TASK_NOT_FOUND)
                return task_reads.task_json(row)

        found = await read_in_thread(work)
        # A task route answers as soon as the task is in the log; its row follows once the
        # views catch up (milliseconds, seconds after a burst): wait for them, not forever.
        for _ in range(int(VIEWS_WAIT_SECONDS / 0.05)):
            if found is not None or not await read_in_thread(_views_behind):
                break
            await asyncio.sleep(0.05)
            found = await read_in_thread(work)
        if found is None:
            raise ApiError(404, TASK_NOT_FOUND)
        return envelope(found, "Task retrieved successfully")

    def _views_behind() -> bool:
        return services.projector.position() < services.projector.head()

    async def runtime_state(request: Request) -> Response:
        who = requester(request)
        user_id = query_name(request, "user_id")
        source = query_name(request, "source_id")
        app_name = query_name(request, "app_name")
        task_status = query_choice(request, "task_status", WIRE_STATUSES)
        task_type = query_choice(request, "task_type", KINDS)

        def work() -> dict[str, Any]:
            with services.read() as conn:
                conn = consistent(conn)
                if user_id is not None:
                    authorize_read(conn, tables, who, user_id)
                    user: str | None = user_id
                else:
                    user = None if role_of(conn, tables, who) == ADMIN_ROLE else who
                return task_reads.runtime_state(
                    conn,
                    tables,
                    user=user,
                    source=source,
                    app_name=app_name,
                    task_status=task_status,
                    task_type=task_type,
                    now=datetime.now(UTC),
                )

        return envelope(await read_in_thread(work), "Runtime state retrieved successfully")

    return [
        Route(f"{LEDGER_PREFIX}/tasks", tasks, methods=["GET"]),
        Route(f"{LEDGER_PREFIX}/tasks/{{task_id}}", one_task, methods=["GET"]),
        Route(f"{PREFIX}/runtime/state", runtime_state, methods=["GET"]),
    ]
