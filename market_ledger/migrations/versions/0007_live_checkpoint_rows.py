"""Checkpoint rows the live views still hold are kept once (market_ledger.projections.checkpoints).

A kept row version whose checkpoint is the interval of the live row's position is the live
row itself (minus the user's hash, which is not kept): its ``row`` becomes NULL, and time
travel reads the live row for it. The batch that next moves the live row on writes that
version in full again. Downgrading writes every such version back in full.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from typing import Any

import orjson
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

#: the position table's row that holds the checkpoints' interval
_MARKER = "checkpoint_every"
#: each kind of kept row: its live table and key column
_LIVE = {
    "listings": ("listings", "listing_id"),
    "installations": ("installations", "installation_id"),
    "users": ("users", "user_name"),
    "sources": ("sources", "source_id"),
}
#: the live columns a kept row leaves out
_NOT_KEPT = ("hash",)
#: the checkpoints table while it is converted
_CONVERTED = "checkpoints_converted"
_CHECKPOINTS = sa.table(
    "checkpoints",
    sa.column("kind", sa.String),
    sa.column("row_key", sa.String),
    sa.column("checkpoint", sa.BigInteger),
    sa.column("user_name", sa.String),
    sa.column("row", sa.Text),
)


def _interval(conn: sa.Connection) -> int:
    position = sa.table("projector_position", sa.column("name"), sa.column("position"))
    value = conn.execute(sa.select(position.c.position).where(position.c.name == _MARKER)).scalar()
    return int(value or 0)


def _live_interval(live: sa.TableClause, every: int) -> Any:
    """The checkpoint that follows the live row's position (its own on a boundary)."""
    return (live.c.position + (every - 1)) // every * every


def upgrade() -> None:
    """Copied into a new table, each row converted on the way: updated in place, SQLite would
    keep every page the full rows took."""
    conn = op.get_bind()
    every = _interval(conn)
    t = _CHECKPOINTS
    op.create_table(
        _CONVERTED,
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("row_key", sa.String(255), primary_key=True),
        sa.Column("checkpoint", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("user_name", sa.String(255), nullable=False),
        sa.Column("row", sa.Text),
    )
    row: Any = t.c.row
    if every:
        held = []
        for kind, (name, key) in _LIVE.items():
            live = sa.table(name, sa.column(key, sa.String), sa.column("position", sa.BigInteger))
            interval = (
                sa.select(_live_interval(live, every))
                .where(live.c[key] == t.c.row_key)
                .scalar_subquery()
            )
            held.append((sa.and_(t.c.kind == kind, t.c.checkpoint == interval), sa.null()))
        row = sa.case(*held, else_=t.c.row)
    columns = ["kind", "row_key", "checkpoint", "user_name", "row"]
    converted = sa.table(_CONVERTED, *(sa.column(c) for c in columns))
    select = sa.select(t.c.kind, t.c.row_key, t.c.checkpoint, t.c.user_name, row)
    conn.execute(sa.insert(converted).from_select(columns, select))
    op.drop_index("ix_checkpoints_user", table_name="checkpoints")
    op.drop_table("checkpoints")
    op.rename_table(_CONVERTED, "checkpoints")
    op.create_index(
        "ix_checkpoints_user", "checkpoints", ["user_name", "kind", "row_key", "checkpoint"]
    )


def downgrade() -> None:
    conn = op.get_bind()
    t = _CHECKPOINTS
    for kind, (name, key) in _LIVE.items():
        live = sa.Table(name, sa.MetaData(), autoload_with=conn)
        kept_columns = [c for c in live.columns if c.name not in _NOT_KEPT]
        stubs = sa.select(t.c.checkpoint, *kept_columns).join(
            live, live.c[key] == t.c.row_key
        ).where(t.c.kind == kind, t.c.row.is_(None))
        updates = [
            {
                "found_key": found[key],
                "found_checkpoint": found["checkpoint"],
                "text": orjson.dumps(
                    {str(c.name): found[c.name] for c in kept_columns}, option=orjson.OPT_SORT_KEYS
                ).decode(),
            }
            for found in conn.execute(stubs).mappings()
        ]
        if updates:
            conn.execute(
                sa.update(t)
                .where(
                    t.c.kind == kind,
                    t.c.row_key == sa.bindparam("found_key"),
                    t.c.checkpoint == sa.bindparam("found_checkpoint"),
                )
                .values(row=sa.bindparam("text")),
                updates,
            )
    with op.batch_alter_table("checkpoints") as batch:
        batch.alter_column("row", existing_type=sa.Text, nullable=False)
