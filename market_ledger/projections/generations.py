"""The serving generation of the views and the one a rebuild fills: the switch between them,
what a reader does when it meets the switch, one rebuild at a time, and what status shows.

Why the switch stays DROP + RENAME in one transaction (and not views or a generation
pointer): the live tables keep their names, so every query, the Alembic migrations and the
schema test stay as they are, and a reader needs no extra lookup on every request. What the
switch must guarantee is that a reader never fails at it:

* SQLite (WAL): a read transaction keeps the snapshot it began with, so it reads the old
  tables or the new ones, never a mix and never a missing table. A statement prepared before
  the switch meets "database schema has changed", which SQLite answers by preparing it again.
* PostgreSQL: the switch first takes the ACCESS EXCLUSIVE lock of every live table in one
  statement with a very short ``lock_timeout``, and lets go of all and tries again when a
  reader holds one. The plain swap (DROP, RENAME, table after table) deadlocked with a
  reader that held a later table and waited for one already dropped, and PostgreSQL
  aborted the swap: a failed rebuild. Now a reader waits at most that timeout plus the
  switch's own short transaction, and neither side waits long enough for a deadlock check.
  A statement that waited for a dropped table usually resumes on the renamed one (the name
  is looked up again after waiting), but not always: it may fail with "relation ... does
  not exist" or "could not open relation with OID" (a cached plan locks tables by id).
  :func:`raced_the_switch` knows these failures, and the read path runs such a read once
  more: by then it finds the new tables. A REPEATABLE READ read whose first statement
  waited for the switch keeps the snapshot taken before waiting: it reads the new tables
  as they were before the switch's last few events, a consistent state a moment older,
  never a mix (a reader that already read an old table holds it: the switch waits for it).
"""

from __future__ import annotations

import fcntl
import logging
import os
import random
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from market_ledger.projections.projector import POSITION_NAME
from market_ledger.projections.schema import REBUILD_PREFIX, ViewTables, define_tables
from market_ledger.projections.views_version import NAME

log = logging.getLogger(__name__)

#: how long the switch waits for one reader's lock before letting go of all and trying again:
#: a reader that holds one table and waits for another the switch holds is a deadlock until
#: then, so it is short, and far below PostgreSQL's deadlock_timeout (1 s): neither side
#: ever waits long enough to run a deadlock check, which would abort one of them
SWITCH_LOCK_TIMEOUT_MS = 20
#: how long the switch keeps trying to take the tables before it gives up with an error
SWITCH_PATIENCE_SECONDS = 300.0
#: the first key of the advisory lock a rebuild holds (the second: the schema's)
REBUILD_LOCK_CLASS = 7_270_413

#: the failures of a read that met the switch, by SQLSTATE (PostgreSQL) or message (SQLite)
_RACED_STATES = {"42P01", "40P01", "XX000"}  # undefined table, deadlock, internal error
_RACED_MESSAGES = (
    "could not open relation with oid",
    "no such table",
    "database schema has changed",
)


class AnotherRebuildRuns(RuntimeError):
    """A rebuild already fills the fresh tables of this store."""


def raced_the_switch(error: BaseException) -> bool:
    """Whether ``error`` is what a read meets when a rebuild's switch replaced its tables."""
    if not isinstance(error, sa.exc.DBAPIError):
        return False
    original = error.orig
    state = getattr(original, "sqlstate", None)
    message = str(original).lower()
    if state == "XX000":  # an internal error is a race only when it names a vanished table
        return "could not open relation" in message
    return state in _RACED_STATES or any(m in message for m in _RACED_MESSAGES)


@contextmanager
def switch_transaction(engine: Engine, live: ViewTables) -> Iterator[Connection]:
    """A transaction holding every live table for the switch (PostgreSQL: locked up front).

    On SQLite the writing engine's ``BEGIN IMMEDIATE`` is the only lock needed: readers
    keep their snapshots and never wait.
    """
    if engine.dialect.name != "postgresql":
        with engine.begin() as conn:
            yield conn
        return
    names = ", ".join(engine.dialect.identifier_preparer.quote(t.name) for t in live.all)
    deadline = time.monotonic() + SWITCH_PATIENCE_SECONDS
    attempts = 0
    while True:
        attempts += 1
        with engine.connect() as conn:
            transaction = conn.begin()
            try:
                conn.exec_driver_sql(f"SET LOCAL lock_timeout = {SWITCH_LOCK_TIMEOUT_MS}")
                conn.exec_driver_sql(f"LOCK TABLE {names} IN ACCESS EXCLUSIVE MODE")
            except sa.exc.OperationalError as error:
                transaction.rollback()
                if getattr(error.orig, "sqlstate", None) != "55P03":  # lock_not_available
                    raise
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"rebuild: the live views stayed in use for {SWITCH_PATIENCE_SECONDS:.0f}"
                        f" s ({attempts} attempts to take them for the switch); the rebuilt "
                        "tables are left unswitched: run the rebuild again"
                    ) from error
                time.sleep(random.uniform(0, SWITCH_LOCK_TIMEOUT_MS / 1000))  # let readers by
                continue
            if attempts > 1:
                log.info("rebuild: took the live tables for the switch at attempt %d", attempts)
            with transaction:
                yield conn
            return


def swap(conn: Connection, live: ViewTables, fresh: ViewTables) -> None:
    """Replace the live tables by the rebuilt ones, inside the caller's transaction.

    On PostgreSQL the fresh tables already carry their indexes (:func:`create_indexes`,
    before the switch), renamed here; SQLite cannot rename an index, so they are built here,
    which only writers wait for.
    """
    quote = conn.dialect.identifier_preparer.quote
    postgresql = conn.dialect.name == "postgresql"
    for live_table, fresh_table in zip(live.all, fresh.all, strict=True):
        conn.execute(sa.schema.DropTable(live_table))
        conn.exec_driver_sql(
            f"ALTER TABLE {quote(fresh_table.name)} RENAME TO {quote(live_table.name)}"
        )
        if postgresql:  # the indexes keep their names: the primary key's, and the others
            renamed = [(f"{fresh_table.name}_pkey", f"{live_table.name}_pkey")]
            renamed += [
                (str(f.name), str(i.name))
                for f, i in zip(
                    sorted(fresh_table.indexes, key=lambda x: str(x.name)),
                    sorted(live_table.indexes, key=lambda x: str(x.name)),
                    strict=True,
                )
            ]
            for old, new in renamed:
                conn.exec_driver_sql(f"ALTER INDEX {quote(old)} RENAME TO {quote(new)}")
    if not postgresql:
        create_indexes(conn, live)


def create_indexes(conn: Connection, tables: ViewTables) -> None:
    for table in tables.all:
        for index in table.indexes:
            index.create(conn)


# --- one rebuild at a time ----------------------------------------------------------------------


def _schema_key(conn: Connection) -> int:
    schema = str(conn.execute(sa.text("SELECT current_schema()")).scalar() or "public")
    return zlib.crc32(schema.encode()) - 2**31  # a signed 32-bit key


def _lock_file(engine: Engine) -> Path | None:
    """Beside the SQLite file (None for a database in memory, which no one else sees)."""
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database + ".rebuild.lock")


@contextmanager
def one_rebuild_at_a_time(engine: Engine) -> Iterator[None]:
    """Hold the store's rebuild lock for the block; refuse at once when another holds it.

    PostgreSQL: a session advisory lock (per schema) on a connection of its own; SQLite: an
    exclusive ``flock`` on ``<database>.rebuild.lock``. Both go with the process, however it
    ends, so a killed rebuild never blocks the next one.
    """
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            key = _schema_key(conn)
            taken = conn.execute(
                sa.text("SELECT pg_try_advisory_lock(:c, :k)"), {"c": REBUILD_LOCK_CLASS, "k": key}
            ).scalar()
            conn.commit()
            if not taken:
                raise AnotherRebuildRuns(
                    "another rebuild is running on this PostgreSQL schema (it holds the "
                    "rebuild's advisory lock); wait for it to finish, then run this again"
                )
            try:
                yield
            finally:
                conn.execute(
                    sa.text("SELECT pg_advisory_unlock(:c, :k)"),
                    {"c": REBUILD_LOCK_CLASS, "k": key},
                )
                conn.commit()
        return
    path = _lock_file(engine)
    if path is None:
        yield
        return
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AnotherRebuildRuns(
                f"another rebuild is running on this SQLite store (it holds {path}); "
                "wait for it to finish, then run this again"
            ) from None
        yield
    finally:
        os.close(handle)


def rebuild_running(conn: Connection) -> bool:
    """Whether some process holds the store's rebuild lock now."""
    if conn.dialect.name == "postgresql":
        held = conn.execute(
            sa.text(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' "
                "AND classid = CAST(:c AS oid) AND objid = CAST(:k AS oid) AND objsubid = 2 "
                "AND granted AND database = (SELECT oid FROM pg_database "
                "WHERE datname = current_database()))"
            ),
            {"c": REBUILD_LOCK_CLASS, "k": _schema_key(conn) % 2**32},
        ).scalar()
        return bool(held)
    path = _lock_file(conn.engine)
    if path is None or not path.exists():
        return False
    handle = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(handle)  # closing lets go of a lock this test took
    return False


#: where a rebuild keeps how far its fresh tables are
_FRESH_POSITION = define_tables(REBUILD_PREFIX, indexes=False).position


def building(conn: Connection, head: int) -> dict[str, Any]:
    """The generation being built beside the serving one, for ``status``.

    ``building``: fresh tables exist (a rebuild fills them, or a killed one left them, which
    the next rebuild discards: ``running`` tells which); ``position``: how far they are
    filled; ``target``: the head of the log, which they reach before the switch;
    ``version``: the projection version they are built by (None until their first batch).
    """
    position, version = _fresh_progress(conn)
    return {
        "building": position is not None,
        "running": rebuild_running(conn),
        "position": position,
        "target": head,
        "version": version,
    }


def _fresh_progress(conn: Connection) -> tuple[int | None, int | None]:
    """How far the fresh tables are filled and the version they record; None, None when
    there are none.

    A switch may rename them away between the look-up and the read: then the read fails
    (inside a savepoint, so the caller's transaction goes on) and there are none any more.
    """
    if not sa.inspect(conn).has_table(_FRESH_POSITION.name):
        return None, None
    t = _FRESH_POSITION
    try:
        with conn.begin_nested():
            found = dict(
                conn.execute(
                    sa.select(t.c.name, t.c.position).where(t.c.name.in_([POSITION_NAME, NAME]))
                ).all()
            )
    except sa.exc.DBAPIError as error:
        if not raced_the_switch(error):
            raise
        return None, None
    version = found.get(NAME)
    return int(found.get(POSITION_NAME) or 0), None if version is None else int(version)
