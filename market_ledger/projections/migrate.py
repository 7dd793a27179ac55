"""Bring the projection tables to the newest migration (run by every command on start)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

import market_ledger.migrations as migrations


def alembic_config() -> Config:
    folder = Path(migrations.__file__).parent
    config = Config(str(folder / "alembic.ini"))
    config.set_main_option("script_location", str(folder))
    return config


#: the advisory lock instances starting together take, so that one migrates at a time
MIGRATION_LOCK = 7_270_411


def migrate(engine: Engine) -> None:
    config = alembic_config()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # several instances starting at once on a new database would race to create
            # the same tables: the others wait here, then find nothing left to do
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
