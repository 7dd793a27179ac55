"""The long-running parts, wired: ``sync --once`` and ``serve``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from typing import Any

from market_ledger.adapters.event_store.single_instance import (
    AnotherServeRuns,
    one_serve_per_sqlite_store,
)
from market_ledger.adapters.health import HealthBoard
from market_ledger.adapters.http_api.server import bind_socket, create_app, serve_http
from market_ledger.adapters.metrics import PrometheusCycleMetrics, PrometheusRoleMetrics
from market_ledger.adapters.nats.connection import NatsConnection
from market_ledger.adapters.nats.intake import NatsIntake
from market_ledger.adapters.nats.notifications import NatsNotices
from market_ledger.adapters.nats.publisher import NatsPublisher
from market_ledger.bootstrap import Ledger, connection_pool, remote_systems, task_settings
from market_ledger.projections.role_leases import Lease
from market_ledger.projector_process import ProjectorProcess, ProjectorSupervisor
from market_ledger.service.context import CycleContext, RemoteSystems
from market_ledger.service.cycle import Cycle, describe
from market_ledger.service.handler import utc_now
from market_ledger.service.notifier import Notifier
from market_ledger.service.scheduler import Scheduler
from market_ledger.service.task_dispatcher import Dispatcher
from market_ledger.service.task_requests import TaskRequests
from market_ledger.service.task_watch import TaskWatch
from market_ledger.service.users import register_missing_users
from market_ledger.service_roles import CYCLE, NOTIFIER, PROJECTOR, TASKS, ServiceRoles, fenced
from market_ledger.views_upgrade import ViewsUpgrade
from market_ledger.watched_handler import WatchedHandler

log = logging.getLogger("market_ledger")

#: how often notifications are looked for between cycles
NOTIFY_POLL_SECONDS = 0.2
#: the exit status of ``serve`` when it stopped because a part of it failed
EXIT_FAILED = 1


def register_configured_users(ledger: Ledger) -> None:
    """Users named in ``USER_LIST`` are registered on start, once: a user already registered
    keeps the role and zone given since (an admin made by ``user add NAME --role admin`` is
    not demoted by the next start)."""
    for name in register_missing_users(ledger.handler, ledger.settings.user_list):
        log.info("registered user %s from USER_LIST", name)


def standard_cycle(ledger: Ledger, publish: Any = None) -> Cycle:
    return Cycle.standard(
        sync_interval=ledger.settings.sync_interval,
        hydration_concurrency=ledger.settings.hydration_concurrency,
        publish=publish,
    )


class Runtime:
    def sync_once(self, ledger: Ledger) -> dict[str, Any]:
        """One full cycle; failures of sources or renders are in the summary, not raised."""
        register_configured_users(ledger)
        return asyncio.run(self._sync_once(ledger))

    async def _sync_once(self, ledger: Ledger) -> dict[str, Any]:
        async with connection_pool(ledger.settings.hydration_concurrency) as http:
            remote = remote_systems(ledger.settings, http)
            context = CycleContext(ledger, remote, clock=utc_now, metrics=PrometheusCycleMetrics())
            return await standard_cycle(ledger).run(context)

    def serve(self, ledger: Ledger, http: str | None) -> None:
        """Run until SIGTERM/SIGINT (exit status 0) or until a part of the service fails
        (a one-line error, then exit status 1). A SQLite store is served by one instance: a
        second ``serve`` on it stops at once, saying so."""
        try:
            with one_serve_per_sqlite_store(ledger.settings.database_url):
                code = asyncio.run(self._serve(ledger, http))
        except AnotherServeRuns as refused:
            log.error("%s", refused)
            code = EXIT_FAILED
        if code != 0:
            raise SystemExit(code)

    async def _serve(self, ledger: Ledger, http: str | None) -> int:
        async with connection_pool(ledger.settings.hydration_concurrency) as client:
            return await self._serve_with(ledger, http, remote_systems(ledger.settings, client))

    async def _serve_with(self, ledger: Ledger, http: str | None, remote: RemoteSystems) -> int:
        # The port first: a busy one stops the service before anything else has started.
        listening = None
        host = ""
        if http:
            host, _, port = http.rpartition(":")
            host = host or "127.0.0.1"
            try:
                listening = bind_socket(host, int(port))
            except OSError as error:
                log.error("the HTTP API cannot listen on %s:%s: %s", host, port, _why(error))
                return EXIT_FAILED
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        settings = ledger.settings
        health = HealthBoard()
        roles = ServiceRoles(ledger, observer=PrometheusRoleMetrics())
        process = ProjectorProcess(settings, ledger.schema)
        projector = ProjectorSupervisor(process, health)
        # Every write of the service wakes the projector instead of it polling for them.
        ledger.handler = WatchedHandler(
            ledger.handler, health, on_commit=lambda _position: projector.wake()
        )
        register_configured_users(ledger)

        upgrade = ViewsUpgrade(settings, ledger.schema)

        async def project(job_stop: asyncio.Event, lease: Lease) -> None:
            # The role's holder also builds the views anew when an older projection built them.
            process.lease = lease
            await asyncio.gather(projector.run(job_stop), upgrade.run(ledger, job_stop))

        roles.add(PROJECTOR, project)
        # Tasks: what the last run left open is settled before a new request is taken, and
        # known before the intake hands over the app states published while the service was
        # down (a state that ends an accepted task closes it only if the task is known).
        await asyncio.to_thread(ledger.catch_up)
        dispatcher = Dispatcher(
            ledger,
            remote.app_operations,
            task_settings(settings),
            utc_now,
            instance=settings.instance_id,
        )
        watch = TaskWatch(dispatcher, live=roles.live_instances)
        await watch.recover()
        desk = TaskRequests(ledger, dispatcher, utc_now)
        roles.add(TASKS, fenced(lambda job_stop, _lease: watch.run(job_stop)))
        tasks: list[asyncio.Task[Any]] = []
        connection = None
        notifying = NotifierRole()
        if settings.nats_url:
            connection = NatsConnection(settings.nats_url, name="market-ledger")
            health.watch("nats", connection.health_state)
            notices = NatsNotices(NatsPublisher(connection, settings.subject_market_state))

            async def notify(job_stop: asyncio.Event, lease: Lease) -> None:
                await notifying.run(Notifier(ledger, notices, lease=lease), job_stop)

            roles.add(NOTIFIER, notify)
            tasks.append(
                asyncio.create_task(
                    NatsIntake(ledger, settings, connection=connection).run(stop),
                    name="nats-intake",
                )
            )
        else:
            log.info("NATS is off: no NATS_URL (or NATS_HOST) is configured")
        schedulers: list[Scheduler] = []

        async def cycle(job_stop: asyncio.Event, _lease: Lease) -> None:
            context = CycleContext(
                ledger, remote, clock=utc_now, stop=job_stop, metrics=PrometheusCycleMetrics()
            )
            scheduler = Scheduler(
                standard_cycle(ledger, notifying.publish if settings.nats_url else None),
                context,
                settings.pipeline_interval,
                on_summary=_log_summary,
                health=health,
            )
            schedulers.append(scheduler)
            await scheduler.run()

        roles.add(CYCLE, fenced(cycle))
        tasks.extend(roles.tasks(stop))
        if listening is not None:
            tasks.append(
                asyncio.create_task(
                    serve_http(
                        create_app(ledger, health=health, tasks=desk),
                        host,
                        0,
                        stop,
                        on_listening=lambda p: log.info("HTTP API on http://%s:%d", host, p),
                        sock=listening,
                    ),
                    name="http",
                )
            )
        log.info(
            "serving: cycle every %g s, hydration concurrency %d, chart-repo %s, app-service %s",
            settings.pipeline_interval,
            settings.hydration_concurrency,
            settings.chart_repo_host or "off (renders in process)",
            settings.app_service_host or "off",
        )
        stopped = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({stopped, *tasks}, return_when=asyncio.FIRST_COMPLETED)
        code = 0
        for task in done - {stopped}:
            # A part that ends before the service was asked to stop has failed, whether it
            # raised or not: the service cannot do its job without it. (Asked to stop, a
            # part may end a moment before the stop itself is noticed here.)
            failure = task.exception()
            if failure is None and stop.is_set():
                continue
            why = f"{type(failure).__name__}: {failure}" if failure is not None else "it ended"
            log.error("%s failed (%s); stopping", task.get_name(), why)
            code = EXIT_FAILED
        stop.set()
        log.info("stopping: finishing the step in flight")
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await dispatcher.stop()
        if connection is not None:
            await connection.close()
        await asyncio.to_thread(ledger.catch_up)
        log.info("stopped after %d cycle(s)", sum(s.cycles for s in schedulers))
        return code


def _why(error: OSError) -> str:
    """``Address already in use`` rather than ``[Errno 98] Address already in use``."""
    return error.strerror or str(error) or type(error).__name__


def _log_summary(summary: dict[str, Any]) -> None:
    # A cycle that found nothing to do is a debug line: every 30 s, it would bury the rest.
    level = logging.DEBUG if _idle(summary) else logging.INFO
    log.log(level, "cycle: %s", describe(summary))
    log.debug("cycle summary: %s", json.dumps(summary))


def _idle(summary: dict[str, Any]) -> bool:
    phases = summary.get("phases", {})
    sync = phases.get("sync", {})
    return (
        not summary.get("failed_phases")
        and all(r.get("outcome") == "unchanged" for r in sync.get("sources", {}).values())
        and not sync.get("withdrawn")
        and not phases.get("hydrate", {}).get("due")
        and not phases.get("feed", {}).get("consumed")
        and not phases.get("status_correction", {}).get("corrections")
    )


class NotifierRole:
    """The notifier while this instance holds its role: its loop, and the cycle's notify
    phase, which publishes only here (one publication at a time, whoever asks)."""

    def __init__(self) -> None:
        self.notifier: Notifier | None = None
        self._lock = asyncio.Lock()

    async def publish(self) -> int:
        notifier = self.notifier
        if notifier is None:
            return 0  # another instance holds the role: it publishes
        async with self._lock:
            report = await notifier.publish_pending()
        return int(getattr(report, "published", 0))

    async def run(self, notifier: Notifier, stop: asyncio.Event) -> None:
        """Publish soon after events are projected, between cycles too, until ``stop``."""
        self.notifier = notifier
        try:
            while not stop.is_set():
                try:
                    await self.publish()
                except Exception:
                    log.exception("publishing notifications failed; retrying")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), NOTIFY_POLL_SECONDS)
        finally:
            self.notifier = None
