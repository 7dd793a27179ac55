"""Bring the projection tables to the newest migration (run by every command on start)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
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


#: the advisory lock held while an instance creates the event store's tables and the views'
STORE_CREATION_LOCK = 7_270_412


@contextmanager
def creating_tables(engine: Engine) -> Iterator[None]:
    """Hold a PostgreSQL advisory lock while the store's and the views' tables are created.

    Instances starting together on a new schema would each run the same CREATE TABLE IF NOT
    EXISTS, and PostgreSQL refuses concurrent DDL on one catalog row ("tuple concurrently
    updated"): the others wait here, then find the tables made. SQLite needs no lock, a
    second ``serve`` on one file being refused anyway.
    """
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": STORE_CREATION_LOCK})
        conn.commit()
        try:
            yield
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": STORE_CREATION_LOCK})
            conn.commit()


def migrate(engine: Engine) -> None:
    config = alembic_config()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # several instances starting at once on a new database would race to create
            # the same tables: the others wait here, then find nothing left to do
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
