"""The parked messages view: inbound messages the intake could not take in.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "parked_messages",
        sa.Column("message_id", sa.String(64), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("failure", sa.String(16), nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("encoding", sa.String(16), nullable=False),
        sa.Column("truncated", sa.Boolean, nullable=False),
        sa.Column("headers", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("deliveries", sa.Integer, nullable=False),
        sa.Column("times_parked", sa.Integer, nullable=False),
        sa.Column("replay_failures", sa.Integer, nullable=False),
        sa.Column("resolved_by", sa.Text),
        sa.Column("parked_at", sa.String(32), nullable=False),
        sa.Column("updated_at", sa.String(32), nullable=False),
        sa.Column("position", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_parked_messages_status", "parked_messages", ["status", "parked_at"])
    # Empty is right for any existing store: no event written before this revision parks
    # a message.


def downgrade() -> None:
    op.drop_index("ix_parked_messages_status", table_name="parked_messages")
    op.drop_table("parked_messages")
