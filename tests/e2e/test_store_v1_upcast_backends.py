"""The v1 store's events, copied as stored into a fresh store of each backend, read as today's.

The log reader and the handler's bulk loader each select rows with SQL of their own per
backend (SQLite, PostgreSQL) and decode them without the library's notification objects; the
fixture is a SQLite file, so on PostgreSQL its events are copied row by row, topic and state
untouched, to be read by those paths there too.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest
from eventsourcing.persistence import StoredEvent

from market_ledger.adapters.event_store.settings import bulk_loader_for
from market_ledger.bootstrap import Ledger
from market_ledger.domain import listing
from market_ledger.domain.events import LedgerEvent
from market_ledger.domain.listing import LISTING
from market_ledger.service.catalog_at import catalog_at
from tests.conftest import FakeClock, StoreFactory
from tests.support.store_v1 import (
    AFTER_THE_FIXTURE,
    RENDERED_V1,
    copy_of_store_v1,
    new_apps_ready,
    open_store,
)

USERS = ("alice", "bob")


@pytest.fixture
def fixture_copy(tmp_path: Path) -> Iterator[tuple[Path, Ledger]]:
    copy = copy_of_store_v1(tmp_path / "v1")
    opened = open_store(copy)
    yield copy, opened
    opened.close()


def stored_events(path: Path) -> list[StoredEvent]:
    """The events of ``path`` in log order, exactly as they are stored."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT originator_id, originator_version, topic, state FROM stored_events "
            "ORDER BY rowid"
        ).fetchall()
    conn.close()
    return [StoredEvent(UUID(hex=i), version, topic, state) for i, version, topic, state in rows]


def everything(ledger: Ledger) -> dict[int, LedgerEvent]:
    return dict(ledger.projector.reader.read(0, None, 100_000))


def test_given_the_v1_events_copied_into_a_fresh_store_when_read_there_then_they_decode_alike(
    store: StoreFactory, fixture_copy: tuple[Path, Ledger]
) -> None:
    copy, v1 = fixture_copy
    events = stored_events(copy)
    ledger = store.open(FakeClock(AFTER_THE_FIXTURE))
    ledger.application.recorder.insert_events(events)

    read = everything(ledger)
    streams = {e.originator_id for e in read.values()}
    loaded = bulk_loader_for(ledger.application)(dict.fromkeys(streams, 0))

    assert read == everything(v1)
    renders = [p for p, e in read.items() if events[p - 1].topic == RENDERED_V1]
    assert len(renders) == 61
    assert all(isinstance(read[p], listing.Rendered) and read[p].replaces is None for p in renders)
    for stream, stream_events in loaded.items():
        assert stream_events == [e for e in read.values() if e.originator_id == stream]
    calibre = next(e.originator_id for e in read.values() if _offered(e, "alice", "calibre"))
    assert LISTING.fold(None, loaded[calibre]) == v1.handler.load(calibre, LISTING)


def test_given_the_v1_events_copied_into_a_fresh_store_when_projected_then_catalogs_are_as_before(
    store: StoreFactory, fixture_copy: tuple[Path, Ledger]
) -> None:
    copy, v1 = fixture_copy
    ledger = store.open(FakeClock(AFTER_THE_FIXTURE))
    ledger.application.recorder.insert_events(stored_events(copy))

    ledger.catch_up()

    for user in USERS:
        assert catalog_at(ledger, user) == catalog_at(v1, user)  # as old code left the views


def test_given_the_v1_events_copied_into_a_fresh_store_when_a_notifier_catches_up_then_as_on_v1(
    store: StoreFactory, fixture_copy: tuple[Path, Ledger]
) -> None:
    copy, v1 = fixture_copy
    ledger = store.open(FakeClock(AFTER_THE_FIXTURE))
    ledger.application.recorder.insert_events(stored_events(copy))
    ledger.catch_up()

    announced = new_apps_ready(ledger, after=163)

    assert announced == new_apps_ready(v1, after=163)
    shown = [(n.user, n.app_name, n.app_version) for n in announced]
    assert ("alice", "comfyui", "1.1.7") in shown
    assert ("alice", "calibre", "1.0.0") not in shown  # the same version, rendered again


def _offered(event: LedgerEvent, user: str, app_id: str) -> bool:
    return isinstance(event, listing.Offered) and (event.user, event.app_id) == (user, app_id)
