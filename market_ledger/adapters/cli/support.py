"""What the commands need besides the ledger: argument types, the store's name, progress.

Kept out of :mod:`market_ledger.adapters.cli.commands` so that the command definitions stay
readable.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from market_ledger.adapters.config import Settings, sqlite_file
from market_ledger.domain.redaction import redact_url
from market_ledger.projections.schema import ViewTables

#: the roles a user may have (the HTTP API grants the operator routes to ``admin``)
ROLES = ("normal", "admin")
#: seconds between two progress lines of a rebuild whose stderr is not a terminal
PROGRESS_EVERY_SECONDS = 5.0

log = logging.getLogger("market_ledger.rebuild")


class HostPort(click.ParamType):  # type: ignore[type-arg]
    """``HOST:PORT`` with a port from 1 to 65535 (an empty host is 127.0.0.1)."""

    name = "HOST:PORT"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value).strip()
        _host, colon, port = text.rpartition(":")
        if not colon or not port.isascii() or not port.isdigit():
            self.fail(f"{text!r} is not HOST:PORT (e.g. 127.0.0.1:8080)", param, ctx)
        if not 1 <= int(port) <= 65535:
            self.fail(f"{text!r}: the port must be from 1 to 65535, not {port}", param, ctx)
        return text


HOST_PORT = HostPort()


def store_of(settings: Settings) -> dict[str, str | None]:
    """``{"url", "path"}``: the database URL (redacted) and a SQLite store's absolute path."""
    path = sqlite_file(settings.database_url)
    return {"url": redact_url(settings.database_url), "path": str(path) if path else None}


def describe_store(settings: Settings) -> str:
    store = store_of(settings)
    return f"{store['url']} ({store['path']})" if store["path"] else str(store["url"])


def ever_registered(conn: Connection, tables: ViewTables, user: str) -> bool:
    """Whether ``user`` was ever registered (their history outlives a removal)."""
    users = tables.users
    found = conn.execute(sa.select(users.c.user_name).where(users.c.user_name == user)).first()
    return found is not None


def every_source_failed(summary: dict[str, Any]) -> str | None:
    """Why the cycle did not do its job when no configured source could be synced, else None."""
    sync = summary.get("phases", {}).get("sync", {})
    if "failed" in sync:
        return f"the sync phase failed: {sync['failed']}"
    sources = sync.get("sources", {})
    failed = {k: v for k, v in sources.items() if v.get("outcome") == "failed"}
    if not sources or len(failed) < len(sources):
        return None
    reasons = "; ".join(f"{k}: {v.get('error', '')}" for k, v in failed.items())
    return f"every source failed ({len(failed)}): {reasons}"


@contextmanager
def held_logs() -> Iterator[None]:
    """Hold the log records of the root handlers, and write them when the block ends."""
    held: list[tuple[logging.Handler, logging.LogRecord]] = []

    class Hold(logging.Filter):
        def __init__(self, handler: logging.Handler) -> None:
            super().__init__()
            self.handler = handler

        def filter(self, record: logging.LogRecord) -> bool:
            held.append((self.handler, record))
            return False

    holds = [(h, Hold(h)) for h in logging.getLogger().handlers]
    for handler, hold in holds:
        handler.addFilter(hold)
    try:
        yield
    finally:
        for handler, hold in holds:
            handler.removeFilter(hold)
        for handler, record in held:
            handler.handle(record)


def logged_progress(
    every: float = PROGRESS_EVERY_SECONDS, clock: Callable[[], float] = time.monotonic
) -> Callable[[int, int], None]:
    """A rebuild's progress as log lines (at most one per ``every`` seconds, and the last)."""
    last = [float("-inf")]

    def progress(position: int, target: int) -> None:
        now = clock()
        if position < target and now - last[0] < every:
            return
        last[0] = now
        share = 100 * position / target if target else 100.0
        log.info("rebuild: %d of %d events (%.0f %%)", position, target, share)

    return progress


def print_json(value: Any) -> None:
    """The ``--json`` output of every command: indented, non-ASCII kept as it is."""
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))
