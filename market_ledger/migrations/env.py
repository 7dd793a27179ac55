"""Alembic environment: migrates the connection handed over by market_ledger.projections.migrate."""

from __future__ import annotations

from alembic import context
from sqlalchemy import engine_from_config, pool

from market_ledger.projections.notifier_state import define_notifier_tables
from market_ledger.projections.schema import define_tables

# The rebuildable views and the notifier's own state (kept apart so a rebuild leaves it alone).
target_metadata = [define_tables().metadata, define_notifier_tables().metadata]
config = context.config


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = engine_from_config(
        config.get_section(config.config_ini_section) or {},
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; point alembic at a database")
run_migrations_online()
