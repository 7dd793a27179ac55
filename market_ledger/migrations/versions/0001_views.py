"""The catalog, hash and history views.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "projector_position",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("position", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "users",
        sa.Column("user_name", sa.String(255), primary_key=True),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("zone", sa.Text, nullable=False),
        sa.Column("registered", sa.Boolean, nullable=False),
        sa.Column("hash", sa.Text, nullable=False),
        sa.Column("position", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "sources",
        sa.Column("source_id", sa.String(255), primary_key=True),
        sa.Column("source_type", sa.Text, nullable=False),
        sa.Column("base_url", sa.Text, nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("removed", sa.Boolean, nullable=False),
        sa.Column("remote_hash", sa.Text, nullable=False),
        sa.Column("catalog_version", sa.Text, nullable=False),
        sa.Column("app_count", sa.Integer, nullable=False),
        sa.Column("extras", sa.Text, nullable=False),
        sa.Column("extras_digest", sa.Text, nullable=False),
        sa.Column("position", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "listings",
        sa.Column("listing_id", sa.String(32), primary_key=True),
        sa.Column("user_name", sa.String(255), nullable=False),
        sa.Column("source", sa.String(255), nullable=False),
        sa.Column("app_id", sa.String(255), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("offered_version", sa.Text, nullable=False),
        sa.Column("offered_digest", sa.Text, nullable=False),
        sa.Column("pending_version", sa.Text),
        sa.Column("pending_digest", sa.Text),
        sa.Column("latest_version", sa.Text),
        sa.Column("latest_digest", sa.Text),
        sa.Column("labels", sa.Text, nullable=False),
        sa.Column("delisted", sa.Boolean, nullable=False),
        sa.Column("delist_reason", sa.Text),
        sa.Column("withdrawn", sa.Boolean, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("retry_at", sa.String(32)),
        sa.Column("failure_step", sa.Text),
        sa.Column("failure_reason", sa.Text),
        sa.Column("rendered", sa.Text),
        sa.Column("rendered_digest", sa.Text),
        sa.Column("updated_at", sa.String(32), nullable=False),
        sa.Column("position", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "ix_listings_user_source_app", "listings", ["user_name", "source", "app_id"], unique=True
    )
    op.create_index("ix_listings_status", "listings", ["status"])
    op.create_table(
        "installations",
        sa.Column("installation_id", sa.String(32), primary_key=True),
        sa.Column("user_name", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("op_type", sa.Text, nullable=False),
        sa.Column("progress", sa.Text, nullable=False),
        sa.Column("app_version", sa.Text, nullable=False),
        sa.Column("raw_app_name", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("entrances", sa.Text, nullable=False),
        sa.Column("shared_entrances", sa.Text, nullable=False),
        sa.Column("event_id", sa.Text, nullable=False),
        sa.Column("observed_at", sa.String(32), nullable=False),
        sa.Column("origin", sa.Text, nullable=False),
        sa.Column("removed", sa.Boolean, nullable=False),
        sa.Column("position", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "ix_installations_user_name", "installations", ["user_name", "name"], unique=True
    )
    op.create_table(
        "history",
        sa.Column("position", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("user_name", sa.String(255), nullable=False),
        sa.Column("source", sa.String(255), nullable=False),
        sa.Column("app", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("details", sa.Text, nullable=False),
    )
    op.create_index("ix_history_user_app", "history", ["user_name", "app", "position"])
    op.create_table(
        "feed_cursors",
        sa.Column("feed", sa.String(255), primary_key=True),
        sa.Column("position", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "manifests",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("app_id", sa.String(255), nullable=False),
        sa.Column("content", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "manifests",
        "feed_cursors",
        "history",
        "installations",
        "listings",
        "sources",
        "users",
        "projector_position",
    ):
        op.drop_table(table)
