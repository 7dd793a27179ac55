"""The dispatcher: sends queued tasks to app-service, one at a time per app, apps in parallel.

Tasks of one user's app run in the order they were requested; different apps run at once,
up to ``TaskSettings.concurrency`` calls, so one slow or hung call (each has a timeout) holds
back its own app and one of those slots, until its timeout, and nothing else. Every step is
committed before the next: ``TaskDispatched`` before the call, then ``TaskAccepted`` or
``TaskRejected`` with the answer. A call without a known answer (a timeout) is reconciled
against app-service's list of apps, never re-sent.

A cancel of an install still in the queue (behind its app's call in flight, or waiting for
a free slot) takes it off the queue and is done without calling app-service; a cancel of an
install already sent goes to app-service right after the install's call.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, suppress
from datetime import datetime, timedelta
from typing import Any, Protocol

import attrs
from sqlalchemy.engine import Connection

from market_ledger.domain.decider import Command
from market_ledger.domain.task import (
    AcceptTask,
    DequeueTask,
    DispatchTask,
    InterruptTask,
    ReconcileTask,
    RejectTask,
    SettleCancelInQueue,
)
from market_ledger.domain.task_events import CANCEL, CANCELABLE, TaskStatus
from market_ledger.domain.task_outcomes import taken_by_app_service
from market_ledger.projections.schema import ViewTables
from market_ledger.service.app_operations import (
    Accepted,
    AnswerUnknown,
    AppOperations,
    Operation,
)
from market_ledger.service.handler import Outcome
from market_ledger.service.open_tasks import OpenTasks
from market_ledger.service.ports import RemoteError
from market_ledger.service.remote_values import InstalledApps

log = logging.getLogger(__name__)

Lane = tuple[str, str]


@attrs.frozen
class TaskSettings:
    #: app-service calls in flight at once, across apps
    concurrency: int = 8
    #: an accepted task with no outcome after this long is timed out
    outcome_deadline: timedelta = timedelta(minutes=30)
    #: how often deadlines, unanswered calls and long-accepted tasks are looked at
    sweep_seconds: float = 30.0
    #: accepted tasks older than this are checked against app-service's list of apps
    check_after: timedelta = timedelta(seconds=30)
    #: how long a ``"sync": true`` request waits for acceptance or rejection
    sync_wait_seconds: float = 60.0


class TaskHandler(Protocol):
    def handle(self, *commands: Command) -> Outcome: ...

    def state_of(self, command: Command) -> Any: ...


class TaskLedger(Protocol):
    """What the tasks need of the wired ledger."""

    @property
    def handler(self) -> TaskHandler: ...

    @property
    def tables(self) -> ViewTables: ...

    @property
    def open_tasks(self) -> OpenTasks: ...

    def read(self) -> AbstractContextManager[Connection]: ...


def app_status(apps: InstalledApps, user: str, name: str) -> tuple[bool, str]:
    """Whether ``user``'s app ``name`` is in app-service's list, and its state."""
    for app in apps.apps:
        if app.owner == user and app.name == name:
            return True, app.state
    return False, ""


class Dispatcher:
    def __init__(
        self,
        ledger: TaskLedger,
        operations: AppOperations | None,
        settings: TaskSettings,
        clock: Callable[[], datetime],
        *,
        instance: str = "",
    ) -> None:
        self.ledger = ledger
        #: this instance's name: the tasks it queues hold their tokens here
        self.instance = instance
        self.operations = operations
        self.settings = settings
        self.clock = clock
        self._lanes: dict[Lane, deque[str]] = {}
        self._draining: set[Lane] = set()
        #: queued and in-flight operations, token and env values included: memory only
        self._pending: dict[str, Operation] = {}
        self._in_flight: set[str] = set()
        #: sent without a known answer: reconciled by the next sweep
        self.unanswered: set[str] = set()
        self._slots: asyncio.Semaphore | None = None
        self._settled = asyncio.Condition()
        self._workers: set[asyncio.Task[None]] = set()

    @property
    def can_dispatch(self) -> bool:
        return self.operations is not None

    def holds(self, task_id: str) -> bool:
        """Whether the task is queued or in flight in this process."""
        return task_id in self._pending or task_id in self._in_flight

    # --- queueing ------------------------------------------------------------------------

    def enqueue(self, task_id: str, operation: Operation) -> None:
        """Queue a recorded task (call from the event loop)."""
        lane = (operation.user, operation.app_name)
        queue = self._lanes.setdefault(lane, deque())
        self._pending[task_id] = operation
        if operation.kind == CANCEL:
            queued = [t for t in queue if self._pending[t].kind in CANCELABLE]
            if queued:
                for removed in queued:
                    queue.remove(removed)
                    self._pending.pop(removed, None)
                self._pending.pop(task_id, None)
                self._spawn(self._settle_in_queue(task_id, queued))
                return
            queue.appendleft(task_id)  # right after the call in flight, if any
        else:
            queue.append(task_id)
        if lane not in self._draining:
            self._draining.add(lane)
            self._spawn(self._drain(lane))

    def _spawn(self, work: Any) -> None:
        worker = asyncio.create_task(work)
        self._workers.add(worker)
        worker.add_done_callback(self._finished)

    def _finished(self, worker: asyncio.Task[None]) -> None:
        self._workers.discard(worker)
        if not worker.cancelled() and worker.exception() is not None:
            log.error("a task worker failed", exc_info=worker.exception())

    async def _drain(self, lane: Lane) -> None:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.settings.concurrency)
        try:
            while self._lanes.get(lane):
                # The lane's next task leaves the queue only once a slot is free: until it
                # is sent, a cancel can still take it off.
                async with self._slots:
                    queue = self._lanes.get(lane)
                    if not queue:
                        break
                    task_id = queue.popleft()
                    operation = self._pending.pop(task_id, None)
                    if operation is None:
                        continue
                    self._in_flight.add(task_id)
                    try:
                        await self._send(task_id, operation)
                    except Exception:
                        log.exception("task %s: sending it failed; it is reconciled later", task_id)
                        self.unanswered.add(task_id)
                    finally:
                        self._in_flight.discard(task_id)
        finally:
            self._draining.discard(lane)
            if not self._lanes.get(lane):
                self._lanes.pop(lane, None)

    async def _settle_in_queue(self, cancel_id: str, removed: Sequence[str]) -> None:
        commands: list[Command] = [DequeueTask(t, canceled_by=cancel_id) for t in removed]
        commands.append(SettleCancelInQueue(cancel_id, removed_task=removed[0]))
        await self._commit(*commands)

    # --- sending -------------------------------------------------------------------------

    async def _send(self, task_id: str, operation: Operation) -> None:
        """Dispatch, call and record the answer (in one of the slots, taken by the caller)."""
        assert self.operations is not None
        dispatched = await self._commit(DispatchTask(task_id))
        if dispatched.rejections:
            log.warning("task %s not sent: %s", task_id, dispatched.rejections[0].reason)
            return
        if not dispatched.events:
            # dispatched already, by whoever recorded it first: the call is theirs to make
            log.warning("task %s was dispatched already; not sent again", task_id)
            return
        try:
            answer = await self.operations.submit(operation)
        except AnswerUnknown as unknown:
            # app-service may take a moment to list what it took: the next sweep looks
            log.warning(
                "task %s: no answer from app-service (%s); reconciled at the next sweep",
                task_id,
                unknown,
            )
            self.unanswered.add(task_id)
            return
        if isinstance(answer, Accepted):
            await self._commit(AcceptTask(task_id, op_id=answer.op_id))
        else:
            await self._commit(
                RejectTask(task_id, reason=answer.reason, backend_answer=answer.answer)
            )

    async def reconcile(self, task_id: str, why: str) -> None:
        """Settle a task sent without a known answer from app-service's list of apps: taken
        (accepted, waiting for its outcome) or not (interrupted); kept for the next sweep
        when the list cannot be read."""
        assert self.operations is not None
        found = self.ledger.open_tasks.get(task_id)
        if found is None or found.state != TaskStatus.DISPATCHED:
            self.unanswered.discard(task_id)
            return
        try:
            apps = await self.operations.all_apps()
        except RemoteError as error:
            log.warning("task %s stays unreconciled: %s", task_id, error)
            self.unanswered.add(task_id)
            return
        self.unanswered.discard(task_id)
        present, state = app_status(apps, found.user, found.app_name)
        if taken_by_app_service(found.kind, present, state):
            await self._commit(ReconcileTask(task_id, found=state if present else "absent"))
        else:
            await self._commit(
                InterruptTask(
                    task_id,
                    reason=f"{why}, and app-service shows no sign of the request; "
                    "it was not sent again: ask again",
                )
            )

    # --- committing and waiting ----------------------------------------------------------

    async def _commit(self, *commands: Command) -> Outcome:
        outcome = await asyncio.to_thread(self.ledger.handler.handle, *commands)
        self.ledger.open_tasks.apply(outcome.events)
        async with self._settled:
            self._settled.notify_all()
        return outcome

    async def commit(self, *commands: Command) -> Outcome:
        """Handle task commands and follow their events (for the sweep and the recovery)."""
        return await self._commit(*commands)

    async def wait_answered(self, task_id: str, timeout: float) -> Any:
        """The task's state once app-service's answer is recorded (accepted, rejected or
        any later step), read from its events; None if that takes longer than ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            state = await asyncio.to_thread(self.ledger.handler.state_of, DispatchTask(task_id))
            if state is not None and state.status not in (
                TaskStatus.REQUESTED,
                TaskStatus.DISPATCHED,
            ):
                return state
            left = deadline - loop.time()
            if left <= 0:
                return None
            async with self._settled:
                # another instance may answer it: look again at least twice a second
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._settled.wait(), min(left, 0.5))

    async def stop(self) -> None:
        """Stop sending: calls in flight are abandoned (their tasks stay dispatched and are
        reconciled by the next run), queued tasks stay queued (and are interrupted by the
        next run: their tokens go with this process)."""
        for worker in list(self._workers):
            worker.cancel()
        for worker in list(self._workers):
            with suppress(asyncio.CancelledError):
                await worker  # a worker logs its own failures
