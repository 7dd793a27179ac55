"""The service's singleton jobs as roles held by lease (see market_ledger.service.roles).

Every instance serves HTTP, takes NATS messages from the shared durable consumer and sends
its own task requests; these jobs run on one instance at a time, whichever holds the role:

* ``cycle``: the pipeline scheduler, its appends fenced by the lease in the store;
* ``projector``: the projector child process, each batch fenced by the lease;
* ``notifier``: the notifier, its position and announced hashes fenced by the lease;
* ``tasks``: the task sweep (deadlines, unanswered calls, checks against app-service's list,
  the tasks of instances that are gone).

Each instance also says it is alive (:func:`heartbeat`), so that the tasks role knows whose
queued tasks went with their instance.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import attrs

from market_ledger.bootstrap import Ledger
from market_ledger.projections import role_leases as leases
from market_ledger.projections.role_leases import Lease
from market_ledger.service.fencing import writing_under
from market_ledger.service.roles import Job, LeaseSettings, RoleHolder, RoleObserver

log = logging.getLogger("market_ledger")

CYCLE, PROJECTOR, NOTIFIER, TASKS = leases.ROLES


def lease_settings(ledger: Ledger) -> LeaseSettings:
    settings = ledger.settings
    ttl = settings.lease_ttl
    return LeaseSettings(
        ttl_seconds=ttl,
        retry_seconds=settings.lease_retry,
        margin_seconds=min(1.0, ttl / 6),
        sole_instance=settings.database_url.startswith("sqlite:///"),
    )


def fenced(job: Callable[[asyncio.Event, Lease], Awaitable[None]]) -> Job:
    """The job, with every event it appends checked against its lease in the store."""

    async def run(stop: asyncio.Event, lease: Lease) -> None:
        writing_under.set(lease)  # this task's context, and the threads it starts
        await job(stop, lease)

    return run


@attrs.define
class ServiceRoles:
    ledger: Ledger
    observer: RoleObserver | None = None
    holders: dict[str, RoleHolder] = attrs.field(factory=dict)

    def add(self, role: str, job: Job) -> None:
        self.holders[role] = RoleHolder(
            role, self.ledger.settings.instance_id, self.ledger.writer, job,
            lease_settings(self.ledger), observer=self.observer,
        )  # fmt: skip

    def held(self, role: str) -> bool:
        holder = self.holders.get(role)
        return holder is not None and holder.state.held

    def tasks(self, stop: asyncio.Event) -> list[asyncio.Task[Any]]:
        """One asyncio task per role, and the heartbeat."""
        running = [
            asyncio.create_task(holder.run(stop), name=f"role {role}")
            for role, holder in self.holders.items()
        ]
        running.append(asyncio.create_task(self.heartbeat(stop), name="heartbeat"))
        return running

    async def heartbeat(self, stop: asyncio.Event) -> None:
        """Say this instance is alive every third of a lease; forget it on the way out."""
        me = self.ledger.settings.instance_id
        every = self.ledger.settings.lease_ttl / 3

        def beat() -> None:
            with self.ledger.writer.begin() as conn:
                leases.heartbeat(conn, me)

        try:
            while not stop.is_set():
                try:
                    await asyncio.to_thread(beat)
                except Exception as error:  # the store, most likely: said, and tried again
                    log.warning("the instance heartbeat failed: %s", error)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), every)
        finally:
            with contextlib.suppress(Exception), self.ledger.writer.begin() as conn:
                leases.forget_instance(conn, me)

    async def live_instances(self) -> set[str]:
        """The instances alive now, by their heartbeats (none missed for two leases)."""
        within = 2 * self.ledger.settings.lease_ttl

        def read() -> set[str]:
            with self.ledger.writer.begin() as conn:
                return leases.live_instances(conn, within)

        return await asyncio.to_thread(read)
