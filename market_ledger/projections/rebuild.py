"""Rebuild every view from position 0 into fresh tables, then verify or switch them in.

The fresh tables carry the same definitions under a ``rebuild_`` prefix: the generation
being built, beside the serving one, which ``serve`` goes on reading and writing meanwhile.
The last stretch runs in one transaction that holds the live position: it applies the
events that arrived while rebuilding, then either compares the result with the live views
(``--verify``) or switches it in (market_ledger.projections.generations), so readers see the
old views or the new ones, never a mix. A rebuild killed at any step leaves the serving
generation as it was: until the switch commits nothing of it changed, and the next rebuild
starts by dropping whatever fresh tables a killed one left.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from market_ledger.projections.checkpoints import DEFAULT_EVERY, recorded_interval
from market_ledger.projections.database import read_only
from market_ledger.projections.generations import (
    create_indexes,
    one_rebuild_at_a_time,
    swap,
    switch_transaction,
)
from market_ledger.projections.history_builder import HistoryBuilder
from market_ledger.projections.log_reader import EventStore
from market_ledger.projections.projector import (
    ProgressCallback,
    Projector,
    compute_hashes,
    read_position,
    refresh_hashes,
    write_hashes,
    write_position,
)
from market_ledger.projections.schema import REBUILD_PREFIX, ViewTables, define_tables
from market_ledger.projections.views_version import VIEWS_VERSION, copy_version

log = logging.getLogger(__name__)


@attrs.frozen
class Difference:
    table: str
    key: str
    live: dict[str, Any] | None
    rebuilt: dict[str, Any] | None

    def describe(self) -> str:
        if self.live is None:
            return f"{self.table} {self.key}: missing from the live view"
        if self.rebuilt is None:
            return f"{self.table} {self.key}: in the live view but not in the rebuild"
        columns = sorted(c for c in self.live if self.live[c] != self.rebuilt.get(c))
        shown = ", ".join(
            f"{c}: live={self.live[c]!r} rebuilt={self.rebuilt.get(c)!r}" for c in columns[:4]
        )
        return f"{self.table} {self.key}: {shown}"


@attrs.frozen
class RebuildReport:
    events: int
    seconds: float
    position: int
    differences: tuple[Difference, ...] = ()
    compared_rows: int = 0

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("inf")


def rebuild(
    application: EventStore,
    engine: Engine,
    live: ViewTables,
    *,
    verify: bool = False,
    batch_size: int = 5000,
    progress: ProgressCallback | None = None,
    parallel: tuple[str, str | None] | None = None,
    checkpoint_every: int = DEFAULT_EVERY,
    at_step: Callable[[str], None] | None = None,
) -> RebuildReport:
    """Fill fresh tables from position 0; verify them against ``live`` or swap them in.

    With ``parallel`` (the views' database URL and schema), the history table is filled by
    a second process while this one fills the others. The checkpoints are taken every
    ``checkpoint_every`` positions; a verify takes them as the live views do, and compares
    rows, not the projection version they record (a build records this code's). ``at_step`` is
    called with each of :data:`STEPS` as the rebuild reaches it (a test stops it there).
    Refused with :class:`AnotherRebuildRuns` while another rebuild runs on the same store.
    """
    with one_rebuild_at_a_time(engine):
        if verify:
            with read_only(engine) as conn:
                recorded = recorded_interval(conn, live)
            checkpoint_every = checkpoint_every if recorded is None else recorded
        with paused_gc():
            return _rebuild(
                application,
                engine,
                live,
                verify,
                batch_size,
                progress,
                parallel,
                checkpoint_every,
                at_step or (lambda step: None),
            )


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector for the length of a rebuild.

    Decoding a million events allocates millions of small objects, and the collector, set
    off by allocations, would scan them again and again: about a third of the decoding time.
    Nothing a rebuild builds holds reference cycles, so reference counting frees it all.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


#: the steps of a rebuild, in order, at which ``at_step`` is called (tests stop there)
STEPS = ("filling", "hashed", "switching", "switched")
StepHook = Callable[[str], None]


def _rebuild(
    application: EventStore,
    engine: Engine,
    live: ViewTables,
    verify: bool,
    batch_size: int,
    progress: ProgressCallback | None,
    parallel: tuple[str, str | None] | None,
    checkpoint_every: int,
    at_step: StepHook,
) -> RebuildReport:
    started = time.perf_counter()
    fresh = define_tables(REBUILD_PREFIX)
    fresh.metadata.drop_all(engine)  # what a killed rebuild left half-built is discarded
    with engine.begin() as conn:
        for table in fresh.all:  # without secondary indexes: they are built once, at the end
            conn.execute(sa.schema.CreateTable(table))
    projector = Projector(
        application,
        engine,
        fresh,
        batch_size=batch_size,
        defer_hashes=True,
        checkpoint_every=checkpoint_every,
        version=None if verify else VIEWS_VERSION,
    )
    history = HistoryBuilder() if parallel else None
    try:
        if verify:
            # Compare like with like: rebuild up to where the live views are now; the
            # locked stretch below follows them if they move on meanwhile.
            with read_only(engine) as conn:
                until = read_position(conn, live)
        else:
            until = projector.head()
        if history is not None and parallel is not None:
            history.start(
                type(application), environment_of(application), *parallel, until, batch_size
            )
            projector.write_history = False
        events = projector.catch_up(until=until, progress=_filling(progress, at_step))
        applied = time.perf_counter()
        # Every hash from the fresh rows, while the history is still being written.
        with read_only(engine) as conn:
            hashes = compute_hashes(conn, fresh, None)
        with engine.begin() as conn:
            write_hashes(conn, fresh, hashes)
        at_step("hashed")
        hashed = time.perf_counter()
        if history is not None:
            history.result()
            projector.write_history = True  # the stretches below write all tables
        filled = time.perf_counter()
        log.info(
            "rebuild: %d events applied to fresh tables in %.1f s, every hash in %.1f s, "
            "then %.1f s waiting for the history",
            events,
            applied - started,
            hashed - applied,
            filled - hashed,
        )
        if verify:
            with engine.begin() as conn:
                target = read_position(conn, live, lock=True)
                events += _finish(conn, projector, target)
                at_step("switching")
                create_indexes(conn, fresh)
                copy_version(conn, live, fresh)
                differences, compared = compare(conn, live, fresh)
            at_step("switched")
        else:
            target, finished = _switch(engine, projector, live, fresh, at_step)
            events += finished
            differences, compared = [], 0
            log.info("rebuild: swapped in with indexes in %.1f s", time.perf_counter() - filled)
            at_step("switched")
    finally:
        if history is not None:
            history.close()
        fresh.metadata.drop_all(engine)
    return RebuildReport(
        events=events,
        seconds=time.perf_counter() - started,
        position=target,
        differences=tuple(differences),
        compared_rows=compared,
    )


def _filling(progress: ProgressCallback | None, at_step: StepHook) -> ProgressCallback:
    """``progress``, and the step ``filling`` once the fresh tables hold a first batch."""
    reached = [False]

    def report(position: int, target: int) -> None:
        if progress is not None:
            progress(position, target)
        if position > 0 and not reached[0]:
            reached[0] = True
            at_step("filling")

    return report


def _switch(
    engine: Engine, projector: Projector, live: ViewTables, fresh: ViewTables, at_step: StepHook
) -> tuple[int, int]:
    """Bring the fresh tables to the head and switch them in; the position and how many
    events were applied on the way.

    What arrived while rebuilding is applied first outside the switch (on PostgreSQL with
    the indexes already built), so that the switch itself, which readers may wait for,
    holds only the last few events and the renames.
    """
    with engine.begin() as conn:
        caught_up = _finish(conn, projector, projector.head())
        if conn.dialect.name == "postgresql":
            create_indexes(conn, fresh)
    with switch_transaction(engine, live) as conn:
        began = time.perf_counter()
        live_position = read_position(conn, live, lock=True)
        target = max(projector.head(), live_position)
        finished = _finish(conn, projector, target)
        swap(conn, live, fresh)
        at_step("switching")
    log.info(
        "rebuild: %d events applied before the switch, %d in it; the switch held the live "
        "tables %.2f s",
        caught_up,
        finished,
        time.perf_counter() - began,
    )
    return target, caught_up + finished


def environment_of(application: EventStore) -> dict[str, str]:
    """The settings a second process needs to open the same event store."""
    return {key: str(value) for key, value in application.env.items()}


def _finish(conn: Connection, projector: Projector, target: int) -> int:
    """Apply, inside ``conn``'s transaction, the events between the fresh tables and
    ``target``, with the hashes of the users they touched; returns how many."""
    applied = 0
    touched: set[str] = set()
    position = read_position(conn, projector.tables)
    while position < target:
        events = projector.fetch(position, target)
        if not events:
            break
        touched |= projector.apply(conn, events)
        position = events[-1][0]
        applied += len(events)
    write_position(conn, projector.tables, position)
    refresh_hashes(conn, projector.tables, touched)
    return applied


def _ordered_rows(conn: Connection, table: sa.Table) -> Iterator[tuple[Any, dict[str, Any]]]:
    """Rows in primary-key order, streamed; text keys in byte order on every backend."""
    keys = list(table.primary_key.columns)
    order = [
        k.collate("C") if conn.dialect.name == "postgresql" and isinstance(k.type, sa.String) else k
        for k in keys
    ]
    result = conn.execute(
        sa.select(table).order_by(*order).execution_options(stream_results=True, yield_per=2000)
    )
    for row in result.mappings():
        yield tuple(row[k.name] for k in keys), dict(row)


def compare(
    conn: Connection, live: ViewTables, fresh: ViewTables, *, limit: int = 50
) -> tuple[list[Difference], int]:
    """Every row of every view, merged by primary key; at most ``limit`` differences."""
    differences: list[Difference] = []
    compared = 0
    for live_table, fresh_table in zip(live.all, fresh.all, strict=True):
        name = live_table.name
        live_rows = _ordered_rows(conn, live_table)
        fresh_rows = _ordered_rows(conn, fresh_table)
        current_live = next(live_rows, None)
        current_fresh = next(fresh_rows, None)
        while current_live is not None or current_fresh is not None:
            compared += 1
            if current_fresh is None or (
                current_live is not None and current_live[0] < current_fresh[0]
            ):
                assert current_live is not None
                differences.append(Difference(name, _key(current_live[0]), current_live[1], None))
                current_live = next(live_rows, None)
            elif current_live is None or current_fresh[0] < current_live[0]:
                differences.append(Difference(name, _key(current_fresh[0]), None, current_fresh[1]))
                current_fresh = next(fresh_rows, None)
            else:
                if current_live[1] != current_fresh[1]:
                    differences.append(
                        Difference(name, _key(current_live[0]), current_live[1], current_fresh[1])
                    )
                current_live = next(live_rows, None)
                current_fresh = next(fresh_rows, None)
            if len(differences) >= limit:
                return differences, compared
    return differences, compared


def _key(values: tuple[Any, ...]) -> str:
    return "/".join(str(v) for v in values)
