"""Tasks for the notifier's tests: the task's commands, and its row in the ``tasks`` view.

The projector fills the ``tasks`` view from the task's events; these tests write the row
themselves (replacing whatever the projector wrote) so that what a notice reads from it is
known to the test, and delete it to stand for a view that lacks a task.
"""

from __future__ import annotations

import sqlalchemy as sa

from market_ledger.bootstrap import Ledger
from market_ledger.domain.task import RequestTask
from market_ledger.domain.task_events import CANCEL, INSTALL
from market_ledger.projections.store import upsert_rows
from tests.support.builders import SOURCE

TASK_ID = "20261101120000-a1B2c3"
CANCEL_ID = "20261101120005-zz9900"


def install_request(task_id: str = TASK_ID, user: str = "alice") -> RequestTask:
    return RequestTask(
        task_id, kind=INSTALL, user=user, app_name="firefox", source=SOURCE, version="1.0.0"
    )


def cancel_request(task_id: str = CANCEL_ID, user: str = "alice") -> RequestTask:
    return RequestTask(task_id, kind=CANCEL, user=user, app_name="firefox")


def put_task_row(ledger: Ledger, request: RequestTask, *, error: str | None = None) -> None:
    """The task's row as the projector fills it, with ``error`` as its error text."""
    row = {
        "task_id": request.task_id,
        "kind": request.kind,
        "user_name": request.user,
        "app_name": request.app_name,
        "source": request.source,
        "version": request.version,
        "state": "requested",
        "status": "pending",
        "outcome": None,
        "op_id": "",
        "error": error,
        "request": "{}",
        "created_at": "2026-11-01T12:00:00Z",
        "started_at": None,
        "accepted_at": None,
        "completed_at": None,
        "position": ledger.projector.position(),
    }
    with ledger.writer.begin() as conn:
        upsert_rows(conn, ledger.tables.tasks, [row])


def drop_task_row(ledger: Ledger, task_id: str) -> None:
    tasks = ledger.tables.tasks
    with ledger.writer.begin() as conn:
        conn.execute(sa.delete(tasks).where(tasks.c.task_id == task_id))
