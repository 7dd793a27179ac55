"""The events of a Task (see :mod:`market_ledger.domain.task` for its rules), its kinds, statuses
and wire id."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from market_ledger.domain.events import LedgerEvent

INSTALL, UNINSTALL, UPGRADE, CANCEL, CLONE = "install", "uninstall", "upgrade", "cancel", "clone"
KINDS = (INSTALL, UNINSTALL, UPGRADE, CANCEL, CLONE)
#: the kinds a cancel may take off the queue before they are dispatched
CANCELABLE = frozenset({INSTALL, CLONE})
SUCCEEDED, FAILED, CANCELED = "succeeded", "failed", "canceled"
OUTCOMES = (SUCCEEDED, FAILED, CANCELED)
#: the longest backend answer kept with a rejection, and the longest reason
MAX_EXCERPT = 4000
MAX_REASON = 4000

_TASK_ID = re.compile(r"[0-9]{14}-[0-9A-Za-z]{6}")
_SUFFIX = re.compile(r"[0-9A-Za-z]{6}")


class TaskStatus:
    REQUESTED = "requested"  # queued, not yet sent to app-service
    DISPATCHED = "dispatched"  # sent, app-service's answer not known yet
    ACCEPTED = "accepted"  # app-service took it; waiting for the outcome
    REJECTED = "rejected"
    DEQUEUED = "dequeued"
    #: a cancel that found its install still queued: it removed it, and app-service was
    #: never called
    SETTLED_IN_QUEUE = "settled_in_queue"
    SUCCEEDED, FAILED, CANCELED = SUCCEEDED, FAILED, CANCELED
    TIMED_OUT = "timed_out"
    INTERRUPTED = "interrupted"


#: the statuses after which nothing more happens to a task
CLOSED = frozenset(
    {
        TaskStatus.REJECTED,
        TaskStatus.DEQUEUED,
        TaskStatus.SETTLED_IN_QUEUE,
        *OUTCOMES,
        TaskStatus.TIMED_OUT,
        TaskStatus.INTERRUPTED,
    }
)


def new_task_id(at: datetime, random_suffix: str) -> str:
    """The wire id of a task created at ``at``; the caller draws the suffix from a real RNG
    (six letters or digits), so two tasks of the same second do not share an id."""
    if not _SUFFIX.fullmatch(random_suffix):
        raise ValueError(f"a task id suffix is six letters or digits, not {random_suffix!r}")
    return f"{at:%Y%m%d%H%M%S}-{random_suffix}"


def task_id_problem(task_id: str) -> str | None:
    """Why ``task_id`` is not a task id (``YYYYMMDDhhmmss-xxxxxx``), or None when it is."""
    if not _TASK_ID.fullmatch(task_id):
        return "is not of the form YYYYMMDDhhmmss-xxxxxx"
    try:
        datetime.strptime(task_id[:14], "%Y%m%d%H%M%S")
    except ValueError:
        return "does not start with a real date and time"
    return None


# --- events --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskEvent(LedgerEvent):
    task_id: str


@dataclass(frozen=True)
class TaskRequested(TaskEvent):
    TOPIC = "task.Requested.v1"
    HISTORY_NAME = "task_requested"
    kind: str
    user: str
    app_name: str
    source: str
    version: str
    #: [name, value redacted] pairs (pairs, never objects: nothing requested may look like
    #: the store's own encoding of a typed value)
    envs: list[list[str]]
    all: bool
    delete_data: bool
    raw_app_name: str
    request_hash: str
    title: str
    entrances: list[list[str]]
    #: the instance that took the request in and holds its token while it is queued (a
    #: request recorded before several instances existed has none)
    instance: str = ""


@dataclass(frozen=True)
class TaskDispatched(TaskEvent):
    TOPIC = "task.Dispatched.v1"
    HISTORY_NAME = "task_dispatched"


@dataclass(frozen=True)
class TaskAccepted(TaskEvent):
    TOPIC = "task.Accepted.v1"
    HISTORY_NAME = "task_accepted"
    op_id: str


@dataclass(frozen=True)
class TaskReconciled(TaskEvent):
    """A task sent without a known answer (a timeout, a restart mid-call) that app-service's
    list of apps shows it took: accepted, with no operation id, waiting for its outcome."""

    TOPIC = "task.Reconciled.v1"
    HISTORY_NAME = "task_reconciled"
    #: what app-service showed: the app's state, or that the app is absent
    found: str


@dataclass(frozen=True)
class TaskRejected(TaskEvent):
    TOPIC = "task.Rejected.v1"
    HISTORY_NAME = "task_rejected"
    reason: str
    backend_answer: str


@dataclass(frozen=True)
class TaskDequeued(TaskEvent):
    TOPIC = "task.Dequeued.v1"
    HISTORY_NAME = "task_dequeued"
    canceled_by: str


@dataclass(frozen=True)
class TaskSettledInQueue(TaskEvent):
    """A cancel that took a queued install off the queue: done without calling app-service."""

    TOPIC = "task.SettledInQueue.v1"
    HISTORY_NAME = "task_settled_in_queue"
    removed_task: str


@dataclass(frozen=True)
class TaskOutcomeObserved(TaskEvent):
    TOPIC = "task.OutcomeObserved.v1"
    HISTORY_NAME = "task_outcome_observed"
    outcome: str
    app_state: str


@dataclass(frozen=True)
class TaskTimedOut(TaskEvent):
    TOPIC = "task.TimedOut.v1"
    HISTORY_NAME = "task_timed_out"
    deadline_seconds: int


@dataclass(frozen=True)
class TaskInterrupted(TaskEvent):
    TOPIC = "task.Interrupted.v1"
    HISTORY_NAME = "task_interrupted"
    reason: str


AnyTaskEvent = (
    TaskRequested
    | TaskDispatched
    | TaskAccepted
    | TaskReconciled
    | TaskRejected
    | TaskDequeued
    | TaskSettledInQueue
    | TaskOutcomeObserved
    | TaskTimedOut
    | TaskInterrupted
)
