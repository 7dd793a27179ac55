"""The projector of a running service, in a process of its own, supervised.

Applying events and recomputing the hashes of the users they touch is the heaviest steady
work of the service; in its own process it does not take turns with the NATS intake and the
HTTP reads for one interpreter lock.

The child sleeps until it is woken: the service writes a byte on a pipe after each commit
(:meth:`ProjectorProcess.wake`), and the child applies what is new. Without a wake it looks
at the log head every :data:`IDLE_POLL_SECONDS` anyway, for events written by another
process (a CLI command, another replica).

The child dies with the service: on Linux the kernel kills it when its parent dies
(``PR_SET_PDEATHSIG``); everywhere, the wake pipe reaching its end or the parent pid changing
makes it exit. It reports its state (ok, or failing with the error) on a second pipe, which
the service's readiness shows. :class:`ProjectorSupervisor` restarts a child that exited,
with a growing pause, and logs it.

A batch is one transaction, so a child killed in the middle of one leaves the views at the
previous batch, and the next start goes on from there.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing
import os
import select
import signal
import sys
import threading
import time
from multiprocessing.connection import Connection
from types import FrameType
from typing import Any

from market_ledger.adapters.config import Settings
from market_ledger.adapters.health import HealthBoard
from market_ledger.adapters.logging_setup import configure_logging
from market_ledger.bootstrap import bootstrap
from market_ledger.projections.projector import Projector
from market_ledger.projections.role_leases import Lease
from market_ledger.service.reasons import error_reason

log = logging.getLogger(__name__)

#: how often an idle child looks at the log head when nothing woke it
IDLE_POLL_SECONDS = 0.5
#: how long a child waits after a failed batch before it tries again
FAILURE_PAUSE_SECONDS = 1.0
#: the first pause before a child that exited is started again; doubled up to the maximum
RESTART_FIRST_SECONDS = 1.0
RESTART_MAX_SECONDS = 30.0
#: a child that ran this long before exiting restarts after the first pause again
RESTART_STABLE_SECONDS = 60.0
#: how long a child gets to stop after SIGTERM before it is killed
STOP_TIMEOUT_SECONDS = 10.0

PART = "projector"
_PR_SET_PDEATHSIG = 1


# --- the child -------------------------------------------------------------------------------


def how_it_ended(exitcode: int | None) -> str:
    """How a child process ended: ``exited with code 1``, ``was killed by SIGKILL``."""
    if exitcode is None:
        return "stopped answering"
    if exitcode < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-exitcode).name}"
    return f"exited with code {exitcode}"


async def exited_or_stopped(sentinel: int, stop: asyncio.Event) -> bool:
    """Wait until the child behind ``sentinel`` exits or ``stop`` is set; whether it exited."""
    loop = asyncio.get_running_loop()
    exited = asyncio.Event()
    loop.add_reader(sentinel, exited.set)
    waiting = {asyncio.create_task(exited.wait()), asyncio.create_task(stop.wait())}
    try:
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waiting:
            task.cancel()
        loop.remove_reader(sentinel)
    return exited.is_set()


class ParentGone(SystemExit):
    """The service that started this child is gone: the child stops too."""

    def __init__(self) -> None:
        super().__init__(0)


def die_with_parent(parent_pid: int) -> None:
    """Ask the kernel to kill this process when its parent dies (Linux), and exit now if
    the parent is gone already (it may have died before the request took effect)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:
        raise ParentGone()


class _Wakeups:
    """The child's end of the wake pipe."""

    def __init__(self, connection: Connection, parent_pid: int) -> None:
        self.connection = connection
        self.fd = connection.fileno()
        self.parent_pid = parent_pid

    def wait(self, timeout: float) -> None:
        """Until a wake arrives or ``timeout`` passes; raises ParentGone if the parent is."""
        readable, _, _ = select.select([self.fd], [], [], timeout)
        if readable and not os.read(self.fd, 65536):
            raise ParentGone()  # every writer closed: the service is gone
        if os.getppid() != self.parent_pid:
            raise ParentGone()

    def pause(self, seconds: float) -> None:
        """Wait the whole of ``seconds`` (wakes do not cut a pause after a failure short)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.wait(left)


class _Reporter:
    """The child's end of the status pipe: sends its state when it changes."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.last: tuple[str, str | None] | None = None

    def send(self, state: str, reason: str | None = None) -> bool:
        """True when this is a change (it was sent)."""
        message = (state, reason)
        if message == self.last:
            return False
        self.last = message
        try:
            self.connection.send(message)
        except OSError as error:
            raise ParentGone() from error
        return True


def _exit(signum: int, frame: FrameType | None) -> None:
    sys.exit(0)


def run_projector(
    settings: Settings,
    schema: str | None,
    parent_pid: int,
    wake: Connection,
    status: Connection,
    idle_poll: float = IDLE_POLL_SECONDS,
    lease: Lease | None = None,
) -> None:
    """Keep the views at the head of the log until terminated or the parent is gone; with
    ``lease`` (the projector role's), every batch checks it in its own transaction."""
    die_with_parent(parent_pid)
    signal.signal(signal.SIGTERM, _exit)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the service decides when to stop
    configure_logging(os.environ)  # the parent's level, format and redaction
    reporter = _Reporter(status)
    wakeups = _Wakeups(wake, parent_pid)
    try:
        ledger = bootstrap(settings, schema=schema)  # which also collects cycles less often
    except Exception as error:
        reporter.send("failing", f"cannot open the store: {error_reason(error)}")
        raise
    ledger.projector.lease = lease
    try:
        while True:
            try:
                applied = _apply_what_is_new(ledger.projector)
            except Exception as error:
                if reporter.send("failing", error_reason(error)):
                    log.exception("projector failed; retrying every %g s", FAILURE_PAUSE_SECONDS)
                wakeups.pause(FAILURE_PAUSE_SECONDS)
                continue
            reporter.send("ok")
            if not applied:
                wakeups.wait(idle_poll)
    finally:
        ledger.close()


def _apply_what_is_new(projector: Projector) -> int:
    """Batches back to back until the views reach the head of the log; how many events were
    applied.

    Each batch reads the views' position once; the head is read only when a batch applied
    nothing (nothing new, or another projector applied it first), where ``catch_up`` reads
    it and the position again around every batch."""
    applied = 0
    while True:
        done = projector.run_batch()
        applied += done
        if not done and projector.position() >= projector.head():
            return applied


# --- the parent ------------------------------------------------------------------------------


class ProjectorProcess:
    """One projector child and the two pipes to it, as seen from the service."""

    def __init__(
        self,
        settings: Settings,
        schema: str | None = None,
        *,
        idle_poll: float = IDLE_POLL_SECONDS,
    ) -> None:
        self.settings = settings
        self.schema = schema
        self.idle_poll = idle_poll
        self._context = multiprocessing.get_context("spawn")
        self._process: Any = None
        self._wake: Connection | None = None
        self._status: Connection | None = None
        self._lock = threading.Lock()
        #: the projector role's lease the next child writes under (None: one instance alone)
        self.lease: Lease | None = None

    def start(self) -> None:
        """Start a child. Call it from the thread that lives as long as the service (the
        event loop's): the kernel ties the child's death to the thread that started it."""
        self.close_pipes()
        wake_reader, wake_writer = self._context.Pipe(duplex=False)
        status_reader, status_writer = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=run_projector,
            args=(
                self.settings,
                self.schema,
                os.getpid(),
                wake_reader,
                status_writer,
                self.idle_poll,
                self.lease,
            ),
            name="projector",
            daemon=True,
        )
        process.start()
        # Only the child holds these ends now: its exit closes the status pipe for us.
        wake_reader.close()
        status_writer.close()
        os.set_blocking(wake_writer.fileno(), False)
        with self._lock:
            self._process, self._wake, self._status = process, wake_writer, status_reader

    @property
    def pid(self) -> int | None:
        return None if self._process is None else int(self._process.pid)

    @property
    def sentinel(self) -> int:
        return int(self._process.sentinel)

    @property
    def status(self) -> Connection | None:
        return self._status

    @property
    def exitcode(self) -> int | None:
        return None if self._process is None else self._process.exitcode

    def join(self, timeout: float) -> None:
        if self._process is not None:
            self._process.join(timeout)

    def ended(self) -> str:
        return how_it_ended(self.exitcode)

    def alive(self) -> bool:
        return self._process is not None and bool(self._process.is_alive())

    def wake(self) -> None:
        """Tell the child there is something new; never blocks, from any thread."""
        with self._lock:
            if self._wake is None:
                return
            # A full pipe means wakes are pending already; a broken one, a child being
            # restarted (which reads the log from its position anyway).
            with contextlib.suppress(OSError):
                os.write(self._wake.fileno(), b"w")

    def close_pipes(self) -> None:
        with self._lock:
            wake, status = self._wake, self._status
            self._wake = self._status = None
        for connection in (wake, status):
            if connection is not None:
                connection.close()

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        process = self._process
        if process is not None:
            if process.is_alive():
                process.terminate()
            process.join(timeout)
            if process.is_alive():
                log.warning("projector process did not stop in %.0f s; killing it", timeout)
                process.kill()
                process.join(2.0)
        self.close_pipes()


class ProjectorSupervisor:
    """Keeps one projector child running while the service runs, and says how it does."""

    def __init__(
        self,
        process: ProjectorProcess,
        health: HealthBoard,
        *,
        first_pause: float = RESTART_FIRST_SECONDS,
        max_pause: float = RESTART_MAX_SECONDS,
        stable_after: float = RESTART_STABLE_SECONDS,
    ) -> None:
        self.process = process
        self.health = health
        self.first_pause = first_pause
        self.max_pause = max_pause
        self.stable_after = stable_after
        self.restarts = 0

    def wake(self) -> None:
        self.process.wake()

    async def run(self, stop: asyncio.Event) -> None:
        pause = self.first_pause
        try:
            while not stop.is_set():
                self.process.start()
                started = time.monotonic()
                await self._watch(stop)
                if stop.is_set():
                    return
                if time.monotonic() - started >= self.stable_after:
                    pause = self.first_pause
                # Its pipe closes a moment before it can be reaped: wait for its exit status.
                await asyncio.to_thread(self.process.join, STOP_TIMEOUT_SECONDS)
                reason = (
                    f"the projector process (pid {self.process.pid}) {self.process.ended()}; "
                    f"restarting it in {pause:g} s"
                )
                log.error("%s", reason)
                self.health.failing(PART, reason)
                self.process.close_pipes()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), pause)
                pause = min(pause * 2, self.max_pause)
                if not stop.is_set():
                    self.restarts += 1
                    log.info("starting the projector process again (restart %d)", self.restarts)
        finally:
            self.process.stop()

    async def _watch(self, stop: asyncio.Event) -> None:
        """Until the child exits or ``stop`` is set, passing on what the child reports."""
        loop = asyncio.get_running_loop()
        status = self.process.status
        assert status is not None
        loop.add_reader(status.fileno(), self._read_status, status)
        try:
            await exited_or_stopped(self.process.sentinel, stop)
        finally:
            loop.remove_reader(status.fileno())
        self._read_status(status)  # what it said last, before it went

    def _read_status(self, status: Connection) -> None:
        try:
            while not status.closed and status.poll():
                state, reason = status.recv()
                if state == "ok":
                    if not self._state_ok():
                        log.info("projector: applying events again")
                    self.health.ok(PART)
                else:
                    self.health.failing(PART, str(reason))
        except (EOFError, OSError):
            with contextlib.suppress(ValueError, OSError):
                asyncio.get_running_loop().remove_reader(status.fileno())

    def _state_ok(self) -> bool:
        state = self.health.state(PART)
        return state is None or state.ok
