"""Checkpoints: the rows time travel starts from, so that it reads at most one interval of the log.

A checkpoint stands every ``every`` positions of the log (a multiple of ``every``, whatever
the batches). The projector keeps each version of a user, source, listing or installation row
under the checkpoint that follows the event that made it (a later version within the same
interval replaces it), so the state at checkpoint C is, per row, the newest version kept at
or before C. Only rows that changed in an interval are kept for it, and the content is the
same whatever the batch size, so a rebuild writes exactly what the projector wrote.

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
    later event of the same interval replaces costs nothing.
    """

    def __init__(self, table: sa.Table, every: int) -> None:
        self.table = table
        self.every = every
        self.kept: dict[tuple[str, str, int], Row] = {}

    def keep(self, kind: str, key: str, row: Row, position: int) -> None:
        """Keep ``row`` as ``position`` (the event that made it) left it."""
        if self.every:
            self.kept[(kind, key, boundary(position, self.every))] = row

    def write(self, conn: Connection) -> None:
        rows = []
        for kind, key, checkpoint in sorted(self.kept):
            row = self.kept[(kind, key, checkpoint)]
            # str(): a row read back from the views has SQLAlchemy's str subclasses as keys
            kept = {str(column): value for column, value in row.items() if column not in _NOT_KEPT}
            owner = "" if kind == SOURCES else row["user_name"]
            rows.append(
                {
                    "kind": kind,
                    "row_key": key,
                    "checkpoint": checkpoint,
                    "user_name": owner,
                    "row": dumps(kept),
                }
            )
        upsert_rows(conn, self.table, rows)


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
    query = sa.select(t.c.kind, t.c.row_key, t.c.user_name, t.c.row).join(
        newest,
        sa.and_(
            t.c.kind == newest.c.kind,
            t.c.row_key == newest.c.row_key,
            t.c.checkpoint == newest.c.checkpoint,
        ),
    )
    user: Row | None = None
    listings: dict[UUID, Row] = {}
    installations: dict[UUID, Row] = {}
    sources: dict[str, Row] = {}
    for kind, key, owner, text in conn.execute(query):
        row = loads(text)
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
        else:
            raise ValueError(f"checkpoint row of unknown kind {kind!r} at {at}")
    return Checkpoint(at, user, listings, installations, sources)
