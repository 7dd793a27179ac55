"""Aggregates rehydrated from the v1 store decide as they would from events of today's shape.

The listings of the fixture were rendered by ``listing.Rendered`` version 1 events. Loaded
today (through the library's repository, or the handler's bulk loader for a group of
commands), every event reaches the aggregate upcast: the state is the one old code's views
recorded, and a render decided on top of it names the version it replaces, which only the v1
events could have said. The events appended are of today's shape, and the views rebuilt from
the mixed log still verify.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest
import sqlalchemy as sa

from market_ledger.adapters.event_store.settings import bulk_loader_for
from market_ledger.bootstrap import Ledger
from market_ledger.domain import listing
from market_ledger.domain.listing import LISTING, ListingState, ListingStatus
from tests.support.builders import offer, render
from tests.support.store_v1 import (
    RENDERED_V1,
    copy_of_store_v1,
    field_names,
    open_store,
    stored,
    stream_of,
)

USER = "alice"
APP = "calibre"


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    return copy_of_store_v1(tmp_path)


@pytest.fixture
def ledger(copy: Path) -> Iterator[Ledger]:
    opened = open_store(copy)
    yield opened
    opened.close()


def view_row(ledger: Ledger, listing_id: UUID) -> dict[str, object]:
    listings = ledger.tables.listings
    with ledger.read() as conn:
        row = conn.execute(
            sa.select(listings).where(listings.c.listing_id == listing_id.hex)
        ).mappings()
        return dict(row.one())


def assert_matches_the_views(state: ListingState, row: dict[str, object]) -> None:
    """The state rehydrated today agrees with the row old code's projector wrote."""
    assert state.status.value == row["status"]
    assert (state.latest_version, state.latest_digest) == (
        row["latest_version"],
        row["latest_digest"],
    )
    assert state.pending_version == row["pending_version"]
    assert state.labels == tuple(json.loads(str(row["labels"])))


def test_given_v1_renders_when_loaded_by_the_repository_then_the_state_is_the_old_views(
    copy: Path, ledger: Ledger
) -> None:
    stream = UUID(hex=stream_of(copy, USER, APP))
    assert len([r for r in stored(copy, RENDERED_V1) if r[1] == stream.hex]) == 2

    state = ledger.handler.load(stream, LISTING)  # a fresh handler: nothing cached

    assert isinstance(state, ListingState)
    assert state.status is ListingStatus.LATEST and state.latest_version == "1.0.0"
    assert_matches_the_views(state, view_row(ledger, stream))


def test_given_v1_renders_when_bulk_loaded_then_each_state_is_the_repositorys(
    copy: Path, ledger: Ledger
) -> None:
    streams = sorted({UUID(hex=stream) for _, stream, _ in stored(copy, RENDERED_V1)})

    found = bulk_loader_for(ledger.application)(dict.fromkeys(streams, 0))

    for stream in streams:
        events = found[stream]
        assert all(set(vars(e)) == field_names(e) for e in events)
        rendered = [e for e in events if isinstance(e, listing.Rendered)]
        assert rendered and all(e.replaces is None for e in rendered)
        state = LISTING.fold(None, events)
        assert state == ledger.handler.load(stream, LISTING)
        assert isinstance(state, ListingState)
        assert_matches_the_views(state, view_row(ledger, stream))


def test_given_v1_renders_when_a_new_version_is_rendered_then_it_names_the_v1_one_it_replaces(
    copy: Path, ledger: Ledger
) -> None:
    offered = offer(APP, "1.0.1", user=USER)

    ledger.handler.execute(offered)  # with its manifest: a group, read by the bulk loader
    outcome = ledger.handler.execute(render(offered))

    (event,) = outcome.events
    assert isinstance(event, listing.Rendered)
    assert (event.app_version, event.replaces) == ("1.0.1", "1.0.0")
    ((topic, state),) = [
        (t, s) for t, s in _raw(copy, outcome.position) if t.startswith("listing.Rendered")
    ]
    assert topic == "listing.Rendered.v2"
    assert (state["class_version"], state["replaces"]) == (2, "1.0.0")


def test_given_new_events_on_top_of_v1_ones_when_rebuilt_then_the_views_verify_and_hold_both(
    copy: Path, ledger: Ledger
) -> None:
    offered = offer(APP, "1.0.1", user=USER)
    ledger.handler.execute(offered)
    ledger.handler.execute(render(offered))
    ledger.catch_up()

    report = ledger.rebuild(verify=True)
    swapped = ledger.rebuild()

    assert [d.describe() for d in report.differences] == []
    assert swapped.position == report.position > 217
    stream = UUID(hex=stream_of(copy, USER, APP))
    row = view_row(ledger, stream)
    assert (row["status"], row["latest_version"]) == ("latest", "1.0.1")
    assert_matches_the_views(ledger.handler.load(stream, LISTING), row)
    with ledger.read() as conn:
        history = conn.execute(
            sa.select(ledger.tables.history.c.position, ledger.tables.history.c.details)
            .where(ledger.tables.history.c.user_name == USER)
            .where(ledger.tables.history.c.app == APP)
            .where(ledger.tables.history.c.event == "rendered")
            .order_by(ledger.tables.history.c.position)
        ).all()
    assert [json.loads(details)["version"] for _, details in history] == ["1.0.0", "1.0.0", "1.0.1"]


def _raw(path: Path, position: int | None) -> list[tuple[str, dict[str, object]]]:
    """(topic, stored state) of the event at ``position``, as the file holds it."""
    assert position is not None
    found = []
    for topic in ("listing.Rendered.v2", RENDERED_V1):
        found += [(topic, state) for p, _, state in stored(path, topic) if p == position]
    return found
