"""The rows a projector's user hashes are computed from, kept between its batches.

A batch touching a user recomputes that user's hash from all of their rows; reading and
decoding every row each time made the hashes most of a small batch's cost. Kept here are the
hash parts (:mod:`market_ledger.projections.user_hash`) of the users whose hash was computed,
with, per user, the view position their parts are known to be current at. A later batch reads
only the user's rows written after that position: a row is rewritten only by an event, whose
position is later than any row already written, so no change is missed, whichever projector
(this one, another process, another replica) wrote it.

The parts are dropped, and read again in full, when this cannot hold: when the views are
behind a position a user's parts were read at (a batch rolled back after computing its
hashes), and when the tables themselves were replaced (a rebuild's switch), which the
database's own schema marker says (SQLite's ``schema_version``, the tables' PostgreSQL oids).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Hashable, Sequence

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from market_ledger.projections.rows import Row
from market_ledger.projections.schema import ViewTables
from market_ledger.projections.store import chunks
from market_ledger.projections.user_hash import (
    Part,
    hash_of_parts,
    hashed,
    installation_part,
    listing_part,
)
from market_ledger.projections.visibility import visible_sources

#: how many rows' parts are kept at most, some 45 MB (the users kept longest go first)
KEPT_ROWS_LIMIT = 50_000
#: users whose rows are read in one query
USERS_PER_QUERY = 25

LISTING_COLUMNS = (
    "listing_id",
    "user_name",
    "position",
    "source",
    "app_id",
    "name",
    "latest_version",
    "latest_digest",
    "rendered_digest",
    "labels",
    "delisted",
    "withdrawn",
)
INSTALLATION_COLUMNS = (
    "installation_id",
    "user_name",
    "position",
    "source",
    "name",
    "state",
    "op_type",
    "app_version",
    "entrances",
    "removed",
)


@attrs.define
class _UserParts:
    listings: dict[str, Part] = attrs.field(factory=dict)
    installations: dict[str, Part] = attrs.field(factory=dict)
    #: every row of the user written at or before this position is in the parts
    current_at: int = 0

    @property
    def size(self) -> int:
        return len(self.listings) + len(self.installations)


class KeptParts:
    """The kept parts of one set of view tables on one database."""

    def __init__(self, limit: int = KEPT_ROWS_LIMIT) -> None:
        self.limit = limit
        self.users: dict[str, _UserParts] = {}
        self.generation: Hashable = None
        self.lock = threading.Lock()
        #: rows read by the last :meth:`hashes` (what a batch paid for its hashes)
        self.rows_read = 0

    def hashes(
        self, conn: Connection, tables: ViewTables, names: Sequence[str], position: int
    ) -> dict[str, str]:
        """The hashes of ``names``, in ``conn``'s transaction, whose views are at ``position``
        (with the rows of a batch being applied already written)."""
        with self.lock:
            generation = views_generation(conn, tables)
            if generation != self.generation or any(
                parts.current_at > position for parts in self.users.values()
            ):
                self.users.clear()
                self.generation = generation
            self.rows_read = 0
            known = [name for name in names if name in self.users]
            new = [name for name in names if name not in self.users]
            for part in chunks(known, USERS_PER_QUERY):
                since = min(self.users[name].current_at for name in part)
                self._read(conn, tables, part, since, position)
            for part in chunks(new, USERS_PER_QUERY):
                for name in part:
                    self.users[name] = _UserParts()
                self._read(conn, tables, part, None, position)
            shown = visible_sources_of(conn, tables)
            found = {
                name: hash_of_parts(
                    self.users[name].listings.values(),
                    self.users[name].installations.values(),
                    shown,
                )
                for name in names
            }
            self._bound(set(names))
            return found

    def _read(
        self,
        conn: Connection,
        tables: ViewTables,
        names: Sequence[str],
        since: int | None,
        position: int,
    ) -> None:
        """Bring the parts of ``names`` up to date: every row (``since`` None), else the rows
        written after ``since``."""
        t = tables
        listing_query = sa.select(*(t.listings.c[c] for c in LISTING_COLUMNS)).where(
            t.listings.c.user_name.in_(names)
        )
        install_query = sa.select(*(t.installations.c[c] for c in INSTALLATION_COLUMNS)).where(
            t.installations.c.user_name.in_(names)
        )
        if since is None:
            listing_query = listing_query.where(t.listings.c.latest_version.is_not(None))
        else:
            listing_query = listing_query.where(t.listings.c.position > since)
            install_query = install_query.where(t.installations.c.position > since)
        newest = dict.fromkeys(names, position)
        for values in conn.execute(listing_query):
            row = dict(zip(LISTING_COLUMNS, values, strict=True))
            parts = self.users[row["user_name"]]
            if hashed(row):
                parts.listings[row["listing_id"]] = listing_part(row)
            else:
                parts.listings.pop(row["listing_id"], None)
            newest[row["user_name"]] = max(newest[row["user_name"]], row["position"])
            self.rows_read += 1
        for values in conn.execute(install_query):
            row = dict(zip(INSTALLATION_COLUMNS, values, strict=True))
            self.users[row["user_name"]].installations[row["installation_id"]] = installation_part(
                row
            )
            newest[row["user_name"]] = max(newest[row["user_name"]], row["position"])
            self.rows_read += 1
        for name, at in newest.items():
            self.users[name].current_at = at

    def _bound(self, keep: set[str]) -> None:
        """Drop the users kept longest while more than ``limit`` rows are kept."""
        total = sum(parts.size for parts in self.users.values())
        for name in list(self.users):
            if total <= self.limit:
                return
            if name not in keep:
                total -= self.users.pop(name).size
        # re-insert the users just computed last, so they are dropped last
        for name in keep:
            if name in self.users:
                self.users[name] = self.users.pop(name)


def visible_sources_of(conn: Connection, tables: ViewTables) -> dict[str, Row]:
    return visible_sources(dict(r) for r in conn.execute(sa.select(tables.sources)).mappings())


def views_generation(conn: Connection, tables: ViewTables) -> Hashable:
    """What changes when the hashed tables are replaced (a new object when unknown)."""
    if conn.dialect.name == "sqlite":
        return conn.exec_driver_sql("PRAGMA schema_version").scalar()
    if conn.dialect.name == "postgresql":
        name = conn.dialect.identifier_preparer.format_table
        return tuple(
            conn.execute(
                sa.text("SELECT to_regclass(:a)::oid, to_regclass(:b)::oid"),
                {"a": name(tables.listings), "b": name(tables.installations)},
            ).one()
        )
    return object()


_KEPT: weakref.WeakKeyDictionary[Engine, dict[str, KeptParts]] = weakref.WeakKeyDictionary()
_KEPT_LOCK = threading.Lock()


def kept_parts(conn: Connection, tables: ViewTables) -> KeptParts:
    """The kept parts of ``tables`` on ``conn``'s database, for every projector of this
    process that writes them."""
    with _KEPT_LOCK:
        by_tables: dict[str, KeptParts] = _KEPT.setdefault(conn.engine, {})
        return by_tables.setdefault(tables.listings.fullname, KeptParts())
