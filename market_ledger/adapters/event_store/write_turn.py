"""Turns at deciding a batch, across the instances sharing one PostgreSQL store.

The event store already appends one transaction at a time: the library locks the events
table for each append. Instances deciding batches of commands at the same moment therefore
gain nothing from deciding in parallel, and much from not doing so: two batches of app-state
messages nearly always touch the same installation streams, so the one that appends second
finds its versions taken and decides its whole batch again, and with three instances most
decisions were thrown away. A turn, taken before loading the streams, lets each batch be
decided once, on the newest states.

The turn is an optimisation, never what keeps the log consistent: that is still the store's
optimistic concurrency. So waiting for a turn is bounded (``wait_seconds``, PostgreSQL's
``lock_timeout``): behind a holder that is paused or cut off, a batch goes ahead without it,
and the store settles any race as before. After such a wait the process takes no turn for
``skip_seconds``, so that a holder paused for long costs the others one wait now and then,
not one per batch.

Within a process the threads take turns on a lock first, so a process holds one database
connection for its turn however many threads are waiting.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)

#: the session advisory lock that is the turn
WRITE_TURN_LOCK = 7_270_413


class PostgresWriteTurn:
    """A turn at deciding and appending, taken with a session-level advisory lock."""

    def __init__(
        self, engine: Engine, *, wait_seconds: float = 1.0, skip_seconds: float = 10.0
    ) -> None:
        self.engine = engine
        self.wait_ms = max(int(wait_seconds * 1000), 1)
        self.skip_seconds = skip_seconds
        self._in_process = threading.Lock()
        #: until when (monotonic) batches go ahead without a turn, after one waited in vain
        self._skip_until = 0.0

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self._in_process:
            if time.monotonic() < self._skip_until:
                yield
                return
            with self.engine.connect() as conn:
                held = self._take(conn)
                if not held:
                    self._skip_until = time.monotonic() + self.skip_seconds
                try:
                    yield
                finally:
                    if held:
                        self._give_back(conn)

    def _take(self, conn: sa.Connection) -> bool:
        try:
            # LOCAL: the bound ends with this transaction; the session's lock outlives it
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = {self.wait_ms}")
            conn.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": WRITE_TURN_LOCK})
            conn.commit()
        except DBAPIError as error:
            try:
                conn.rollback()
            except DBAPIError:
                conn.invalidate()
            log.warning(
                "no turn at deciding within %d ms (%s); deciding without turns for %g s: "
                "the event store settles a race",
                self.wait_ms,
                str(error.orig).strip().splitlines()[0] if error.orig else type(error).__name__,
                self.skip_seconds,
            )
            return False
        return True

    def _give_back(self, conn: sa.Connection) -> None:
        try:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": WRITE_TURN_LOCK})
            conn.commit()
        except DBAPIError:
            # the session is broken, and with it the lock: make sure the pool drops it
            log.warning("giving back the turn failed; closing its connection", exc_info=True)
            conn.invalidate()
