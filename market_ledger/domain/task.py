"""Task: one app operation a user asked for (install, uninstall, upgrade, cancel, clone).

Every step is an event on the task's own stream: requested, dispatched to app-service,
accepted (with app-service's operation id) or rejected, removed from the queue by a cancel
before dispatch, and, after acceptance, the real outcome observed from the app's state, a
timeout, or an interruption. Acceptance is not the outcome: an accepted task stays open until
the app's state shows how the operation ended.

Nothing secret is ever decided into an event: env values are redacted (their names are kept)
and a request carries no token. Repeats (a redelivered message, a retried call) produce
nothing; a step the lifecycle does not allow is refused with the reason.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import assert_never
from uuid import UUID

import attrs

from market_ledger.domain.decider import CommandRejected, Decider, DecisionContext, members
from market_ledger.domain.events import Stamper
from market_ledger.domain.limits import check_text, printable
from market_ledger.domain.redaction import REDACTED, redact_text
from market_ledger.domain.task_commands import (
    AcceptTask as AcceptTask,
)
from market_ledger.domain.task_commands import (
    DequeueTask as DequeueTask,
)
from market_ledger.domain.task_commands import (
    DispatchTask as DispatchTask,
)
from market_ledger.domain.task_commands import (
    InterruptTask as InterruptTask,
)
from market_ledger.domain.task_commands import (
    ObserveOutcome as ObserveOutcome,
)
from market_ledger.domain.task_commands import (
    ReconcileTask as ReconcileTask,
)
from market_ledger.domain.task_commands import (
    RejectTask as RejectTask,
)
from market_ledger.domain.task_commands import (
    RequestTask as RequestTask,
)
from market_ledger.domain.task_commands import (
    SettleCancelInQueue as SettleCancelInQueue,
)
from market_ledger.domain.task_commands import (
    TaskCommand as TaskCommand,
)
from market_ledger.domain.task_commands import (
    TaskCommandBase as TaskCommandBase,
)
from market_ledger.domain.task_commands import (
    TimeOutTask as TimeOutTask,
)
from market_ledger.domain.task_events import CANCEL as CANCEL
from market_ledger.domain.task_events import (
    CANCELABLE,
    CLONE,
    CLOSED,
    INSTALL,
    KINDS,
    MAX_EXCERPT,
    MAX_REASON,
    OUTCOMES,
    UPGRADE,
    AnyTaskEvent,
    TaskAccepted,
    TaskDequeued,
    TaskDispatched,
    TaskInterrupted,
    TaskOutcomeObserved,
    TaskReconciled,
    TaskRejected,
    TaskRequested,
    TaskSettledInQueue,
    TaskStatus,
    TaskTimedOut,
    task_id_problem,
)
from market_ledger.domain.task_events import CANCELED as CANCELED
from market_ledger.domain.task_events import FAILED as FAILED
from market_ledger.domain.task_events import SUCCEEDED as SUCCEEDED
from market_ledger.domain.task_events import UNINSTALL as UNINSTALL
from market_ledger.domain.task_events import TaskEvent as TaskEvent
from market_ledger.domain.task_events import new_task_id as new_task_id

_HASH = re.compile(r"[0-9a-f]{6}")


# --- state ---------------------------------------------------------------------------------------


@attrs.frozen
class TaskState:
    id: UUID
    version: int
    task_id: str
    kind: str
    user: str
    app_name: str
    status: str
    requested: TaskRequested
    dispatched_at: datetime | None = None
    accepted_at: datetime | None = None
    op_id: str = ""
    reason: str = ""
    #: app-service's answer to a rejected task, as kept with the rejection
    backend_answer: str = ""

    @property
    def closed(self) -> bool:
        return self.status in CLOSED


def evolve(state: TaskState | None, event: AnyTaskEvent) -> TaskState:
    if isinstance(event, TaskRequested):
        return TaskState(
            id=event.originator_id,
            version=event.originator_version,
            task_id=event.task_id,
            kind=event.kind,
            user=event.user,
            app_name=event.app_name,
            status=TaskStatus.REQUESTED,
            requested=event,
        )
    if state is None:
        raise ValueError(f"{type(event).__name__} before the task was requested")
    at = attrs.evolve(state, version=event.originator_version)
    if isinstance(event, TaskDispatched):
        return attrs.evolve(at, status=TaskStatus.DISPATCHED, dispatched_at=event.timestamp)
    if isinstance(event, TaskAccepted):
        return attrs.evolve(
            at, status=TaskStatus.ACCEPTED, accepted_at=event.timestamp, op_id=event.op_id
        )
    if isinstance(event, TaskReconciled):
        return attrs.evolve(at, status=TaskStatus.ACCEPTED, accepted_at=event.timestamp)
    if isinstance(event, TaskRejected):
        return attrs.evolve(
            at,
            status=TaskStatus.REJECTED,
            reason=event.reason,
            backend_answer=event.backend_answer,
        )
    if isinstance(event, TaskDequeued):
        return attrs.evolve(at, status=TaskStatus.DEQUEUED)
    if isinstance(event, TaskSettledInQueue):
        return attrs.evolve(at, status=TaskStatus.SETTLED_IN_QUEUE)
    if isinstance(event, TaskOutcomeObserved):
        return attrs.evolve(at, status=event.outcome)
    if isinstance(event, TaskTimedOut):
        return attrs.evolve(at, status=TaskStatus.TIMED_OUT)
    if isinstance(event, TaskInterrupted):
        return attrs.evolve(at, status=TaskStatus.INTERRUPTED, reason=event.reason)
    assert_never(event)


# --- decisions -----------------------------------------------------------------------------------


def _validate(command: RequestTask) -> None:
    problem = task_id_problem(command.task_id)
    if problem is not None:
        raise CommandRejected(f"task id {command.task_id!r} {problem}")
    if command.kind not in KINDS:
        raise CommandRejected(f"unknown task kind {command.kind!r}; known: {', '.join(KINDS)}")
    if not command.user or not command.app_name:
        raise CommandRejected(f"{command.kind} task: user and app name are required")
    if command.kind in (INSTALL, UPGRADE, CLONE) and not (command.source and command.version):
        raise CommandRejected(f"{command.kind} task: source and version are required")
    if command.kind == CLONE:
        if not command.raw_app_name or not _HASH.fullmatch(command.request_hash):
            raise CommandRejected(
                "clone task: the original app and a 6-hex request hash are needed"
            )
        if command.app_name != command.raw_app_name + command.request_hash:
            raise CommandRejected("clone task: the app name is the original's name + request hash")
    for name, _ in command.envs:
        if not name:
            raise CommandRejected(f"{command.kind} task: an env without a name")
        check_text("env name", name)
    for name, title in command.entrances:
        check_text("entrance name", name)
        check_text("entrance title", title)


def _requested(command: RequestTask, stamp: Stamper) -> TaskRequested:
    return stamp(  # type: ignore[no-any-return]
        TaskRequested,
        task_id=command.task_id,
        kind=command.kind,
        user=command.user,
        app_name=command.app_name,
        source=command.source,
        version=command.version,
        envs=[[name, REDACTED if value else ""] for name, value in command.envs],
        all=command.all,
        delete_data=command.delete_data,
        raw_app_name=command.raw_app_name,
        request_hash=command.request_hash,
        title=command.title,
        entrances=[[name, title] for name, title in command.entrances],
        instance=command.instance,
    )


def _same_request(requested: TaskRequested, again: TaskRequested) -> bool:
    """Whether two requests say the same thing, whenever and wherever they were stamped."""
    fields = ("kind", "user", "app_name", "source", "version", "envs", "all", "delete_data")
    more = ("raw_app_name", "request_hash", "title", "entrances")
    return all(getattr(requested, f) == getattr(again, f) for f in (*fields, *more))


def _diagnostic(text: str, limit: int) -> str:
    """Text from outside (app-service's answer, a reason) as it may be kept: no secret,
    printable, and no longer than ``limit``."""
    return printable(redact_text(text))[:limit]


def _refuse(state: TaskState, step: str) -> CommandRejected:
    return CommandRejected(f"task {state.task_id} cannot be {step}: it is {state.status}")


def decide(
    command: TaskCommand, state: TaskState | None, context: DecisionContext
) -> list[AnyTaskEvent]:
    stamp = Stamper(command.aggregate_id, state.version if state else 0, context.at)
    if isinstance(command, RequestTask):
        _validate(command)
        requested = _requested(command, stamp)
        if state is None:
            return [requested]
        if _same_request(state.requested, requested):
            return []  # the same request again (a retried write): one task
        raise CommandRejected(f"task id {command.task_id} is already used by another request")
    if state is None:
        raise CommandRejected(f"no task {command.task_id!r}")
    status = state.status
    if isinstance(command, DispatchTask):
        if status == TaskStatus.REQUESTED:
            return [stamp(TaskDispatched, task_id=state.task_id)]
        if status == TaskStatus.DISPATCHED:
            return []
        raise _refuse(state, "dispatched")
    if isinstance(command, AcceptTask):
        check_text("op_id", command.op_id)
        if status == TaskStatus.DISPATCHED:
            return [stamp(TaskAccepted, task_id=state.task_id, op_id=command.op_id)]
        if status == TaskStatus.ACCEPTED and state.op_id == command.op_id:
            return []
        raise _refuse(state, f"accepted as operation {command.op_id!r}")
    if isinstance(command, ReconcileTask):
        found = _diagnostic(command.found, MAX_REASON)
        if status == TaskStatus.DISPATCHED:
            return [stamp(TaskReconciled, task_id=state.task_id, found=found)]
        if status == TaskStatus.ACCEPTED:
            return []  # accepted already, by its answer or an earlier reconciliation
        raise _refuse(state, "reconciled")
    if isinstance(command, RejectTask):
        reason = _diagnostic(command.reason, MAX_REASON)
        if status == TaskStatus.DISPATCHED:
            answer = _diagnostic(command.backend_answer, MAX_EXCERPT)
            return [
                stamp(TaskRejected, task_id=state.task_id, reason=reason, backend_answer=answer)
            ]
        if status == TaskStatus.REJECTED and state.reason == reason:
            return []
        raise _refuse(state, "rejected")
    if isinstance(command, DequeueTask):
        problem = task_id_problem(command.canceled_by)
        if problem is not None:
            raise CommandRejected(f"the canceling task id {command.canceled_by!r} {problem}")
        if state.kind not in CANCELABLE:
            raise CommandRejected(
                f"task {state.task_id} is an {state.kind}: a cancel removes installs"
            )
        if status == TaskStatus.REQUESTED:
            return [stamp(TaskDequeued, task_id=state.task_id, canceled_by=command.canceled_by)]
        if status == TaskStatus.DEQUEUED:
            return []
        raise _refuse(state, "taken off the queue")
    if isinstance(command, SettleCancelInQueue):
        problem = task_id_problem(command.removed_task)
        if problem is not None:
            raise CommandRejected(f"the removed task id {command.removed_task!r} {problem}")
        if state.kind != CANCEL:
            raise CommandRejected(f"task {state.task_id} is an {state.kind}, not a cancel")
        if status == TaskStatus.REQUESTED:
            return [
                stamp(TaskSettledInQueue, task_id=state.task_id, removed_task=command.removed_task)
            ]
        if status == TaskStatus.SETTLED_IN_QUEUE:
            return []
        raise _refuse(state, "settled in the queue")
    if isinstance(command, ObserveOutcome):
        if command.outcome not in OUTCOMES:
            raise CommandRejected(f"unknown outcome {command.outcome!r}; known: {OUTCOMES}")
        if status in (*OUTCOMES, TaskStatus.TIMED_OUT, TaskStatus.INTERRUPTED):
            return []  # closed already: a duplicate or a late report changes nothing
        if status != TaskStatus.ACCEPTED:
            raise _refuse(state, f"closed as {command.outcome}")
        if command.op_id and state.op_id and command.op_id != state.op_id:
            return []  # about another operation of the same app
        seen, sent = command.observed_at, state.dispatched_at
        if seen is not None and sent is not None and seen < sent.replace(microsecond=0):
            # reported before this task was sent: about an earlier operation (compared by the
            # second: app-service's list of apps gives whole seconds)
            return []
        app_state = _diagnostic(command.app_state, MAX_REASON)
        return [
            stamp(
                TaskOutcomeObserved,
                task_id=state.task_id,
                outcome=command.outcome,
                app_state=app_state,
            )
        ]
    if isinstance(command, TimeOutTask):
        if status in (*OUTCOMES, TaskStatus.TIMED_OUT):
            return []  # the outcome came first, or timed out already
        if status != TaskStatus.ACCEPTED or state.accepted_at is None:
            raise _refuse(state, "timed out")
        if context.at - state.accepted_at < command.deadline:
            raise CommandRejected(
                f"task {state.task_id} is not due: accepted at {state.accepted_at}"
            )
        seconds = int(command.deadline.total_seconds())
        return [stamp(TaskTimedOut, task_id=state.task_id, deadline_seconds=seconds)]
    if isinstance(command, InterruptTask):
        reason = _diagnostic(command.reason, MAX_REASON)
        if not reason:
            raise CommandRejected(f"task {state.task_id}: an interruption needs a reason")
        if status in (TaskStatus.REQUESTED, TaskStatus.DISPATCHED):
            return [stamp(TaskInterrupted, task_id=state.task_id, reason=reason)]
        if status == TaskStatus.INTERRUPTED:
            return []
        if status == TaskStatus.ACCEPTED:
            raise CommandRejected(
                f"task {state.task_id} was accepted by app-service: it waits for its outcome"
            )
        raise _refuse(state, "interrupted")
    assert_never(command)


TASK: Decider[TaskState, TaskCommand, AnyTaskEvent] = Decider(
    commands=members(TaskCommand), decide=decide, evolve=evolve
)
