"""The catalog, hash and history views on a real store."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from market_ledger.bootstrap import Ledger
from market_ledger.domain.decider import Command
from market_ledger.domain.installation import ObserveInstallationState, RemoveInstallation
from market_ledger.domain.listing import DelistApp, RetryParked, WithdrawListing
from market_ledger.domain.market_source import ConfigureSource, RemoveSource, UpdateSourceExtras
from market_ledger.domain.user import RegisterUser, RemoveUser
from market_ledger.projections import queries
from market_ledger.projections import store as view_store
from market_ledger.projections.rebuild import rebuild
from tests.conftest import FakeClock, StoreFactory
from tests.projections.agreement import assert_listing_rows_agree_with_the_domain
from tests.support.builders import SOURCE, fail, offer, render


def catalog_of(ledger: Ledger, user: str = "alice") -> dict[str, Any]:
    ledger.catch_up()
    with ledger.read() as conn:
        return queries.catalog(conn, ledger.tables, user)


def apps_of(ledger: Ledger, user: str = "alice") -> dict[str, dict[str, Any]]:
    return {a["app_id"]: a for a in catalog_of(ledger, user)["sources"][SOURCE]["apps"]}


def hash_of(ledger: Ledger, user: str = "alice") -> str:
    ledger.catch_up()
    with ledger.read() as conn:
        return queries.stored_hash(conn, ledger.tables, user)


def installed(
    ledger: Ledger, clock: FakeClock, state: str, app: str = "firefox", **fields: Any
) -> None:
    ledger.handler.execute(
        ObserveInstallationState("alice", app, state, clock.advance(1), source=SOURCE, **fields)
    )


@pytest.fixture
def market(ledger: Ledger) -> Ledger:
    ledger.handler.handle(
        RegisterUser("alice"),
        ConfigureSource(SOURCE, "remote", "https://market.example"),
    )
    return ledger


def test_the_catalog_has_the_public_shape_with_apps_sorted_and_nulls(market: Ledger) -> None:
    zoo, abc = offer("zoo"), offer("abc", appLabels=["new"])
    market.handler.handle(zoo, abc, render(abc))
    view = catalog_of(market)
    assert set(view) == {"user", "hash", "sources"}
    assert view["user"] == "alice" and len(view["hash"]) == 64
    assert view["sources"] == {
        SOURCE: {
            "type": "remote",
            "apps": [
                {
                    "app_id": "abc",
                    "name": "abc",
                    "status": "latest",
                    "latest_version": "1.0.0",
                    "pending_version": None,
                    "labels": ["new"],
                    "installed_state": None,
                },
                {
                    "app_id": "zoo",
                    "name": "zoo",
                    "status": "pending",
                    "latest_version": None,
                    "pending_version": "1.0.0",
                    "labels": [],
                    "installed_state": None,
                },
            ],
        }
    }


def test_a_failed_upgrade_keeps_the_last_good_version_visible(market: Ledger) -> None:
    v1, v2 = offer(version="1.0.0"), offer(version="2.0.0")
    market.handler.handle(v1, render(v1), v2, fail(v2))
    app = apps_of(market)["firefox"]
    assert (app["status"], app["latest_version"], app["pending_version"]) == (
        "failed",
        "1.0.0",
        "2.0.0",
    )


def test_a_delisted_app_disappears_unless_the_user_has_it_installed(
    market: Ledger, clock: FakeClock
) -> None:
    v1 = offer()
    market.handler.handle(v1, render(v1), offer(appLabels=["suspend"]))
    assert "firefox" not in apps_of(market)
    installed(market, clock, "running")
    app = apps_of(market)["firefox"]
    assert (app["status"], app["labels"], app["installed_state"]) == (
        "delisted",
        ["suspend"],
        "running",
    )
    installed(market, clock, "uninstalled")
    assert "firefox" not in apps_of(market)  # no further event needed to hide it


def test_listings_of_a_removed_source_or_user_are_not_shown(market: Ledger) -> None:
    v1 = offer()
    market.handler.handle(v1, render(v1))
    before = hash_of(market)
    market.handler.execute(RemoveSource(SOURCE))
    assert catalog_of(market)["sources"] == {}
    assert hash_of(market) != before
    market.handler.execute(RemoveUser("alice"))
    market.catch_up()
    with market.read() as conn, pytest.raises(queries.UnknownUser):
        queries.catalog(conn, market.tables, "alice")


def test_the_hash_changes_with_what_the_user_sees_and_only_with_that(
    market: Ledger, clock: FakeClock
) -> None:
    h0 = hash_of(market)
    v1 = offer()
    market.handler.execute(v1)
    assert hash_of(market) == h0, "a pending offer shows nothing new"
    market.handler.execute(render(v1))
    h1 = hash_of(market)
    assert h1 != h0
    installed(market, clock, "downloading", progress="10")
    h2 = hash_of(market)
    assert h2 != h1
    installed(market, clock, "downloading", progress="80")
    assert hash_of(market) == h2, "download progress is volatile and not hashed"
    market.handler.execute(UpdateSourceExtras(SOURCE, {"tops": [{"appid": "firefox"}]}))
    assert hash_of(market) != h2, "source extras are part of what the user sees"


def test_another_users_changes_leave_the_hash_alone(market: Ledger) -> None:
    market.handler.execute(RegisterUser("bob"))
    before = hash_of(market)
    bob_offer = offer(user="bob")
    market.handler.handle(bob_offer, render(bob_offer))
    assert hash_of(market) == before
    assert hash_of(market, "bob") != before


def test_history_tells_what_happened_to_an_app_and_when(market: Ledger, clock: FakeClock) -> None:
    v1 = offer(version="1.0.0")
    market.handler.handle(v1, fail(v1, "chart-repo timed out"))
    clock.advance(5)
    market.handler.execute(render(v1))
    installed(market, clock, "running", event_id="e-1")
    market.catch_up()
    with market.read() as conn:
        entries = queries.history(conn, market.tables, "alice", "firefox")
    assert [e["event"] for e in entries] == [
        "offered",
        "render_failed",
        "rendered",
        "state_observed",
    ]
    positions = [e["position"] for e in entries]
    assert positions == sorted(positions)
    failed = entries[1]
    assert failed["reason"] == "chart-repo timed out" and failed["attempt"] == 1
    assert failed["retry_at"] > failed["at"]
    assert entries[3]["state"] == "running" and entries[3]["event_id"] == "e-1"
    with market.read() as conn:
        assert queries.history(conn, market.tables, "alice", "firefox", "elsewhere") == []


def test_status_counts_listings_and_lists_parked_renders(market: Ledger) -> None:
    a, b = offer("a"), offer("b")
    market.handler.handle(a, b, render(a), *(fail(b) for _ in range(10)))
    market.catch_up()
    with market.read() as conn:
        report = queries.status(conn, market.tables, market.projector.head())
    assert report["projector_lag"] == 0
    assert report["listings"] == {"pending": 0, "latest": 1, "failed": 0, "parked": 1}
    assert [(p["app_id"], p["attempts"]) for p in report["parked"]] == [("b", 10)]


def test_a_batch_that_fails_half_way_applies_nothing_and_is_applied_whole_later(
    market: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    market.catch_up()
    start = market.projector.position()
    v1 = offer()
    market.handler.handle(v1, render(v1))
    real_insert = view_store.insert_rows

    def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr("market_ledger.projections.projector.insert_rows", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        market.catch_up()
    assert market.projector.position() == start
    with market.read() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(market.tables.listings)).scalar()
            == 0
        )
    monkeypatch.setattr("market_ledger.projections.projector.insert_rows", real_insert)
    market.catch_up()
    assert apps_of(market)["firefox"]["status"] == "latest"


def test_two_projectors_on_one_store_apply_each_event_once(store: StoreFactory) -> None:
    first, second = store.open(), store.open()
    first.handler.execute(RegisterUser("alice"))
    for i in range(30):
        o = offer(f"app{i}")
        first.handler.handle(o, render(o))
    first.projector.batch_size = second.projector.batch_size = 7
    for _ in range(20):
        first.projector.run_batch()
        second.projector.run_batch()
    first.catch_up()
    with first.read() as conn:
        history_rows = conn.execute(
            sa.select(sa.func.count()).select_from(first.tables.history)
        ).scalar()
    assert history_rows == 60
    assert first.rebuild(verify=True).differences == ()


def test_verify_finds_a_tampered_view_and_rebuild_repairs_it(market: Ledger) -> None:
    v1 = offer()
    market.handler.handle(v1, render(v1))
    market.catch_up()
    assert market.rebuild(verify=True).differences == ()
    with market.writer.begin() as conn:
        conn.execute(sa.update(market.tables.listings).values(status="pending"))
        conn.execute(sa.update(market.tables.users).values(hash="0" * 64))
    differences = market.rebuild(verify=True).differences
    assert {d.table for d in differences} == {"listings", "users"}
    assert "status: live='pending' rebuilt='latest'" in next(
        d.describe() for d in differences if d.table == "listings"
    )
    report = market.rebuild()
    assert report.events == market.projector.head()
    assert market.rebuild(verify=True).differences == ()
    assert apps_of(market)["firefox"]["status"] == "latest"


def test_reads_are_consistent_with_a_rebuild_at_every_step(
    market: Ledger, clock: FakeClock
) -> None:
    v1, v2 = offer(version="1"), offer(version="2")
    steps: list[Command] = [
        v1,
        render(v1),
        v2,
        fail(v2),
        DelistApp("alice", SOURCE, "firefox"),
        v1,
    ]
    for step in steps:
        market.handler.execute(step)
        clock.advance(timedelta(minutes=1).total_seconds())
        market.catch_up()
        assert market.rebuild(verify=True).differences == ()


def test_a_rebuild_with_history_filled_by_a_second_process_equals_the_live_views(
    store: StoreFactory, clock: FakeClock
) -> None:

    ledger = store.open(clock)
    ledger.handler.handle(RegisterUser("alice"), ConfigureSource(SOURCE, "remote", "https://m"))
    for i in range(20):
        o = offer(f"app{i}")
        ledger.handler.handle(o, fail(o), render(o))
        ledger.handler.execute(
            ObserveInstallationState("alice", f"app{i}", "running", clock.advance(1), source=SOURCE)
        )
    ledger.handler.execute(RemoveInstallation("alice", "app3", clock.advance(1)))
    ledger.catch_up()
    url = ledger.writer.url.render_as_string(hide_password=False)
    report = rebuild(
        ledger.application,
        ledger.writer,
        ledger.tables,
        verify=True,
        batch_size=7,
        parallel=(url, store.schema),
    )
    assert report.differences == () and report.compared_rows > 100


def test_a_listing_row_says_what_its_aggregate_says_at_every_step_of_its_life(
    market: Ledger,
) -> None:
    v1, v2 = offer(version="1"), offer(version="2", appLabels=["new"])
    steps: list[list[Command]] = [
        [v1],
        [fail(v1)] * 10,  # parked
        [RetryParked("alice", SOURCE, "firefox")],
        [fail(v1)],
        [render(v1)],
        [v2],
        [render(v2)],
        [offer(version="2", appLabels=["suspend"])],
        [offer(version="2")],
        [DelistApp("alice", SOURCE, "firefox")],
        [WithdrawListing("alice", SOURCE, "firefox", "source removed")],
        [v1],
    ]
    for step in steps:
        market.handler.handle(*step)
        market.catch_up()
        assert_listing_rows_agree_with_the_domain(market)
