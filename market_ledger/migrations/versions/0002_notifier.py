"""The notifier's position and announced hashes (not views: a rebuild leaves them alone).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notifier_position",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("position", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "notifier_announced_hashes",
        sa.Column("user_name", sa.String(255), primary_key=True),
        sa.Column("hash", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("notifier_announced_hashes")
    op.drop_table("notifier_position")
