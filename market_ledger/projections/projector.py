"""The projector: applies the notification log to the views, in order, a batch at a time.

Each batch writes its rows, its history entries, the hashes of the users it touched and its
position in one transaction, so a crash never half-applies a batch and a restart resumes
right after the last committed one. Several projectors (the service, a CLI command, a second
replica) may run against one database: each batch first checks that the position is still
the one it read, and leaves the batch to whoever got there first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine

from market_ledger.domain import (
    feed_cursor,
    installation,
    listing,
    manifest_record,
    market_source,
    parked_message,
    task_events,
    user,
)
from market_ledger.domain.events import LedgerEvent
from market_ledger.projections import checkpoints as cp
from market_ledger.projections import views_version
from market_ledger.projections.database import read_only
from market_ledger.projections.hash_rows import INSTALLATION_COLUMNS, LISTING_COLUMNS, kept_parts
from market_ledger.projections.history import history_row
from market_ledger.projections.log_reader import Decoded, EventStore, LogReader
from market_ledger.projections.parked_messages import ParkedRows
from market_ledger.projections.role_leases import Lease, check_held
from market_ledger.projections.rows import (
    Row,
    feed_row,
    installation_row,
    listing_row,
    manifest_row,
    source_row,
    user_row,
)
from market_ledger.projections.schema import ViewTables
from market_ledger.projections.store import chunks, insert_rows, load_rows, upsert_rows
from market_ledger.projections.task_rows import TaskRows
from market_ledger.projections.user_hash import user_hash

log = logging.getLogger(__name__)

POSITION_NAME = "views"
ProgressCallback = Callable[[int, int], None]


class Projector:
    def __init__(
        self,
        application: EventStore,
        engine: Engine,
        tables: ViewTables,
        *,
        batch_size: int = 1000,
        defer_hashes: bool = False,
        write_history: bool = True,
        lease: Lease | None = None,
        checkpoint_every: int = cp.DEFAULT_EVERY,
        version: int | None = views_version.VIEWS_VERSION,  # recorded by new views; None: none
    ) -> None:
        self.application = application
        self.reader = LogReader(application)
        self.engine = engine
        self.tables = tables
        self.batch_size = batch_size
        #: a rebuild computes every hash once at the end instead of after each batch
        self.defer_hashes = defer_hashes
        #: a rebuild fills empty tables from position 0, so it knows which rows exist
        self._fresh = defer_hashes
        #: a rebuild may leave the history table to a process of its own
        self.write_history = write_history
        #: the projector role's lease, checked in each batch's transaction (several instances)
        self.lease = lease
        #: the interval of the checkpoints of new views (views keep the one they started with)
        self.checkpoint_every = checkpoint_every
        self.version = version

    # --- positions ------------------------------------------------------------------------

    def head(self) -> int:
        """The position of the newest event in the log (0 when it is empty)."""
        return int(self.application.recorder.max_notification_id() or 0)

    def position(self) -> int:
        with read_only(self.engine) as conn:
            return read_position(conn, self.tables)

    # --- running --------------------------------------------------------------------------

    def catch_up(self, until: int | None = None, progress: ProgressCallback | None = None) -> int:
        """Apply events until the views reach ``until`` (default: the head of the log)."""
        target = self.head() if until is None else until
        applied = 0
        while True:
            position = self.position()
            if progress:
                progress(position, target)
            if position >= target:
                return applied
            applied += self.run_batch(until=target)

    def run_batch(self, until: int | None = None) -> int:
        """Apply the next batch after the committed position; returns how many events."""
        start = self.position()
        events = self.fetch(start, until)
        if not events or not self.commit(events, expected=start):
            return 0
        return len(events)

    def fetch(self, after: int, until: int | None) -> Decoded:
        """The next batch after position ``after``, decoded."""
        return self.reader.read(after, until, self.batch_size)

    def commit(self, events: Decoded, *, expected: int) -> bool:
        """Apply a batch and its position in one transaction, if the views are still at
        ``expected``; False when another projector applied it meanwhile."""
        with self.engine.begin() as conn:
            check_held(conn, self.lease)
            if read_position(conn, self.tables, lock=True) != expected:
                return False
            self.apply(conn, events)
            write_position(conn, self.tables, events[-1][0])
        return True

    # --- applying ---------------------------------------------------------------------------

    def apply(self, conn: Connection, events: Decoded) -> set[str]:
        """Apply decoded events inside the caller's transaction; returns the touched users."""
        every = cp.interval_for_batch(
            conn, self.tables, self.checkpoint_every, lambda: read_position(conn, self.tables)
        )
        views_version.record_for_batch(
            conn, self.tables, self.version, lambda: read_position(conn, self.tables)
        )
        batch = _Batch(conn, self.tables, events, self._fresh, self.write_history, every)
        batch.load()
        batch.apply_all()
        batch.write()
        if not self.defer_hashes:
            refresh_hashes(conn, self.tables, None if batch.all_users_touched else batch.users)
        return batch.users


class _Batch:
    """The rows one batch of events reads and writes, held in memory until written."""

    def __init__(
        self,
        conn: Connection,
        tables: ViewTables,
        events: Decoded,
        fresh: bool,
        history: bool,
        checkpoint_every: int,
    ) -> None:
        self.conn = conn
        self.fresh = fresh
        self.with_history = history
        self.tables = tables
        self.events = events
        self.listings: dict[str, Row] = {}
        self.installations: dict[str, Row] = {}
        self.users_rows: dict[str, Row] = {}
        self.sources: dict[str, Row] = {}
        self.feeds: dict[str, Row] = {}
        self.manifests: list[Row] = []
        self.history: list[Row] = []
        self.changed: dict[str, set[str]] = {
            "listings": set(),
            "installations": set(),
            "users": set(),
            "sources": set(),
        }
        self.users: set[str] = set()
        self.all_users_touched = False
        self.parked = ParkedRows(tables.parked_messages)
        self.tasks = TaskRows(tables.tasks, tables.last_installed)
        self.checkpoints = cp.CheckpointRows(tables.checkpoints, checkpoint_every)

    def load(self) -> None:
        listing_ids, installation_ids, user_names, source_ids = set(), set(), set(), set()
        task_ids: set[str] = set()
        for _, event in self.events:
            if isinstance(event, listing.ListingEvent):
                listing_ids.add(event.originator_id.hex)
            elif isinstance(event, installation.InstallationEvent):
                installation_ids.add(event.originator_id.hex)
            elif isinstance(event, user.UserEvent):
                user_names.add(event.name)
            elif isinstance(event, market_source.SourceEvent):
                source_ids.add(event.source_id)
            elif isinstance(event, task_events.TaskEvent):
                task_ids.add(event.task_id)
        if self.fresh:  # tables filled from 0 hold no row of a stream begun in the batch
            firsts = [e for _, e in self.events if e.originator_version == 1]
            begun_here = {e.originator_id.hex for e in firsts}
            listing_ids -= begun_here
            installation_ids -= begun_here
            task_ids -= {e.task_id for e in firsts if isinstance(e, task_events.TaskEvent)}
        t = self.tables
        self.listings = load_rows(self.conn, t.listings, "listing_id", listing_ids)
        self.installations = load_rows(
            self.conn, t.installations, "installation_id", installation_ids
        )
        self.users_rows = load_rows(self.conn, t.users, "user_name", user_names)
        self.sources = load_rows(self.conn, t.sources, "source_id", source_ids)
        self.parked.load(self.conn, self.events)
        self.tasks.load(self.conn, self.events, task_ids if self.fresh else None)

    def apply_all(self) -> None:
        for position, event in self.events:
            self.apply_one(position, event)

    def apply_one(self, position: int, event: LedgerEvent) -> None:
        if isinstance(event, listing.AnyListingEvent):
            key = event.originator_id.hex
            previous = self.listings.get(key)
            row = listing_row(previous, event, position)
            self.listings[key] = row
            self.changed["listings"].add(key)
            self.checkpoints.keep(cp.LISTINGS, key, row, position, previous)
            self.users.add(row["user_name"])
            self._audit(event, position, row)
        elif isinstance(event, installation.InstallationEvent):
            key = event.originator_id.hex
            previous = self.installations.get(key)
            row = installation_row(previous, event, position)
            self.installations[key] = row
            self.changed["installations"].add(key)
            self.checkpoints.keep(cp.INSTALLATIONS, key, row, position, previous)
            self.users.add(row["user_name"])
            self._audit(event, position, row)
        elif isinstance(event, user.UserEvent):
            previous = self.users_rows.get(event.name)
            row = user_row(previous, event, position)
            self.users_rows[event.name] = row
            self.checkpoints.keep(cp.USERS, event.name, row, position, previous)
            self.changed["users"].add(event.name)
            self.users.add(event.name)
        elif isinstance(event, market_source.SourceEvent):
            previous = self.sources.get(event.source_id)
            row = source_row(previous, event, position)
            self.sources[event.source_id] = row
            self.changed["sources"].add(event.source_id)
            self.checkpoints.keep(cp.SOURCES, event.source_id, row, position, previous)
            if not isinstance(event, market_source.CatalogObserved):
                self.all_users_touched = True  # what every user sees may have changed
        elif isinstance(event, feed_cursor.FeedEvent):
            self.feeds[event.feed] = feed_row(event)
        elif isinstance(event, manifest_record.ManifestEvent):
            self.manifests.append(manifest_row(event))
        elif isinstance(event, parked_message.ParkedMessageEvent):
            self.parked.apply(event, position)
        elif isinstance(event, task_events.AnyTaskEvent):
            self._audit(event, position, self.tasks.apply(event, position))
        else:
            raise TypeError(f"event at {position} belongs to no view: {event!r}")

    def _audit(self, event: LedgerEvent, position: int, row: Row) -> None:
        if not self.with_history:
            return
        entry = history_row(event, position, row)
        if entry is not None:
            self.history.append(entry)

    def write(self) -> None:
        t, changed = self.tables, self.changed
        upsert_rows(self.conn, t.listings, [self.listings[k] for k in sorted(changed["listings"])])
        installations = [self.installations[k] for k in sorted(changed["installations"])]
        upsert_rows(self.conn, t.installations, installations)
        upsert_rows(self.conn, t.users, [self.users_rows[k] for k in sorted(changed["users"])])
        upsert_rows(self.conn, t.sources, [self.sources[k] for k in sorted(changed["sources"])])
        upsert_rows(self.conn, t.feed_cursors, list(self.feeds.values()))
        insert_rows(self.conn, t.manifests, self.manifests)
        insert_rows(self.conn, t.history, self.history)
        self.parked.write(self.conn)
        self.tasks.write(self.conn)
        self.checkpoints.write(self.conn)


# --- positions and hashes, shared with rebuild ------------------------------------------------


def read_position(conn: Connection, tables: ViewTables, *, lock: bool = False) -> int:
    query = sa.select(tables.position.c.position).where(tables.position.c.name == POSITION_NAME)
    if lock and conn.dialect.name != "sqlite":
        query = query.with_for_update()
        if conn.execute(query).scalar() is None:
            # No row to lock yet (a new store): projectors starting together would all apply
            # the first batch. The row is made first (once, whoever is first), then locked.
            conn.execute(
                postgresql.insert(tables.position)
                .values(name=POSITION_NAME, position=0)
                .on_conflict_do_nothing()
            )
    value = conn.execute(query).scalar()
    return int(value) if value is not None else 0


def write_position(conn: Connection, tables: ViewTables, position: int) -> None:
    upsert_rows(conn, tables.position, [{"name": POSITION_NAME, "position": position}])


def refresh_hashes(conn: Connection, tables: ViewTables, users: set[str] | None) -> None:
    """Recompute the hash of ``users`` (None: every user) from the rows as they are now."""
    write_hashes(conn, tables, compute_hashes(conn, tables, users))


def compute_hashes(conn: Connection, tables: ViewTables, users: set[str] | None) -> dict[str, str]:
    """The hashes of ``users`` (None: every user), read from the rows as they are now.

    A few users (a batch's): from the parts this process kept of their rows, reading only the
    rows written since (:mod:`market_ledger.projections.hash_rows`). Every user (a rebuild,
    a source change): one pass over the tables in user order, the rows read as plain tuples,
    which costs a fraction of mapping rows over hundreds of thousands of them; only rendered
    listings count (see user_hash).
    """
    t = tables
    if users is not None:
        names = sorted(users)
        if not names:
            return {}
        kept = kept_parts(conn, tables)
        return kept.hashes(conn, tables, names, read_position(conn, tables))
    names = sorted(conn.execute(sa.select(t.users.c.user_name)).scalars())
    if not names:
        return {}
    sources = [dict(r) for r in conn.execute(sa.select(t.sources)).mappings()]
    hashes: dict[str, str] = {}
    listing_query = sa.select(*(t.listings.c[c] for c in LISTING_COLUMNS)).where(
        t.listings.c.latest_version.is_not(None)
    )
    install_query = sa.select(*(t.installations.c[c] for c in INSTALLATION_COLUMNS))
    installs_by_user: dict[str, list[Row]] = {name: [] for name in names}
    for values in conn.execute(install_query).fetchall():
        row = dict(zip(INSTALLATION_COLUMNS, values, strict=True))
        if row["user_name"] in installs_by_user:
            installs_by_user[row["user_name"]].append(row)
    listings_by_user: dict[str, list[Row]] = {name: [] for name in names}
    ordered = conn.execute(
        listing_query.order_by(t.listings.c.user_name).execution_options(yield_per=5000)
    )
    current: str | None = None
    for values in ordered:
        row = dict(zip(LISTING_COLUMNS, values, strict=True))
        name = row["user_name"]
        if name != current and current in listings_by_user:
            hashes[current] = user_hash(
                listings_by_user.pop(current), installs_by_user[current], sources
            )
        current = name
        if name in listings_by_user:
            listings_by_user[name].append(row)
    for name, rows in listings_by_user.items():
        hashes[name] = user_hash(rows, installs_by_user[name], sources)
    return hashes


def write_hashes(conn: Connection, tables: ViewTables, hashes: dict[str, str]) -> None:
    t = tables
    updates = [{"key": name, "new_hash": value} for name, value in sorted(hashes.items())]
    statement = (
        sa.update(t.users)
        .where(t.users.c.user_name == sa.bindparam("key"))
        .values(hash=sa.bindparam("new_hash"))
    )
    for part in chunks(updates, 1000):
        conn.execute(statement, list(part))
