"""The eventsourcing library's settings for the configured database URL.

``sqlite:///PATH`` selects the library's SQLite module (one file, WAL); ``postgresql://...``
selects its PostgreSQL module. The projection tables live in the same database.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from adapters.config import ConfigurationError


def split_schema(database_url: str) -> tuple[str, str | None]:
    """``postgresql://.../db?schema=S`` -> (the URL without it, S)."""
    if not database_url.startswith(("postgresql://", "postgres://")):
        return database_url, None
    parts = urlsplit(database_url)
    options = parse_qs(parts.query)
    schema = (options.pop("schema", None) or [None])[0]
    query = "&".join(f"{k}={v}" for k, values in options.items() for v in values)
    return parts._replace(query=query).geturl(), schema


def sqlite_path(database_url: str) -> str:
    return database_url[len("sqlite:///") :]


def event_store_env(database_url: str, *, schema: str | None = None) -> dict[str, str]:
    if database_url.startswith("sqlite:///"):
        path = sqlite_path(database_url)
        if not path:
            raise ConfigurationError(f"LEDGER_DATABASE_URL={database_url!r} names no file")
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": path}
    parts = urlsplit(database_url)
    if parts.scheme not in ("postgresql", "postgres") or not parts.path.strip("/"):
        raise ConfigurationError(
            f"LEDGER_DATABASE_URL={database_url!r}: expected postgresql://USER@HOST:PORT/DB"
        )
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": parts.path.strip("/"),
        "POSTGRES_HOST": parts.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(parts.port or 5432),
        "POSTGRES_USER": unquote(parts.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(parts.password or ""),
    }
    if schema:
        env["POSTGRES_SCHEMA"] = schema
    return env
