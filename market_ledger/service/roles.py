"""A singleton job held by lease: run it only while this instance holds its role.

Each role (the cycle, the projector, the notifier, the task sweep) runs on one instance at a
time. :class:`RoleHolder` tries to take the role's lease every ``retry_seconds``; holding it,
it runs the job and renews the lease every ``ttl / 3``. The job is stopped, before anyone else
can take the role, when a renewal fails or when the lease would expire by this instance's own
clock before it could renew (a paused process resumes past its deadline and stops at once);
the writes the job makes check the lease's token in their own transaction, so a write in
flight from a holder that lost the lease is refused by the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from contextlib import AbstractContextManager
from typing import Any, Protocol

import attrs
from sqlalchemy.engine import Connection

from market_ledger.projections import role_leases as leases
from market_ledger.projections.role_leases import Lease

log = logging.getLogger(__name__)

#: a job: runs until its stop event is set, writing only while ``lease`` holds
Job = Callable[[asyncio.Event, Lease], Coroutine[Any, Any, None]]


class RoleObserver(Protocol):
    """Told when this instance takes or lets go of a role, and of each renewal (metrics)."""

    def changed(self, role: str, held: bool) -> None: ...

    def renewed(self, role: str) -> None: ...


class _Unobserved:
    def changed(self, role: str, held: bool) -> None:
        pass

    def renewed(self, role: str) -> None:
        pass


class LeaseStore(Protocol):
    def begin(self) -> AbstractContextManager[Connection]: ...


@attrs.frozen
class LeaseSettings:
    #: how long a lease lasts unless renewed (every third of it)
    ttl_seconds: float = 6.0
    #: how often an instance that does not hold the role tries to take it
    retry_seconds: float = 1.0
    #: the job stops this long before the lease would expire unrenewed
    margin_seconds: float = 1.0
    #: the only instance a store may have (SQLite): a lease left by a previous run is taken
    #: at once instead of waiting for it to expire
    sole_instance: bool = False


@attrs.define
class RoleState:
    """What ``status`` shows of a role on this instance."""

    held: bool = False
    lease: Lease | None = None
    changes: int = 0
    renewals: int = 0


class RoleHolder:
    def __init__(
        self,
        role: str,
        holder: str,
        store: LeaseStore,
        job: Job,
        settings: LeaseSettings,
        monotonic: Callable[[], float] = time.monotonic,
        observer: RoleObserver | None = None,
    ) -> None:
        self.role = role
        self.holder = holder
        self.store = store
        self.job = job
        self.settings = settings
        self.monotonic = monotonic
        self.observer: RoleObserver = observer or _Unobserved()
        self.state = RoleState()

    async def run(self, stop: asyncio.Event) -> None:
        """Take the role whenever it is free, until ``stop``; give it up on the way out."""
        while not stop.is_set():
            lease = await self._acquire()
            if lease is None:
                await _pause(stop, self.settings.retry_seconds)
                continue
            log.info("%s: took the role %s (token %d)", self.holder, self.role, lease.token)
            self._held(lease)
            try:
                await self._hold(lease, stop)
            finally:
                self.state.held = False
                self.state.changes += 1
                self.observer.changed(self.role, False)
            if stop.is_set():
                with contextlib.suppress(Exception):
                    await self._call(leases.release, self.state.lease or lease)
                log.info("%s: released the role %s", self.holder, self.role)

    async def _acquire(self) -> Lease | None:
        steal = self.settings.sole_instance

        def work() -> Lease | None:
            with self.store.begin() as conn:
                return leases.try_acquire(conn, self.role, self.holder, self.ttl, steal=steal)

        return await asyncio.to_thread(work)

    @property
    def ttl(self) -> float:
        return self.settings.ttl_seconds

    def _held(self, lease: Lease) -> None:
        self.state.held = True
        self.state.lease = lease
        self.state.changes += 1
        self.observer.changed(self.role, True)

    async def _hold(self, lease: Lease, stop: asyncio.Event) -> None:
        job_stop = asyncio.Event()
        job = asyncio.create_task(self.job(job_stop, lease), name=f"role {self.role}")
        renewed_at = self.monotonic()
        try:
            while not stop.is_set() and not job.done():
                deadline = renewed_at + self.ttl - self.settings.margin_seconds
                wait = min(self.ttl / 3, max(0.0, deadline - self.monotonic()))
                await _pause(stop, wait, job)
                if stop.is_set() or job.done():
                    break
                started = self.monotonic()
                if started > deadline:
                    log.warning("%s: the lease on %s ran out unrenewed", self.holder, self.role)
                    return
                try:
                    fresh = await self._call(leases.renew, lease, self.ttl)
                except Exception as error:
                    log.warning("%s: renewing %s failed: %s", self.holder, self.role, error)
                    continue  # tried again until the deadline
                if fresh is None:
                    log.warning("%s: lost the role %s", self.holder, self.role)
                    return
                lease, renewed_at = fresh, started
                self.state.lease = fresh
                self.state.renewals += 1
                self.observer.renewed(self.role)
        finally:
            # The job may finish its step within half the margin; then it is cancelled, still
            # before the lease runs out and another instance can take the role.
            job_stop.set()
            await asyncio.wait({job}, timeout=self.settings.margin_seconds / 2)
            if not job.done():
                job.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await job  # a job's failure is raised to the caller

    async def _call(self, operation: Callable[..., object], *args: object) -> Lease | None:
        def work() -> Lease | None:
            with self.store.begin() as conn:
                result = operation(conn, *args)
            return result if isinstance(result, Lease) else None

        return await asyncio.to_thread(work)


async def _pause(
    stop: asyncio.Event, seconds: float, job: asyncio.Task[None] | None = None
) -> None:
    stopped = asyncio.ensure_future(stop.wait())
    waits: set[asyncio.Future[Any]] = {stopped}
    if job is not None:
        waits.add(job)
    await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
