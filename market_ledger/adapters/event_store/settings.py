"""The eventsourcing library's settings for the configured database URL.

``sqlite:///PATH`` selects the library's SQLite module (one file, WAL); ``postgresql://...``
selects its PostgreSQL module. The projection tables live in the same database.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from uuid import UUID

import psycopg
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresAggregateRecorder
from eventsourcing.sqlite import SQLiteAggregateRecorder
from psycopg.sql import SQL, Identifier

from market_ledger.adapters.config import ConfigurationError
from market_ledger.domain.redaction import redact_text, redact_url
from market_ledger.projections.database import SQLITE_BUSY_TIMEOUT_MS

TRANSCODER_TOPIC = "market_ledger.adapters.event_store.transcoder:OrjsonTranscoder"
#: seconds to wait for PostgreSQL to accept a connection: a wrong or unreachable server is
#: reported in seconds, not after the library's 30 s of silence
CONNECT_TIMEOUT_SECONDS = 5
#: streams read by one query of the bulk loader (two parameters each on SQLite)
BULK_STREAMS_PER_QUERY = 250


def split_schema(database_url: str) -> tuple[str, str | None]:
    """``postgresql://.../db?schema=S`` -> (the URL without it, S)."""
    if not database_url.startswith(("postgresql://", "postgres://")):
        return database_url, None
    parts = urlsplit(database_url)
    options = parse_qs(parts.query)
    schemas = options.pop("schema", [])
    schema = schemas[0] if schemas else None
    query = "&".join(f"{k}={v}" for k, values in options.items() for v in values)
    return parts._replace(query=query).geturl(), schema


class StoreUnavailable(ConfigurationError):
    """The configured database cannot be reached or refuses us (a one-line reason)."""


def check_postgres(database_url: str, store_env: Mapping[str, str]) -> None:
    """Connect once, so that a wrong or unreachable server is named in a few seconds.

    The library's pool would wait 30 s and then say only that it got no connection.
    """
    try:
        psycopg.connect(
            dbname=store_env["POSTGRES_DBNAME"],
            host=store_env["POSTGRES_HOST"],
            port=store_env["POSTGRES_PORT"],
            user=store_env["POSTGRES_USER"],
            password=store_env["POSTGRES_PASSWORD"],
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
        ).close()
    except psycopg.Error as error:
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        reason = "; ".join(lines) or type(error).__name__
        raise StoreUnavailable(
            f"cannot connect to LEDGER_DATABASE_URL={redact_url(database_url)!r}: "
            + redact_text(reason)
        ) from None


def sqlite_path(database_url: str) -> str:
    return database_url[len("sqlite:///") :]


def event_store_env(
    database_url: str, *, schema: str | None = None, check: bool = True
) -> dict[str, str]:
    if database_url.startswith("sqlite:///"):
        path = sqlite_path(database_url)
        if not path:
            raise ConfigurationError(
                f"LEDGER_DATABASE_URL={redact_url(database_url)!r} names no file"
            )
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        return {
            "PERSISTENCE_MODULE": "market_ledger.adapters.event_store.sqlite:TunedSQLiteFactory",
            "SQLITE_DBNAME": path,
            # appends wait for another writer as long as the views' writes do (the library
            # gives up after 5 s: a rebuild's switch, holding the file's write lock a few
            # seconds on a large store, would fail the service's appends meanwhile)
            "SQLITE_LOCK_TIMEOUT": str(SQLITE_BUSY_TIMEOUT_MS // 1000),
            "TRANSCODER_TOPIC": TRANSCODER_TOPIC,
        }
    parts = urlsplit(database_url)
    if parts.scheme not in ("postgresql", "postgres") or not parts.path.strip("/"):
        raise ConfigurationError(
            f"LEDGER_DATABASE_URL={redact_url(database_url)!r}: "
            "expected postgresql://USER@HOST:PORT/DB"
        )
    env = {
        "PERSISTENCE_MODULE": "market_ledger.adapters.event_store.postgres:FencedPostgresFactory",
        "TRANSCODER_TOPIC": TRANSCODER_TOPIC,
        "POSTGRES_DBNAME": parts.path.strip("/"),
        "POSTGRES_HOST": parts.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(parts.port or 5432),
        "POSTGRES_USER": unquote(parts.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(parts.password or ""),
        "POSTGRES_CONNECT_TIMEOUT": str(CONNECT_TIMEOUT_SECONDS),
    }
    if schema:
        env["POSTGRES_SCHEMA"] = schema
    if check:
        check_postgres(database_url, env)
    return env


def bulk_loader_for(application: Any) -> Callable[[Mapping[UUID, int]], dict[UUID, list[Any]]]:
    """Read the new events of many streams in one query, for the command handler.

    Given ``{stream id: version already known}``, it returns the events after that version
    (all of them for 0). The library reads one stream per query; a batch of commands for
    thousands of listings would then cost thousands of round trips before deciding anything.
    """
    recorder = application.recorder
    mapper = application.mapper

    if isinstance(recorder, SQLiteAggregateRecorder):
        table = recorder.events_table_name

        def select_sqlite(known: list[tuple[UUID, int]]) -> list[StoredEvent]:
            # Whole streams by one IN list; streams known up to a version by one term each.
            whole = [i.hex for i, after in known if after == 0]
            newer = [(i.hex, after) for i, after in known if after > 0]
            terms = [f"originator_id IN ({','.join('?' * len(whole))})"] if whole else []
            terms += ["(originator_id = ? AND originator_version > ?)"] * len(newer)
            statement = (
                f"SELECT originator_id, originator_version, topic, state FROM {table} "
                f"WHERE {' OR '.join(terms)} ORDER BY originator_id, originator_version"
            )
            params: list[Any] = [*whole, *(value for pair in newer for value in pair)]
            with recorder.datastore.transaction(commit=False) as cursor:
                cursor.execute(statement, params)
                return [
                    StoredEvent(
                        originator_id=recorder.convert_originator_id(row["originator_id"]),
                        originator_version=row["originator_version"],
                        topic=row["topic"],
                        state=row["state"],
                    )
                    for row in cursor.fetchall()
                ]

        select = select_sqlite
    elif isinstance(recorder, PostgresAggregateRecorder):
        statement = SQL(
            "SELECT s.originator_id, s.originator_version, s.topic, s.state "
            "FROM {schema}.{table} s JOIN unnest(%s::uuid[], %s::bigint[]) AS k(id, after) "
            "ON s.originator_id = k.id AND s.originator_version > k.after "
            "ORDER BY s.originator_id, s.originator_version"
        ).format(
            schema=Identifier(recorder.datastore.schema),
            table=Identifier(recorder.events_table_name),
        )

        def select_postgres(known: list[tuple[UUID, int]]) -> list[StoredEvent]:
            with recorder.datastore.get_connection() as conn, conn.cursor() as cursor:
                cursor.execute(statement, [[i for i, _ in known], [a for _, a in known]])
                return [
                    StoredEvent(
                        originator_id=row["originator_id"],
                        originator_version=row["originator_version"],
                        topic=row["topic"],
                        state=bytes(row["state"]),
                    )
                    for row in cursor.fetchall()
                ]

        select = select_postgres
    else:
        raise TypeError(f"no bulk reader for {type(recorder).__name__}")

    def load(known: Mapping[UUID, int]) -> dict[UUID, list[Any]]:
        items = list(known.items())
        found: dict[UUID, list[Any]] = {}
        for start in range(0, len(items), BULK_STREAMS_PER_QUERY):
            for stored in select(items[start : start + BULK_STREAMS_PER_QUERY]):
                event = mapper.to_domain_event(stored)
                found.setdefault(event.originator_id, []).append(event)
        return found

    return load
