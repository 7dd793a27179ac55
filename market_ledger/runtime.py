"""The long-running parts, wired: ``sync --once`` and ``serve``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from typing import Any

import httpx

from domain import commands as c
from domain.handler import utc_now
from market_ledger.bootstrap import Ledger
from pipeline.context import CycleContext, RemoteSystems
from pipeline.cycle import Cycle
from pipeline.scheduler import Scheduler

log = logging.getLogger("market_ledger")

#: how often the service brings the views to the head of the log between cycles
PROJECTOR_POLL_SECONDS = 0.1


def register_configured_users(ledger: Ledger) -> None:
    """Users named in ``USER_LIST`` are registered on start (once; again is a no-op)."""
    if ledger.settings.user_list:
        outcome = ledger.handler.handle(*(c.RegisterUser(u) for u in ledger.settings.user_list))
        for event in outcome.events:
            log.info("registered user %s from USER_LIST", getattr(event, "name", "?"))


def standard_cycle(ledger: Ledger, publish: Any = None) -> Cycle:
    return Cycle.standard(
        sync_interval=ledger.settings.sync_interval,
        hydration_concurrency=ledger.settings.hydration_concurrency,
        publish=publish,
    )


def http_client(concurrency: int = 16) -> httpx.AsyncClient:
    """The connection pool every remote call of the running loop shares.

    Sized to the render workers (plus a few for the other phases): the pool scans its
    connections on every request, so idle extra connections cost CPU on every render.
    """
    size = concurrency + 4
    return httpx.AsyncClient(
        limits=httpx.Limits(max_connections=size, max_keepalive_connections=size)
    )


class Runtime:
    def sync_once(self, ledger: Ledger) -> dict[str, Any]:
        """One full cycle; failures of sources or renders are in the summary, not raised."""
        register_configured_users(ledger)
        return asyncio.run(self._sync_once(ledger))

    async def _sync_once(self, ledger: Ledger) -> dict[str, Any]:
        async with http_client(ledger.settings.hydration_concurrency) as http:
            remote = RemoteSystems.from_settings(ledger.settings, http)
            context = CycleContext(ledger, remote, clock=utc_now)
            return await standard_cycle(ledger).run(context)

    def serve(self, ledger: Ledger, http: str | None) -> None:
        asyncio.run(self._serve(ledger, http))

    async def _serve(self, ledger: Ledger, http: str | None) -> None:
        async with http_client(ledger.settings.hydration_concurrency) as client:
            await self._serve_with(
                ledger, http, RemoteSystems.from_settings(ledger.settings, client)
            )

    async def _serve_with(self, ledger: Ledger, http: str | None, remote: RemoteSystems) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        register_configured_users(ledger)
        context = CycleContext(ledger, remote, clock=utc_now, stop=stop)
        scheduler = Scheduler(
            standard_cycle(ledger),
            context,
            ledger.settings.pipeline_interval,
            on_summary=lambda summary: log.info("cycle done: %s", json.dumps(summary)),
        )
        if not ledger.settings.nats_url:
            log.info("NATS is off: no NATS_URL (or NATS_HOST) is configured")
        log.info(
            "serving: cycle every %.0f s, hydration concurrency %d, chart-repo %s, app-service %s",
            ledger.settings.pipeline_interval,
            ledger.settings.hydration_concurrency,
            ledger.settings.chart_repo_host or "off (renders in process)",
            ledger.settings.app_service_host or "off",
        )
        tasks = [
            asyncio.create_task(scheduler.run(), name="scheduler"),
            asyncio.create_task(_keep_views_current(ledger, stop), name="projector"),
        ]
        await stop.wait()
        log.info("stopping: finishing the step in flight")
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await asyncio.to_thread(ledger.catch_up)
        log.info("stopped after %d cycle(s)", scheduler.cycles)


async def _keep_views_current(ledger: Ledger, stop: asyncio.Event) -> None:
    """Apply new events as they come (NATS intake, CLI commands) between cycles."""
    while not stop.is_set():
        try:
            await asyncio.to_thread(ledger.catch_up)
        except Exception:
            log.exception("projector failed; retrying")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), PROJECTOR_POLL_SECONDS)
