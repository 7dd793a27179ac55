"""What happens to tasks between requests: recovery on start, then a sweep now and then.

On start nothing is re-sent: a queued task's token and env values were in the memory of the
process that stopped, so it is interrupted with a reason the user can read; a task sent
without a known answer is reconciled against app-service's list of apps; an accepted task
keeps waiting for its outcome.

The sweep runs at once on start, then every ``sweep_seconds``: an accepted task past its
deadline is timed out; calls left without an answer are reconciled; an accepted task older
than ``check_after`` is checked against app-service's list of apps (the app running ends an
install, clone or upgrade; the app gone ends an uninstall or a cancel). A reconciled task
is checked from the sweep that reconciled it on: no message names its operation, and the
message that ended it may have been taken in while it was still unanswered (after a
restart, the stream hands over at once what app-service published while the market was
down).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from market_ledger.domain.canonical import parse_instant
from market_ledger.domain.decider import Command
from market_ledger.domain.task import InterruptTask, ObserveOutcome, TimeOutTask
from market_ledger.domain.task_events import TaskStatus
from market_ledger.domain.task_outcomes import endings_seen_by_correction
from market_ledger.projections import task_reads
from market_ledger.service.open_tasks import open_task_of
from market_ledger.service.ports import RemoteError
from market_ledger.service.task_dispatcher import Dispatcher, app_status

log = logging.getLogger(__name__)

RESTARTED_QUEUED = (
    "the market restarted before this task was sent to app-service; the user's token is kept "
    "only in memory, so nothing was sent: ask again"
)
RESTARTED_IN_FLIGHT = "the market restarted while app-service was being asked"
UNANSWERED = "app-service's answer was not known"
_WITHIN_THE_SECOND = timedelta(seconds=1) - timedelta(microseconds=1)


def listed_at(status_time: datetime | None, now: datetime) -> datetime:
    """When app-service's list saw an app's state, at the latest.

    The list gives whole seconds: the state was reached within the second named, so a
    state reached in the very second a task was sent is not taken for an older one (the
    task would wait for its deadline although its operation ended)."""
    if status_time is None:
        return now
    if status_time.microsecond:
        return status_time
    return min(now, status_time + _WITHIN_THE_SECOND)


#: the instances alive now, by their own word (see market_ledger.projections.role_leases)
LiveInstances = Callable[[], Awaitable[set[str]]]


async def nobody_else() -> set[str]:
    """One instance alone: no other holds a task's token."""
    return set()


class TaskWatch:
    def __init__(self, dispatcher: Dispatcher, live: LiveInstances = nobody_else) -> None:
        self.dispatcher = dispatcher
        self.live = live
        self.ledger = dispatcher.ledger
        self.settings = dispatcher.settings
        #: the tasks the previous run left in flight, until they are reconciled
        self._left_in_flight: set[str] = set()

    async def run(self, stop: asyncio.Event) -> None:
        """Sweep at once (what :meth:`recover` left unanswered is settled, and what passed
        its deadline while the service was down is timed out), then every
        ``sweep_seconds`` until ``stop``; a failed sweep is logged and made again."""
        while not stop.is_set():
            try:
                await self.sweep()
            except Exception:
                log.exception(
                    "the task sweep failed; it runs again in %s s", self.settings.sweep_seconds
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.sweep_seconds)

    def _load_open(self) -> None:
        with self.ledger.read() as conn:
            rows = task_reads.open_tasks(conn, self.ledger.tables)
        found = [open_task_of(row, parse_instant) for row in rows]
        self.ledger.open_tasks.refresh(found, self.dispatcher.instance)

    async def recover(self) -> None:
        """Load the open tasks and interrupt those queued by the previous run (the views must
        have caught up); tasks it left in flight are reconciled when :meth:`run` starts."""
        await asyncio.to_thread(self._load_open)
        await self.settle_orphans()

    async def settle_orphans(self) -> None:
        """Interrupt the queued tasks, and reconcile those in flight, whose instance is gone
        with their tokens: this one's previous run, or another that stopped saying it is
        alive. Another live instance's tasks are its own business."""
        live = await self.live()
        interrupted: list[Command] = []
        for found in self.ledger.open_tasks.all():
            if self.dispatcher.holds(found.task_id):
                continue
            elsewhere = found.instance and found.instance != self.dispatcher.instance
            if elsewhere and found.instance in live:
                continue
            if found.state == TaskStatus.REQUESTED:
                interrupted.append(InterruptTask(found.task_id, RESTARTED_QUEUED))
            elif (
                found.state == TaskStatus.DISPATCHED
                and found.task_id not in self.dispatcher.unanswered
            ):
                self.dispatcher.unanswered.add(found.task_id)
                self._left_in_flight.add(found.task_id)
        if interrupted:
            log.warning("interrupting %d task(s) queued before the restart", len(interrupted))
            await self.dispatcher.commit(*interrupted)

    async def sweep(self) -> None:
        await asyncio.to_thread(self._load_open)  # other instances' tasks, as the views have them
        await self.settle_orphans()
        await self._time_out()
        await self._reconcile_unanswered()
        await self._check_accepted()

    async def _reconcile_unanswered(self) -> None:
        if not self.dispatcher.can_dispatch:
            return
        for task_id in sorted(self.dispatcher.unanswered):
            if not self.dispatcher.holds(task_id):
                restarted = task_id in self._left_in_flight
                why = RESTARTED_IN_FLIGHT if restarted else UNANSWERED
                await self.dispatcher.reconcile(task_id, why)
                if task_id not in self.dispatcher.unanswered:
                    self._left_in_flight.discard(task_id)

    async def _time_out(self) -> None:
        now = self.dispatcher.clock()
        deadline = self.settings.outcome_deadline
        due = [
            TimeOutTask(found.task_id, deadline=deadline)
            for found in self.ledger.open_tasks.all()
            if found.accepted
            and found.accepted_at is not None
            and now - found.accepted_at >= deadline
        ]
        if due:
            log.warning("%d task(s) had no outcome within %s: timed out", len(due), deadline)
            await self.dispatcher.commit(*due)

    async def _check_accepted(self) -> None:
        operations = self.dispatcher.operations
        if operations is None:
            return
        now = self.dispatcher.clock()
        waiting = [
            found
            for found in self.ledger.open_tasks.all()
            if found.accepted
            and found.accepted_at is not None
            and (not found.op_id or now - found.accepted_at >= self.settings.check_after)
        ]
        if not waiting:
            return
        try:
            apps = await operations.all_apps()
        except RemoteError as error:
            log.warning("accepted tasks not checked this time: %s", error)
            return
        closing: list[Command] = []
        for found in waiting:
            present, state = app_status(apps, found.user, found.app_name)
            observed_at = now
            for app in apps.apps:
                if (app.owner, app.name) == (found.user, found.app_name):
                    observed_at = listed_at(app.status_time or app.update_time, now)
            for ending in endings_seen_by_correction(present, state):
                if ending.kind == found.kind:
                    closing.append(
                        ObserveOutcome(
                            found.task_id,
                            outcome=ending.outcome,
                            app_state=state if present else "absent",
                            observed_at=observed_at,
                        )
                    )
        if closing:
            await self.dispatcher.commit(*closing)
