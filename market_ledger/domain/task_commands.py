"""The commands of a Task (see :mod:`market_ledger.domain.task` for how they are decided)."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cached_property
from uuid import UUID

import attrs

from market_ledger.domain import identity
from market_ledger.domain.decider import Command


@attrs.frozen
class TaskCommandBase(Command):
    task_id: str

    @cached_property
    def aggregate_id(self) -> UUID:
        return identity.task_stream_id(self.task_id)


@attrs.frozen(repr=False)
class RequestTask(TaskCommandBase):
    """A user's request, as the route took it in; env values are redacted before recording."""

    kind: str
    user: str
    app_name: str
    source: str = ""
    version: str = ""
    #: (name, value) pairs as requested; only the names reach the event
    envs: tuple[tuple[str, str], ...] = ()
    #: uninstall's flags
    all: bool = False
    delete_data: bool = False
    #: clone's fields: the original app, the request digest and the new title and entrances
    raw_app_name: str = ""
    request_hash: str = ""
    title: str = ""
    entrances: tuple[tuple[str, str], ...] = ()
    #: the instance that holds the request's token
    instance: str = ""

    def __repr__(self) -> str:  # never env values, even in a traceback
        return f"RequestTask({self.task_id!r}, {self.kind!r}, {self.user!r}, {self.app_name!r})"


@attrs.frozen
class DispatchTask(TaskCommandBase):
    pass


@attrs.frozen
class AcceptTask(TaskCommandBase):
    op_id: str = ""


@attrs.frozen
class ReconcileTask(TaskCommandBase):
    """app-service's list of apps shows it took a task whose answer was never known."""

    found: str


@attrs.frozen
class RejectTask(TaskCommandBase):
    reason: str
    backend_answer: str = ""


@attrs.frozen
class DequeueTask(TaskCommandBase):
    """A cancel took the task off the queue before it was sent to app-service."""

    canceled_by: str


@attrs.frozen
class SettleCancelInQueue(TaskCommandBase):
    """A cancel whose install was still queued: it removed it (``removed_task``) and is done."""

    removed_task: str


@attrs.frozen
class ObserveOutcome(TaskCommandBase):
    outcome: str
    app_state: str
    op_id: str = ""
    #: when the app state was reported; a report older than the dispatch is about an earlier
    #: operation of the same app
    observed_at: datetime | None = None


@attrs.frozen
class TimeOutTask(TaskCommandBase):
    """No outcome within ``deadline`` of acceptance."""

    deadline: timedelta


@attrs.frozen
class InterruptTask(TaskCommandBase):
    reason: str


TaskCommand = (
    RequestTask
    | DispatchTask
    | AcceptTask
    | ReconcileTask
    | RejectTask
    | DequeueTask
    | SettleCancelInQueue
    | ObserveOutcome
    | TimeOutTask
    | InterruptTask
)
