"""The history table of a rebuild, filled by a process of its own.

History is one row per listing, installation or task event: half of a rebuild's writing, and
independent of every other view but for the keys of the stream an event belongs to, which
the stream's first event carries. Filled beside the other views, on the other core, it costs
a rebuild only the time the two processes wait for each other's writes.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import resource
import subprocess
import sys
from typing import Any

from eventsourcing.utils import get_topic, resolve_topic

from market_ledger.domain import installation, listing, task_events
from market_ledger.projections.database import create_view_engine
from market_ledger.projections.history import history_row
from market_ledger.projections.log_reader import EventStore, LogReader
from market_ledger.projections.rows import Row
from market_ledger.projections.schema import REBUILD_PREFIX, define_tables
from market_ledger.projections.store import insert_rows

log = logging.getLogger(__name__)


def fill_history(
    store_class: type[EventStore],
    env: dict[str, str],
    database_url: str,
    schema: str | None,
    until: int,
    batch_size: int,
) -> int:
    """Write the rebuild's history rows for the log up to ``until``; returns how many."""
    # a process of its own, gone when done: see market_ledger.projections.rebuild.paused_gc
    gc.disable()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # the service's own class: its name decides the event store's table names
    application = store_class(env=env)
    reader = LogReader(application)
    engine = create_view_engine(database_url, schema=schema, for_writing=True)
    tables = define_tables(REBUILD_PREFIX)
    keys: dict[int, tuple[str, ...]] = {}
    written = position = 0
    parent = os.getppid()
    try:
        while position < until:
            if os.getppid() != parent:  # the rebuild was killed: its tables are abandoned
                log.error("rebuild: the rebuild that started this process is gone; stopping")
                os._exit(1)
            events = reader.read(position, until, batch_size)
            if not events:
                break
            rows = []
            for event_position, event in events:
                row = _stream_keys(keys, event)
                if row is not None:
                    entry = history_row(event, event_position, row)
                    if entry is not None:
                        rows.append(entry)
            with engine.begin() as conn:
                insert_rows(conn, tables.history, rows)
            written += len(rows)
            position = events[-1][0]
    finally:
        engine.dispose()
        application.close()
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    log.info(
        "rebuild: %d history rows written by a second process (peak RSS %.0f MiB)",
        written,
        peak_mib,
    )
    return written


#: the names a stream's keys hold, one copy each
_i = sys.intern


def _stream_keys(keys: dict[int, tuple[str, ...]], event: Any) -> Row | None:
    """The part of a view row history needs (who, where, which app; a task's kind), kept
    per stream.

    Kept by the stream id's number, as tuples of interned strings: a million streams would
    otherwise hold a million UUID objects and copies of a few hundred user, source and app
    names (most of this process's memory).
    """
    stream = event.originator_id.int
    if isinstance(event, listing.Offered):
        if stream not in keys:
            keys[stream] = (_i(event.user), _i(event.source), _i(event.app_id))
    elif isinstance(event, installation.StateObserved):
        keys[stream] = (_i(event.user), _i(event.source), _i(event.name))
    elif isinstance(event, installation.StateRefused):
        if stream not in keys:  # refused before anything was observed
            keys[stream] = (_i(event.user), _i(event.source), _i(event.name))
    elif isinstance(event, task_events.TaskRequested):
        keys[stream] = (_i(event.user), _i(event.source), _i(event.app_name), _i(event.kind))
    elif not isinstance(
        event, listing.ListingEvent | installation.InstallationEvent | task_events.TaskEvent
    ):
        return None
    found = keys.get(stream)
    if found is None:
        kind = type(event).__name__
        raise ValueError(f"{kind} of stream {event.originator_id} before its first event")
    user, source, app, *task_kind = found
    row: Row = {"user_name": user, "source": source, "app_id": app, "name": app}
    if task_kind:
        row.update(app_name=app, kind=task_kind[0])
    return row


class HistoryBuilder:
    """Runs :func:`fill_history` in a second process, ``python -m`` this module.

    Not a multiprocessing child: one started by spawning first imports the command's main
    module, so the whole command line interface (HTTP server, NATS, every adapter), tens of
    MiB that filling the history never uses. The settings go through the child's standard
    input (they may hold a database password), the count it wrote comes back on its output.
    """

    def __init__(self) -> None:
        self._process: subprocess.Popen[str] | None = None

    def start(
        self,
        store_class: type[EventStore],
        env: dict[str, str],
        database_url: str,
        schema: str | None,
        until: int,
        batch_size: int,
    ) -> None:
        job = {
            "store_class": get_topic(store_class),
            "env": env,
            "database_url": database_url,
            "schema": schema,
            "until": until,
            "batch_size": batch_size,
        }
        self._process = subprocess.Popen(
            [sys.executable, "-m", __name__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(job))
        self._process.stdin.close()

    def result(self) -> int:
        """The history rows written, once the process is done; raises if it failed."""
        assert self._process is not None, "the history builder was not started"
        assert self._process.stdout is not None
        output = self._process.stdout.read()
        code = self._process.wait()
        if code != 0:
            raise RuntimeError(f"the process filling the history exited {code}")
        return int(output.split()[-1])

    def close(self) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()


def main() -> None:
    job = json.loads(sys.stdin.read())
    written = fill_history(
        resolve_topic(job["store_class"]),
        job["env"],
        job["database_url"],
        job["schema"],
        job["until"],
        job["batch_size"],
    )
    print(written)


if __name__ == "__main__":
    main()
