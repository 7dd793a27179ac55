"""The task notices: what a task's user is told of its steps.

Two families, both announced like every other notice (after commit, at least once):

* the points the front end already reads, at the moments it has always had them:
  :class:`TaskExecuting` when the task is sent to app-service, and :class:`TaskFinished` when
  its request ended: accepted by app-service, or found taken by it (``succeed``, although the
  operation itself is still running), rejected or interrupted before app-service answered
  (``failed``), an install taken off the queue by a cancel (``canceled``), and a cancel that
  took it off (``succeed``);
* :class:`TaskOutcome`, new with the ledger: once per task, when the real outcome of the
  operation is known (observed from the app's state, timed out, interrupted, rejected, taken
  off the queue, or settled in it).

What a notice says of its task (kind, user, app, version, source, error) is read from the
task's row in the ``tasks`` view, which holds every event the notifier announces.
"""

from __future__ import annotations

from datetime import datetime

import attrs

from market_ledger.domain.task_events import (
    TaskAccepted,
    TaskDequeued,
    TaskDispatched,
    TaskEvent,
    TaskInterrupted,
    TaskOutcomeObserved,
    TaskReconciled,
    TaskRejected,
    TaskSettledInQueue,
    TaskStatus,
    TaskTimedOut,
)
from market_ledger.projections.rows import Row

#: a finished task's status, as the front end reads it
SUCCEED, FAILED, CANCELED = "succeed", "failed", "canceled"

#: the events that end a task's request, and the status the front end is told
_FINISHED: dict[type[TaskEvent], str] = {
    TaskAccepted: SUCCEED,
    TaskReconciled: SUCCEED,
    TaskSettledInQueue: SUCCEED,
    TaskRejected: FAILED,
    TaskInterrupted: FAILED,
    TaskDequeued: CANCELED,
}
#: the events that make a task's real outcome known, but for an observed one (it names its own)
_OUTCOMES: dict[type[TaskEvent], str] = {
    TaskTimedOut: TaskStatus.TIMED_OUT,
    TaskInterrupted: TaskStatus.INTERRUPTED,
    TaskRejected: TaskStatus.FAILED,
    TaskDequeued: TaskStatus.CANCELED,
    TaskSettledInQueue: TaskStatus.SUCCEEDED,
}
#: the events task notices are made of
ANNOUNCED: tuple[type[TaskEvent], ...] = tuple(
    dict.fromkeys((TaskDispatched, TaskOutcomeObserved, *_FINISHED, *_OUTCOMES))
)
TOPICS = tuple(topic for cls in ANNOUNCED for topic in cls.stored_topics())


@attrs.frozen
class TaskFacts:
    """A task as its notices describe it."""

    task_id: str
    kind: str
    user: str
    app_name: str
    #: "" when the task has none (a cancel, an uninstall)
    version: str
    source: str
    #: the task view's error text, when it has one
    error: str | None

    @classmethod
    def of_row(cls, row: Row) -> TaskFacts:
        return cls(
            task_id=row["task_id"],
            kind=row["kind"],
            user=row["user_name"],
            app_name=row["app_name"],
            version=row["version"],
            source=row["source"],
            error=row["error"] or None,
        )


@attrs.frozen
class TaskExecuting:
    """The task was sent to app-service."""

    task: TaskFacts
    at: datetime

    @property
    def user(self) -> str:
        return self.task.user


@attrs.frozen
class TaskFinished:
    """The task's request ended (``status``: succeed, failed or canceled); an accepted
    operation may still be running."""

    task: TaskFacts
    status: str
    at: datetime

    @property
    def user(self) -> str:
        return self.task.user


@attrs.frozen
class TaskOutcome:
    """The operation's real outcome: succeeded, failed, canceled, timed_out or interrupted."""

    task: TaskFacts
    outcome: str
    at: datetime

    @property
    def user(self) -> str:
        return self.task.user


TaskNotice = TaskExecuting | TaskFinished | TaskOutcome


def announced(event: object) -> bool:
    """Whether the event is one that task notices are made of."""
    return isinstance(event, ANNOUNCED)


def task_notices(event: TaskEvent, task: TaskFacts) -> list[TaskNotice]:
    """The notices of one task event, in the order they are sent: the finished point first,
    then the outcome."""
    at = event.timestamp
    if isinstance(event, TaskDispatched):
        return [TaskExecuting(task, at)]
    notices: list[TaskNotice] = []
    status = _FINISHED.get(type(event))
    if status is not None:
        notices.append(TaskFinished(task, status, at))
    outcome = (
        event.outcome if isinstance(event, TaskOutcomeObserved) else _OUTCOMES.get(type(event))
    )
    if outcome is not None:
        notices.append(TaskOutcome(task, outcome, at))
    return notices
