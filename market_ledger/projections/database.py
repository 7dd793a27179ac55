"""SQLAlchemy engines for the projection tables, on the same database as the event store."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

SQLITE_BUSY_TIMEOUT_MS = 30_000
READ_ONLY = "ledger_read_only"


def sqlalchemy_url(database_url: str) -> str:
    """Map the ledger's database URL to the SQLAlchemy URL of the same database."""
    if database_url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + database_url.split("://", 1)[1]
    return database_url


def create_view_engine(
    database_url: str, *, schema: str | None = None, for_writing: bool = False
) -> Engine:
    """An engine for the views; on SQLite a writing engine takes the write lock up front.

    SQLite lets only one writer in at a time; beginning every writing transaction with
    ``BEGIN IMMEDIATE`` makes a second projector wait for the first instead of failing
    half-way through a batch. Readers keep plain transactions, which see a consistent
    snapshot without blocking anyone. On PostgreSQL ``schema`` sets the search path.
    """
    url = sqlalchemy_url(database_url)
    if url.startswith("sqlite"):
        engine = sa.create_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
        )
        _configure_sqlite(engine, immediate=for_writing)
        return engine
    connect_args: dict[str, Any] = {}
    if schema:
        connect_args["options"] = f"-csearch_path={schema}"
    return sa.create_engine(url, connect_args=connect_args, pool_pre_ping=True)


def _configure_sqlite(engine: Engine, *, immediate: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let SQLAlchemy's BEGIN below be the only one
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        reading = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate and not reading else "BEGIN")


def read_only(engine: Engine) -> Connection:
    """A connection for reading only: on SQLite it never takes the write lock."""
    return engine.connect().execution_options(**{READ_ONLY: True})
