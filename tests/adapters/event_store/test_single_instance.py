"""Given a SQLite store, only one serve may hold it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from market_ledger.adapters.event_store.single_instance import (
    AnotherServeRuns,
    lock_path,
    one_serve_per_sqlite_store,
)

HOLD = """
import sys, time
from market_ledger.adapters.event_store.single_instance import one_serve_per_sqlite_store
with one_serve_per_sqlite_store(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


def test_given_a_serve_holding_the_store_when_another_starts_then_it_is_refused(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, url], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with (
            pytest.raises(AnotherServeRuns, match="SQLite serves one instance"),
            one_serve_per_sqlite_store(url),
        ):
            pass
    finally:
        holder.kill()
        holder.wait()
    with one_serve_per_sqlite_store(url):  # killed, its lock went with it
        assert lock_path(url).exists()


def test_given_postgresql_then_there_is_nothing_to_hold() -> None:
    with one_serve_per_sqlite_store("postgresql://postgres@127.0.0.1:5432/test"):
        pass
