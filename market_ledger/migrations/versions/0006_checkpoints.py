"""The checkpoints time travel starts from (market_ledger.projections.checkpoints).

Views that already hold events get none (the interval recorded as 0): their checkpoints
would need the log replayed from position 0, which ``market-ledger rebuild`` does; until
then time travel replays from 0, as before.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

#: the position table's rows: the views' own, and the checkpoints' interval
_VIEWS, _MARKER = "views", "checkpoint_every"


def upgrade() -> None:
    op.create_table(
        "checkpoints",
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("row_key", sa.String(255), primary_key=True),
        sa.Column("checkpoint", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("user_name", sa.String(255), nullable=False),
        sa.Column("row", sa.Text, nullable=False),
    )
    op.create_index(
        "ix_checkpoints_user", "checkpoints", ["user_name", "kind", "row_key", "checkpoint"]
    )
    position = sa.table("projector_position", sa.column("name"), sa.column("position"))
    conn = op.get_bind()
    views = conn.execute(sa.select(position.c.position).where(position.c.name == _VIEWS)).scalar()
    if views:
        conn.execute(sa.insert(position).values(name=_MARKER, position=0))


def downgrade() -> None:
    op.drop_index("ix_checkpoints_user", table_name="checkpoints")
    op.drop_table("checkpoints")
    position = sa.table("projector_position", sa.column("name"))
    op.execute(sa.delete(position).where(position.c.name == _MARKER))
