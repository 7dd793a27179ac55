"""Deploying a changed projection: the new version of the views builds while the old serves.

When the views were built by an older projection version than this code's
(market_ledger.projections.views_version), the instance that holds the projector role
builds a new generation from the log in a child process, the same rebuild that ``market-
ledger rebuild`` runs: fresh tables beside the serving ones, caught up to the head, then
switched in at once. Meanwhile the serving generation goes on answering reads and taking
the projector's batches; ``status`` shows both generations, their versions and positions.

Only the projector role's holder builds, so several instances never build twice; the
rebuild's own lock keeps an operator's ``market-ledger rebuild`` from running beside it
(the one that comes second gives way). The child dies with the service, and a build
killed at any step leaves the serving generation untouched: the next one starts over. A
build that fails is tried again after a growing pause.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
from typing import Any

from market_ledger.adapters.cli.rebuild_command import step_hook
from market_ledger.adapters.cli.support import logged_progress
from market_ledger.adapters.config import Settings
from market_ledger.adapters.logging_setup import configure_logging
from market_ledger.bootstrap import Ledger, bootstrap
from market_ledger.projections.generations import AnotherRebuildRuns
from market_ledger.projections.projector import read_position
from market_ledger.projections.views_version import VIEWS_VERSION, serving_version
from market_ledger.projector_process import die_with_parent, exited_or_stopped, how_it_ended
from market_ledger.service.reasons import error_reason

log = logging.getLogger("market_ledger.views")

#: the pause before a failed build is tried again; doubled after each failure up to the max
RETRY_FIRST_SECONDS = 30.0
RETRY_MAX_SECONDS = 600.0
#: how long a build gets to stop after SIGTERM before it is killed
STOP_TIMEOUT_SECONDS = 10.0
#: the exit status of a build that gave way to another rebuild running on the store
EXIT_GAVE_WAY = 3


def version_serving(ledger: Ledger) -> int | None:
    """The projection version of the serving views (None: empty views fit any version)."""
    with ledger.read() as conn:
        return serving_version(conn, ledger.tables, read_position(conn, ledger.tables))


def build_views(settings: Settings, schema: str | None, parent_pid: int) -> None:
    """The child: rebuild every view with this code's projection and switch them in."""
    die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the service decides when to stop
    configure_logging(os.environ)
    ledger = bootstrap(settings, schema=schema)
    try:
        serving = version_serving(ledger)
        if serving is None or serving >= VIEWS_VERSION:
            return  # another instance or an operator built them meanwhile
        try:
            # the rebuild's test-only stops (market_ledger.adapters.cli.rebuild_command) apply
            report = ledger.rebuild(progress=logged_progress(), at_step=step_hook(os.environ))
        except AnotherRebuildRuns as running:
            log.warning("views version %d: not built now: %s", VIEWS_VERSION, running)
            raise SystemExit(EXIT_GAVE_WAY) from None
        except Exception as error:  # said in one line, as the service says its failures
            log.error("views version %d: the build failed: %s", VIEWS_VERSION, error_reason(error))
            raise SystemExit(1) from None
        log.info(
            "views version %d built from %d events and switched in at position %d in %.1f s "
            "(they were version %d)",
            VIEWS_VERSION,
            report.events,
            report.position,
            report.seconds,
            serving,
        )
    finally:
        ledger.close()


class ViewsUpgrade:
    """While the projector role is held: build the views anew if an older version built them."""

    def __init__(
        self,
        settings: Settings,
        schema: str | None,
        *,
        retry_first: float = RETRY_FIRST_SECONDS,
        retry_max: float = RETRY_MAX_SECONDS,
    ) -> None:
        self.settings = settings
        self.schema = schema
        self.retry_first = retry_first
        self.retry_max = retry_max
        self._context = multiprocessing.get_context("spawn")
        #: how many builds this instance started (each one a child process)
        self.builds = 0

    async def run(self, ledger: Ledger, stop: asyncio.Event) -> None:
        """Until the views are this code's version (or newer), or ``stop``; never raises:
        a failed look or build is logged and tried again."""
        pause = self.retry_first
        while not stop.is_set():
            try:
                serving = await asyncio.to_thread(version_serving, ledger)
            except Exception as error:
                log.warning("the version of the views could not be read: %s", error)
                serving = -1
            else:
                if serving is None or serving == VIEWS_VERSION:
                    return
                if serving > VIEWS_VERSION:
                    log.warning(
                        "the views were built by projection version %d, newer than this "
                        "code's %d: left as they are (a newer instance serves them)",
                        serving,
                        VIEWS_VERSION,
                    )
                    return
                log.info(
                    "the views were built by projection version %d; this code builds %d: "
                    "building the new generation beside the serving one",
                    serving,
                    VIEWS_VERSION,
                )
                ended = await self._build(stop)
                if ended == 0 or stop.is_set():
                    continue  # the next look finds the version built, or the loop ends
                if ended == EXIT_GAVE_WAY:
                    log.info("another rebuild runs: looking again in %g s", pause)
                else:
                    log.error(
                        "building the views of version %d failed (the build %s); trying "
                        "again in %g s",
                        VIEWS_VERSION,
                        how_it_ended(ended),
                        pause,
                    )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pause)
            pause = min(pause * 2, self.retry_max)

    async def _build(self, stop: asyncio.Event) -> int | None:
        """Run one build child until it exits (its exit code) or ``stop`` (None)."""
        process: Any = self._context.Process(
            target=build_views,
            args=(self.settings, self.schema, os.getpid()),
            name="views-build",
        )
        process.start()  # from the event loop's thread: the child's death is tied to it
        self.builds += 1
        exited = False
        try:
            exited = await exited_or_stopped(process.sentinel, stop)
        finally:
            if process.is_alive():
                log.info("stopping the views build (pid %d)", process.pid)
                process.terminate()
            await asyncio.to_thread(process.join, STOP_TIMEOUT_SECONDS)
            if process.is_alive():
                process.kill()
                await asyncio.to_thread(process.join, 2.0)
        return process.exitcode if exited else None
