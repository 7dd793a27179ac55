"""The projector of a running service, in a process of its own.

Applying events and recomputing the hashes of the users they touch is the heaviest steady
work of the service; in its own process it does not take turns with the NATS intake and the
HTTP reads for one interpreter lock. It polls the log head every few milliseconds (a cheap
query) and applies whatever is new.

It is stopped with SIGTERM, like any process: a batch is one transaction, so stopping in the
middle of one leaves the views at the previous batch, and the next start goes on from there.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import threading
from types import FrameType

from adapters.config import Settings
from adapters.logging_setup import configure_logging
from market_ledger.bootstrap import bootstrap

log = logging.getLogger(__name__)

IDLE_POLL_SECONDS = 0.005


def _exit(signum: int, frame: FrameType | None) -> None:
    sys.exit(0)


def run_projector(settings: Settings, schema: str | None) -> None:
    """Keep the views at the head of the log until terminated."""
    signal.signal(signal.SIGTERM, _exit)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the service decides when to stop
    configure_logging(os.environ)  # the parent's level, format and redaction
    ledger = bootstrap(settings, schema=schema)  # which also collects cycles less often
    idle = threading.Event()
    try:
        while True:
            try:
                applied = ledger.projector.catch_up()
            except Exception:
                log.exception("projector failed; retrying in a second")
                idle.wait(1.0)
                continue
            if not applied:
                idle.wait(IDLE_POLL_SECONDS)
    finally:
        ledger.close()


class ProjectorProcess:
    def __init__(self, settings: Settings, schema: str | None = None) -> None:
        context = multiprocessing.get_context("spawn")
        self._process = context.Process(
            target=run_projector, args=(settings, schema), name="projector", daemon=True
        )

    def start(self) -> None:
        self._process.start()

    def alive(self) -> bool:
        return self._process.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        if self._process.is_alive():
            self._process.terminate()
        self._process.join(timeout)
        if self._process.is_alive():
            log.warning("projector process did not stop in %.0f s; killing it", timeout)
            self._process.kill()
            self._process.join(2.0)
