"""The task views: one row per task, and the last successful install of each app.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tasks",
        sa.Column("task_id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("user_name", sa.String(255), nullable=False),
        sa.Column("app_name", sa.String(255), nullable=False),
        sa.Column("source", sa.String(255), nullable=False),
        sa.Column("version", sa.Text, nullable=False),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16)),
        sa.Column("op_id", sa.Text, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("request", sa.Text, nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("started_at", sa.String(32)),
        sa.Column("accepted_at", sa.String(32)),
        sa.Column("completed_at", sa.String(32)),
        sa.Column("position", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_tasks_user_app", "tasks", ["user_name", "app_name"])
    op.create_index("ix_tasks_state", "tasks", ["state"])
    op.create_table(
        "last_installed",
        sa.Column("user_name", sa.String(255), primary_key=True),
        sa.Column("app_name", sa.String(255), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("version", sa.Text, nullable=False),
        sa.Column("source", sa.String(255), nullable=False),
        sa.Column("task_id", sa.String(32), nullable=False),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("position", sa.BigInteger, nullable=False),
    )
    # Empty is right for a store written before this revision: no route wrote a task before it.


def downgrade() -> None:
    op.drop_table("last_installed")
    op.drop_index("ix_tasks_state", table_name="tasks")
    op.drop_index("ix_tasks_user_app", table_name="tasks")
    op.drop_table("tasks")
