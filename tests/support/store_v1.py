"""The store written by an early version of the code (``tests/fixtures/store-v1.sqlite``),
opened on a copy: opening a store may migrate it, and the fixture must stay as it was written.

The positions of its events are read from the file itself, by topic, so a test names the
events old code stored without trusting today's decoding of them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from market_ledger.adapters.config import Settings
from market_ledger.bootstrap import Ledger, bootstrap
from market_ledger.projections import notifier_state as ns
from market_ledger.service.notifier import NewAppReady, Notice, Notifier
from tests.conftest import FakeClock
from tests.fixtures import STORE_V1, fixture

#: a moment after every event of the fixture (they were decided on 2026-11-01 from 12:00)
AFTER_THE_FIXTURE = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
#: the version 1 topic of the one event whose shape changed since the fixture was written
RENDERED_V1 = "listing.Rendered.v1"


def copy_of_store_v1(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / "ledger.db"
    shutil.copyfile(fixture(STORE_V1), copy)
    return copy


def open_store(path: Path, clock: FakeClock | None = None) -> Ledger:
    return bootstrap(
        Settings(database_url=f"sqlite:///{path}"), clock=clock or FakeClock(AFTER_THE_FIXTURE)
    )


def stored(path: Path, topic: str) -> list[tuple[int, str, dict[str, Any]]]:
    """(position, stream id hex, stored state) of every event stored under ``topic``, read
    from the file as old code wrote it (the state as plain JSON, envelopes left as they are)."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT rowid, originator_id, state FROM stored_events WHERE topic = ? ORDER BY rowid",
            (topic,),
        ).fetchall()
    conn.close()
    return [(position, stream, _json(state)) for position, stream, state in rows]


def listings(path: Path) -> dict[str, tuple[str, str]]:
    """Stream id hex -> (user, app id) of every listing, from the events that offered them."""
    return {
        stream: (state["user"], state["app_id"])
        for _, stream, state in stored(path, "listing.Offered.v1")
    }


def stream_of(path: Path, user: str, app_id: str) -> str:
    return next(s for s, listed in listings(path).items() if listed == (user, app_id))


def topics_in(path: Path) -> list[str]:
    """The topics stored in ``path``, read without writing anything beside it (the fixture
    itself may be read so)."""
    with sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True) as conn:
        rows = conn.execute("SELECT DISTINCT topic FROM stored_events ORDER BY topic").fetchall()
    conn.close()
    return [topic for (topic,) in rows]


def field_names(event: Any) -> set[str]:
    """The fields an event of its class has today (what a reader may rely on)."""
    return {f.name for f in dataclasses.fields(event)}


class Recording:
    """A publisher that keeps the typed notices."""

    def __init__(self) -> None:
        self.sent: list[Notice] = []

    async def publish(self, notices: Sequence[Notice]) -> None:
        self.sent.extend(notices)


def new_apps_ready(ledger: Ledger, *, after: int) -> list[NewAppReady]:
    """What a notifier that had announced up to position ``after`` announces as new apps
    ready when it catches up with the views."""
    with ledger.writer.begin() as conn:
        ns.start_notifier(conn, ns.define_notifier_tables(), ledger.tables, "notifications", after)
    publisher = Recording()
    report = asyncio.run(Notifier(ledger, publisher).publish_pending())
    assert report.error is None, report.error
    assert report.position == ledger.projector.position()
    return [n for n in publisher.sent if isinstance(n, NewAppReady)]


def _json(state: bytes) -> dict[str, Any]:
    value = orjson.loads(state)
    assert isinstance(value, dict)
    return value
