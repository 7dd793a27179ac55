"""The projector of the NATS benchmark, with a stopwatch: publish-to-projected per message.

In a thread of the service process (as ``serve`` once ran it) or in a process of its own
(as ``serve`` runs it now, woken the same way: a byte on a pipe after each commit);
:mod:`bench.nats_bench` drives it.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import select
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from market_ledger.adapters.config import Settings
from market_ledger.bootstrap import Ledger, bootstrap
from market_ledger.domain import installation

#: what an app-state message becomes in the log
STATES = (installation.StateObserved, installation.StateIgnored, installation.StateRefused)


def project_and_measure(
    ledger: Ledger,
    interval: float,
    halt: Any,
    wake: Any,
    report: Callable[[float, list[float]], None],
) -> None:
    """Keep the views current; report, per projected message, publish to the commit of the
    views' batch holding it.

    As ``serve``'s projector: batch after batch while there is something to apply, then a
    wait for the next wake (a wake arriving while a batch runs ends the next wait at once).
    """
    projector = ledger.projector
    while not halt.is_set():
        started = time.monotonic()
        wake.clear()
        # the projector's run_batch, with the batch at hand to time its messages
        position = projector.position()
        events = projector.fetch(position, None)
        if not events or not projector.commit(events, expected=position):
            wake.wait(0.05)
            continue
        now = time.time()
        report(
            now,
            [
                now - event.observed_at.timestamp()
                for _, event in events
                if isinstance(event, STATES)
            ],
        )
        if interval:  # let events gather: fewer, larger batches
            time.sleep(max(0.0, interval - (time.monotonic() - started)))


class PipeWake:
    """A wake as ``serve`` sends it to its projector process: a byte on a pipe, written
    without blocking by the service after each commit; the projector's end waits on it."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.fd = connection.fileno()

    @classmethod
    def pair(cls, context: Any) -> tuple[Connection, Callable[[], None]]:
        """The projector's end of a new pipe, and the service's ``set``."""
        reader, writer = context.Pipe(duplex=False)
        os.set_blocking(writer.fileno(), False)

        def wake() -> None:
            with contextlib.suppress(OSError):  # a full pipe: wakes are pending already
                os.write(writer.fileno(), b"w")

        return reader, wake

    def wait(self, timeout: float) -> None:
        if select.select([self.fd], [], [], timeout)[0]:
            os.read(self.fd, 65536)

    def clear(self) -> None:
        self.wait(0)


def _projector_process(
    db_url: str, interval: float, halt: Any, wake: Connection, queue: Any
) -> None:
    ledger = bootstrap(Settings(database_url=db_url))
    try:
        project_and_measure(
            ledger, interval, halt, PipeWake(wake), lambda now, m: queue.put((now, m))
        )
    finally:
        ledger.close()


class ProjectorLoop:
    """The projector, in a thread of the service process (as ``serve`` runs it) or in a
    process of its own; collects the latencies it reports."""

    def __init__(self, ledger: Ledger, interval: float, *, own_process: bool) -> None:
        self.ledger = ledger
        self.interval = interval
        self.own_process = own_process
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.projected = 0
        #: when the newest measured message was projected (wall clock)
        self.last_at = 0.0
        #: called after each commit of the intake (the watched handler's hook), as in serve
        self.wake: Callable[[], None]
        context = multiprocessing.get_context("spawn")
        self.halt: Any = context.Event() if own_process else threading.Event()
        self.queue: Any = context.Queue() if own_process else None
        self.workers: list[Any] = []
        if own_process:
            reader, self.wake = PipeWake.pair(context)
            self.workers.append(
                context.Process(
                    target=_projector_process,
                    args=(ledger.settings.database_url, interval, self.halt, reader, self.queue),
                )
            )
            self.workers.append(threading.Thread(target=self._receive, daemon=True))
        else:
            woken = threading.Event()
            self.wake = woken.set
            self.workers.append(
                threading.Thread(
                    target=project_and_measure,
                    args=(ledger, interval, self.halt, woken, self.record),
                    daemon=True,
                )
            )

    def start(self) -> None:
        for worker in self.workers:
            worker.start()

    def stop(self) -> None:
        self.halt.set()
        for worker in self.workers:
            worker.join(5)

    def record(self, now: float, measured: list[float]) -> None:
        with self.lock:
            self.latencies.extend(measured)
            self.projected += len(measured)
            self.last_at = now

    def _receive(self) -> None:
        while not self.halt.is_set():
            with contextlib.suppress(Exception):
                self.record(*self.queue.get(timeout=0.1))
