"""The market data's latest entries, encoded once per state of a user's listing rows."""

from __future__ import annotations

import orjson
import pytest
import sqlalchemy as sa

from market_ledger.bootstrap import Ledger
from market_ledger.domain.installation import ObserveInstallationState
from market_ledger.domain.listing import DelistApp
from market_ledger.domain.market_source import ConfigureSource
from market_ledger.domain.user import RegisterUser
from market_ledger.projections import queries
from market_ledger.projections.market_reads import (
    MARKET_LISTING_COLUMNS,
    LatestEntriesCache,
    SimpleInfoCache,
    simple_infos,
)
from market_ledger.projections.market_shapes import market_sources
from market_ledger.projections.store import upsert_rows
from market_ledger.projections.views_version import NAME, VIEWS_VERSION
from tests.conftest import FakeClock
from tests.support.builders import SOURCE, offer, render


@pytest.fixture
def market(ledger: Ledger, clock: FakeClock) -> Ledger:
    apps = [offer(app) for app in ("firefox", "gitea", "zulip")] + [offer("mastodon", user="bob")]
    ledger.handler.handle(
        RegisterUser("alice"),
        RegisterUser("bob"),
        ConfigureSource(SOURCE, "remote", "https://market.example"),
        *apps,
        *(render(app) for app in apps),
        ObserveInstallationState(
            "alice", "gitea", "downloading", clock.advance(1), source=SOURCE, progress="10"
        ),
    )
    ledger.catch_up()
    return ledger


def cached_answer(ledger: Ledger, cache: LatestEntriesCache, user: str = "alice") -> bytes:
    with ledger.read() as conn:
        rows = queries.user_rows(conn, ledger.tables, user, ())
        index, latest = cache.latest(conn, ledger.tables, rows)
        return orjson.dumps(market_sources(rows, with_apps=True, index=index, latest=latest))


def fresh_answer(ledger: Ledger, user: str = "alice") -> bytes:
    """Every listing row read and every entry encoded again."""
    with ledger.read() as conn:
        rows = queries.user_rows(conn, ledger.tables, user, MARKET_LISTING_COLUMNS)
        infos = simple_infos(conn, ledger.tables, rows.listings, SimpleInfoCache())
        return orjson.dumps(market_sources(rows, with_apps=True, infos=infos))


def encoded(ledger: Ledger, cache: LatestEntriesCache) -> object:
    with ledger.read() as conn:
        rows = queries.user_rows(conn, ledger.tables, "alice", ())
        return cache.latest(conn, ledger.tables, rows)[1]


def apps_in(answer: bytes) -> list[str]:
    latest = orjson.loads(answer)[SOURCE]["app_info_latest"]
    return [entry["app_simple_info"]["app_id"] for entry in latest]


def test_given_cached_entries_when_only_progress_changes_then_they_are_reused_and_current(
    market: Ledger, clock: FakeClock
) -> None:
    cache = LatestEntriesCache(4, SimpleInfoCache())
    before = encoded(market, cache)
    market.handler.execute(
        ObserveInstallationState(
            "alice", "gitea", "downloading", clock.advance(1), source=SOURCE, progress="60"
        )
    )
    market.catch_up()
    assert encoded(market, cache) is before
    answer = cached_answer(market, cache)
    assert answer == fresh_answer(market)
    [state] = orjson.loads(answer)[SOURCE]["app_state_latest"]
    assert state["status"]["progress"] == "60"


def test_given_cached_entries_when_a_listing_changes_then_they_are_encoded_again(
    market: Ledger,
) -> None:
    cache = LatestEntriesCache(4, SimpleInfoCache())
    before = encoded(market, cache)
    newer = offer("zulip", version="2.0.0")
    market.handler.handle(newer, render(newer))
    market.catch_up()
    assert encoded(market, cache) is not before
    answer = cached_answer(market, cache)
    assert answer == fresh_answer(market)
    zulip = orjson.loads(answer)[SOURCE]["app_info_latest"][-1]
    assert zulip["version"] == "2.0.0"


def test_given_an_installed_delisted_app_when_it_is_uninstalled_then_it_leaves_the_entries(
    market: Ledger, clock: FakeClock
) -> None:
    cache = LatestEntriesCache(4, SimpleInfoCache())
    market.handler.execute(DelistApp("alice", SOURCE, "gitea"))
    market.catch_up()
    assert apps_in(cached_answer(market, cache)) == ["firefox", "gitea", "zulip"]
    market.handler.execute(
        ObserveInstallationState("alice", "gitea", "uninstalled", clock.advance(1), source=SOURCE)
    )
    market.catch_up()
    answer = cached_answer(market, cache)
    assert apps_in(answer) == ["firefox", "zulip"]
    assert answer == fresh_answer(market)


def test_given_two_users_then_each_gets_the_entries_of_their_own_listings(
    market: Ledger,
) -> None:
    cache = LatestEntriesCache(4, SimpleInfoCache())
    assert apps_in(cached_answer(market, cache)) == ["firefox", "gitea", "zulip"]
    assert apps_in(cached_answer(market, cache, "bob")) == ["mastodon"]
    assert cached_answer(market, cache, "bob") == fresh_answer(market, "bob")
    assert apps_in(cached_answer(market, cache)) == ["firefox", "gitea", "zulip"]


def test_given_cached_entries_when_another_projection_version_is_switched_in_at_the_same_position_then_they_are_read_again(  # noqa: E501
    market: Ledger,
) -> None:
    # given alice's entries encoded from the views as they are
    cache = LatestEntriesCache(4, SimpleInfoCache())
    cached_answer(market, cache)
    # when views a changed projection built replace them at the same position (here: one
    # listing's time made differently, the positions and the count as they were)
    listings = market.tables.listings
    with market.writer.begin() as conn:
        found = conn.execute(
            sa.select(listings.c.listing_id, listings.c.updated_at).where(
                listings.c.user_name == "alice", listings.c.app_id == "firefox"
            )
        ).one()
        conn.execute(
            sa.update(listings)
            .where(listings.c.listing_id == found.listing_id)
            .values(updated_at="2031" + found.updated_at[4:])
        )
        upsert_rows(conn, market.tables.position, [{"name": NAME, "position": VIEWS_VERSION + 1}])

    # then the next answer is the new views', not the entries kept from the old ones
    assert cached_answer(market, cache) == fresh_answer(market)
