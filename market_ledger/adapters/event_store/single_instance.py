"""One ``serve`` per SQLite store.

SQLite has no leases several processes can share safely (its roles would have to be fenced
in each writer's own transaction, across processes on one file), so a second ``serve`` on the
same file refuses to start. The lock is an exclusive ``flock`` on a file beside the store,
released by the kernel when the process ends, ``kill -9`` included. CLI commands do not take
it: they keep working beside a running ``serve``.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from market_ledger.adapters.config import ConfigurationError
from market_ledger.adapters.event_store.settings import sqlite_path


class AnotherServeRuns(ConfigurationError):
    """A ``serve`` already runs on this SQLite store."""


def lock_path(database_url: str) -> Path:
    return Path(sqlite_path(database_url) + ".serve.lock")


@contextmanager
def one_serve_per_sqlite_store(database_url: str) -> Iterator[None]:
    """Hold the store's serve lock while the block runs (nothing to hold on PostgreSQL)."""
    if not database_url.startswith("sqlite:///"):
        yield
        return
    path = lock_path(database_url)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = path.read_text(encoding="utf-8", errors="replace").strip() or "unknown"
            raise AnotherServeRuns(
                f"another market-ledger serve ({holder}) runs on the SQLite store "
                f"{sqlite_path(database_url)}; SQLite serves one instance: run several on "
                "PostgreSQL"
            ) from None
        os.ftruncate(handle, 0)
        os.write(handle, f"pid {os.getpid()}".encode())
        yield
    finally:
        os.close(handle)
