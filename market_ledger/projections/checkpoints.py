"""Checkpoints: the rows time travel starts from, so that it reads at most one interval of the log.

A checkpoint stands every ``every`` positions of the log (a multiple of ``every``, whatever
the batches). The projector keeps each version of a user, source, listing or installation row
under the checkpoint that follows the event that made it (a later version within the same
interval replaces it), so the state at checkpoint C is, per row, the newest version kept at
or before C. Only rows that changed in an interval are kept for it, and the content is the
same whatever the batch size, so a rebuild writes exactly what the projector wrote.

A kept version that the live view still holds is not written twice: its ``row`` is NULL,
"the live row", for as long as the live row's position is in that version's interval (no
later event changed it). The batch that moves the live row on to a later interval writes the
version it replaces in full. Most rows change within one interval and never again, so most
kept versions cost a key and no content.

The interval is the store's: the projector's first batch on empty views records the
configured one under :data:`MARKER` in the position table, and every later batch (and a
``rebuild --verify``) keeps to it; ``rebuild`` takes the configured one anew. Views written
before checkpoints existed record 0, "none kept", until a ``rebuild`` fills them.
"""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from market_ledger.projections.rows import Row, dumps, loads
from market_ledger.projections.schema import ViewTables
from market_ledger.projections.store import upsert_rows

#: positions between two checkpoints, unless ``LEDGER_CHECKPOINT_EVERY`` says otherwise
DEFAULT_EVERY = 10_000
#: the position table's row that holds the store's interval (0: no checkpoints kept)
MARKER = "checkpoint_every"
LISTINGS, INSTALLATIONS, USERS, SOURCES = "listings", "installations", "users", "sources"
#: columns left out of a kept row: the user's hash is computed after a batch, not by its events
_NOT_KEPT = ("hash",)


def boundary(position: int, every: int) -> int:
    """The checkpoint that follows ``position`` (the position itself on a boundary)."""
    return -(-position // every) * every


def recorded_interval(conn: Connection, tables: ViewTables) -> int | None:
    """The store's interval as recorded (0: none kept), or None before the first batch."""
    t = tables.position
    value = conn.execute(sa.select(t.c.position).where(t.c.name == MARKER)).scalar()
    return None if value is None else int(value)


def interval_for_batch(
    conn: Connection, tables: ViewTables, configured: int, views_position: Callable[[], int]
) -> int:
    """The interval a batch keeps rows at (0: none), recording ``configured`` on new views."""
    recorded = recorded_interval(conn, tables)
    if recorded is not None:
        return recorded
    every = configured if views_position() == 0 else 0
    upsert_rows(conn, tables.position, [{"name": MARKER, "position": every}])
    return every


class CheckpointRows:
    """The row versions one batch keeps, by (kind, key, checkpoint), until written.

    A row is held as the batch made it (the row functions make a new dict for each event,
    and nothing changes one afterwards) and encoded once, when written: a version that a
    later event of the same interval replaces costs nothing, and the version the live view
    keeps is written as a NULL ``row`` (see the module's docstring).
    """

    def __init__(self, table: sa.Table, every: int) -> None:
        self.table = table
        self.every = every
        self.kept: dict[tuple[str, str, int], Row] = {}
        #: per (kind, key): the live row before the batch (None: a new one), and after it
        self.before: dict[tuple[str, str], Row | None] = {}
        self.after: dict[tuple[str, str], Row] = {}

    def keep(self, kind: str, key: str, row: Row, position: int, previous: Row | None) -> None:
        """Keep ``row`` as ``position`` (the event that made it) left it; ``previous`` is the
        row the event was applied to."""
        if not self.every:
            return
        self.kept[(kind, key, boundary(position, self.every))] = row
        self.before.setdefault((kind, key), previous)
        self.after[(kind, key)] = row

    def write(self, conn: Connection) -> None:
        kept = dict(self.kept)
        live_interval: dict[tuple[str, str], int] = {}
        for (kind, key), row in self.after.items():
            live_interval[(kind, key)] = boundary(row["position"], self.every)
            before = self.before[(kind, key)]
            if before is not None:
                # the version the live view held until now, written in full if it moves on
                kept.setdefault((kind, key, boundary(before["position"], self.every)), before)
        rows = []
        for kind, key, checkpoint in sorted(kept):
            row = kept[(kind, key, checkpoint)]
            owner = "" if kind == SOURCES else row["user_name"]
            live = live_interval[(kind, key)] == checkpoint
            rows.append(
                {
                    "kind": kind,
                    "row_key": key,
                    "checkpoint": checkpoint,
                    "user_name": owner,
                    "row": None if live else dumps(_kept_columns(row)),
                }
            )
        upsert_rows(conn, self.table, rows)


def _kept_columns(row: Row) -> Row:
    # str(): a row read back from the views has SQLAlchemy's str subclasses as keys
    return {str(column): value for column, value in row.items() if column not in _NOT_KEPT}


def live_tables(tables: ViewTables) -> dict[str, tuple[sa.Table, str]]:
    """The live view table of each kind of kept row, and its key column."""
    return {
        LISTINGS: (tables.listings, "listing_id"),
        INSTALLATIONS: (tables.installations, "installation_id"),
        USERS: (tables.users, "user_name"),
        SOURCES: (tables.sources, "source_id"),
    }


@attrs.frozen
class Checkpoint:
    """A user's rows at checkpoint ``position``, keyed as time travel keys them."""

    position: int
    user: Row | None
    listings: dict[UUID, Row]
    installations: dict[UUID, Row]
    sources: dict[str, Row]


def nearest_checkpoint(
    conn: Connection, tables: ViewTables, user_name: str, position: int, views_position: int
) -> Checkpoint | None:
    """The user's rows at the newest checkpoint at or before ``position`` that the views have
    passed (``views_position``, read on the same connection); None when there is none."""
    every = recorded_interval(conn, tables)
    if not every:
        return None
    at = (min(position, views_position) // every) * every
    if at == 0:
        return None
    t = tables.checkpoints
    newest = (
        sa.select(t.c.kind, t.c.row_key, sa.func.max(t.c.checkpoint).label("checkpoint"))
        .where(t.c.user_name.in_([user_name, ""]), t.c.checkpoint <= at)
        .group_by(t.c.kind, t.c.row_key)
        .subquery()
    )
    # One statement, so that a kept row and the live row it may stand for are read from the
    # same snapshot whatever the isolation level.
    live = live_tables(tables)
    columns = {
        kind: [c for c in table.columns if c.name not in _NOT_KEPT]
        for kind, (table, _) in live.items()
    }
    query = sa.select(
        t.c.kind,
        t.c.row_key,
        t.c.user_name,
        t.c.checkpoint,
        t.c.row,
        *(
            c.label(f"{kind}_{c.name}")
            for kind, kind_columns in columns.items()
            for c in kind_columns
        ),
    ).join(
        newest,
        sa.and_(
            t.c.kind == newest.c.kind,
            t.c.row_key == newest.c.row_key,
            t.c.checkpoint == newest.c.checkpoint,
        ),
    )
    for kind, (table, key_column) in live.items():
        query = query.outerjoin(
            table, sa.and_(t.c.kind == kind, t.c.row.is_(None), table.c[key_column] == t.c.row_key)
        )
    user: Row | None = None
    listings: dict[UUID, Row] = {}
    installations: dict[UUID, Row] = {}
    sources: dict[str, Row] = {}
    for found in conn.execute(query).mappings():
        kind, key, owner, checkpoint = (
            found["kind"],
            found["row_key"],
            found["user_name"],
            found["checkpoint"],
        )
        if found["row"] is not None:
            row = loads(found["row"])
        elif kind in columns:
            row = {c.name: found[f"{kind}_{c.name}"] for c in columns[kind]}
            if row["position"] is None or boundary(row["position"], every) != checkpoint:
                raise ValueError(
                    f"checkpoint row {kind} {key} at {checkpoint} stands for the live row, "
                    f"which is at position {row['position']}"
                )
        else:
            raise ValueError(f"checkpoint row of unknown kind {kind!r} at {at}")
        if kind == SOURCES:
            sources[key] = row
        elif owner != user_name:
            continue  # no user is named "", but only sources are kept under it
        elif kind == USERS:
            user = {**row, "hash": ""}  # as a replay makes it: the hash is not an event's
        elif kind == LISTINGS:
            listings[UUID(hex=key)] = row
        elif kind == INSTALLATIONS:
            installations[UUID(hex=key)] = row
    return Checkpoint(at, user, listings, installations, sources)
