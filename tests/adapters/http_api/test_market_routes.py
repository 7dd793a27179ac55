"""The market's routes over real HTTP: paths, envelope and shapes as in docs/protocols.md."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from market_ledger.bootstrap import Ledger
from market_ledger.domain.installation import ObserveInstallationState
from market_ledger.domain.listing import DelistApp, OfferApp, RecordRender
from market_ledger.domain.market_source import ConfigureSource, ObserveCatalog, UpdateSourceExtras
from market_ledger.domain.rendering import compact_rendered
from market_ledger.domain.user import RegisterUser
from market_ledger.projections import queries
from tests.conftest import FakeClock
from tests.support.builders import SOURCE, fail, offer, render
from tests.support.http_live import MARKET, Api, live_api

EXTRAS = {
    "topics": [{"_id": "t1", "name": "Editors' picks", "data": {}}],
    "recommends": [{"name": "r1", "content": "firefox"}],
    "tops": [{"appid": "firefox", "rank": 1}],
    "latest": ["firefox"],
    "tags": [{"_id": "g1", "name": "browsers"}],
}


def rendered_firefox(command: OfferApp) -> RecordRender:
    """A render shaped like chart-repo's app_data, its entry copies compacted away."""

    entry = dict(command.manifest.entry)
    app_data = {
        "type": "app-info-latest",
        "version": command.manifest.version,
        "raw_data": entry,
        "raw_package": f"/charts/firefox-{command.manifest.version}.tgz",
        "rendered_package": f"/rendered/alice/firefox-{command.manifest.version}",
        "values": [],
        "app_info": {
            "app_entry": entry,
            "image_analysis": {"app_id": "firefox", "total_images": 1, "images": {}},
        },
        "app_simple_info": {
            "app_id": "firefox",
            "app_name": "firefox",
            "app_version": command.manifest.version,
            "app_title": {"en-US": "Firefox"},
        },
    }
    return render(command, **compact_rendered(app_data, entry))


@pytest.fixture
def market(ledger: Ledger, clock: FakeClock) -> Ledger:
    v1 = offer(version="1.0.0")
    gone = offer("gone")
    parked = offer("broken")
    ledger.handler.handle(
        RegisterUser("alice"),
        RegisterUser("root", role="admin"),
        ConfigureSource(SOURCE, "remote", "https://market.example"),
        v1,
        rendered_firefox(v1),
        gone,
        render(gone),
        parked,
        *(fail(parked) for _ in range(10)),
        UpdateSourceExtras(SOURCE, EXTRAS),
        ObserveCatalog(SOURCE, "remote-hash-1", "v42", 3),
        ObserveInstallationState(
            "alice",
            "firefox",
            "running",
            clock.advance(1),
            source=SOURCE,
            version="1.0.0",
            op_type="install",
            title="Firefox",
            entrances=({"name": "firefox", "state": "running", "url": "ff.alice.olares"},),
        ),
        DelistApp("alice", SOURCE, "gone"),
    )
    ledger.catch_up()
    return ledger


@pytest.fixture
def http(market: Ledger) -> Iterator[Api]:
    with live_api(market) as api:
        yield api


def test_the_hash_route_answers_the_same_digest_as_the_hash_command(
    http: Api, market: Ledger
) -> None:
    data = http.data(http.get(f"{MARKET}/market/hash"))
    with market.read() as conn:
        assert data == {"hash": queries.stored_hash(conn, market.tables, "alice")}


def test_market_data_lists_latest_entries_states_and_extras_per_source(
    http: Api, market: Ledger
) -> None:
    data = http.data(http.get(f"{MARKET}/market/data"))
    assert data["user_id"] == "alice" and isinstance(data["timestamp"], int)
    user_data = data["user_data"]
    with market.read() as conn:
        assert user_data["hash"] == queries.stored_hash(conn, market.tables, "alice")
    source = user_data["sources"][SOURCE]
    assert source["type"] == "remote"
    # rendered and visible only: the parked app never rendered, the delisted one is hidden
    [latest] = source["app_info_latest"]
    assert latest["type"] == "app-info-latest" and latest["version"] == "1.0.0"
    assert latest["app_simple_info"] == {
        "app_id": "firefox",
        "app_name": "firefox",
        "app_version": "1.0.0",
        "app_title": {"en-US": "Firefox"},
        "app_labels": [],
    }
    [state] = source["app_state_latest"]
    assert state["type"] == "app-state-latest" and state["version"] == "1.0.0"
    assert state["status"]["name"] == "firefox" and state["status"]["state"] == "running"
    assert state["status"]["opType"] == "install"
    # in app-service's shape, as the notifications write it: the id from the URL, no gaps
    assert state["status"]["entranceStatuses"] == [
        {
            "id": "ff",
            "name": "firefox",
            "state": "running",
            "statusTime": "",
            "reason": "",
            "url": "ff.alice.olares",
            "invisible": False,
        }
    ]
    assert source["others"] == {
        "hash": "remote-hash-1",
        "version": "v42",
        "topics": EXTRAS["topics"],
        "topic_lists": [],
        "recommends": EXTRAS["recommends"],
        "pages": [],
        "tops": EXTRAS["tops"],
        "latest": EXTRAS["latest"],
        "tags": EXTRAS["tags"],
    }


def test_market_data_follows_the_views_as_they_move(
    http: Api, market: Ledger, clock: FakeClock
) -> None:
    before = http.data(http.get(f"{MARKET}/market/data"))["user_data"]
    v2 = offer(version="2.0.0", appLabels=["hot"])
    market.handler.handle(v2, rendered_firefox(v2))
    market.catch_up()
    after = http.data(http.get(f"{MARKET}/market/data"))["user_data"]
    [latest] = after["sources"][SOURCE]["app_info_latest"]
    assert latest["version"] == "2.0.0"
    assert latest["app_simple_info"]["app_labels"] == ["hot"]
    assert after["hash"] != before["hash"]
    assert after["hash"] == http.data(http.get(f"{MARKET}/market/hash"))["hash"]


def test_given_a_read_when_only_an_installations_progress_moves_then_the_next_read_shows_it(
    http: Api, market: Ledger, clock: FakeClock
) -> None:
    before = http.data(http.get(f"{MARKET}/market/data"))["user_data"]
    for progress in ("40", "80"):
        market.handler.execute(
            ObserveInstallationState(
                "alice",
                "firefox",
                "downloading",
                clock.advance(1),
                source=SOURCE,
                version="1.0.0",
                op_type="upgrade",
                progress=progress,
            )
        )
        market.catch_up()
        for route in ("data", "state"):
            sources = http.data(http.get(f"{MARKET}/market/{route}"))["user_data"]["sources"]
            [state] = sources[SOURCE]["app_state_latest"]
            assert (state["status"]["state"], state["status"]["progress"]) == (
                "downloading",
                progress,
            )
    after = http.data(http.get(f"{MARKET}/market/data"))["user_data"]
    assert (
        after["sources"][SOURCE]["app_info_latest"] == before["sources"][SOURCE]["app_info_latest"]
    )


def test_market_state_lists_installed_states_and_the_hash_only(http: Api) -> None:
    data = http.data(http.get(f"{MARKET}/market/state"))
    user_data = data["user_data"]
    assert set(user_data["sources"][SOURCE]) == {"type", "app_state_latest"}
    assert [s["status"]["name"] for s in user_data["sources"][SOURCE]["app_state_latest"]] == [
        "firefox"
    ]
    assert user_data["hash"] == http.data(http.get(f"{MARKET}/market/hash"))["hash"]


def test_apps_answers_full_entries_and_names_the_ones_not_found(http: Api) -> None:
    body = {
        "apps": [
            {"appid": "firefox", "sourceDataName": SOURCE},
            {"appid": "broken", "sourceDataName": SOURCE},
            {"appid": "firefox", "sourceDataName": "elsewhere"},
        ]
    }
    data = http.data(http.post(f"{MARKET}/apps", body))
    assert data["total_count"] == 1
    [entry] = data["apps"]
    assert entry["type"] == "app-info-latest" and entry["version"] == "1.0.0"
    expected_entry = {**offer().manifest.entry, "appLabels": []}
    assert entry["raw_data"] == expected_entry, "the compacted copies are put back"
    assert entry["app_info"]["app_entry"] == expected_entry
    assert entry["app_info"]["image_analysis"]["total_images"] == 1
    assert entry["raw_package"] == "/charts/firefox-1.0.0.tgz"
    assert entry["app_simple_info"]["app_id"] == "firefox"
    assert data["not_found"] == [
        {"appid": "broken", "sourceDataName": SOURCE},
        {"appid": "firefox", "sourceDataName": "elsewhere"},
    ]


def test_apps_keeps_serving_the_rendered_version_while_a_newer_one_waits(
    http: Api, market: Ledger
) -> None:
    v2 = offer(version="2.0.0", description={"en-US": "newer"})
    market.handler.handle(v2, fail(v2))
    market.catch_up()
    body = {"apps": [{"appid": "firefox", "sourceDataName": SOURCE}]}
    [entry] = http.data(http.post(f"{MARKET}/apps", body))["apps"]
    assert entry["version"] == "1.0.0"
    assert entry["raw_data"]["version"] == "1.0.0" and "description" not in entry["raw_data"]


def test_an_installed_app_stays_in_the_market_data_after_it_is_delisted(
    http: Api, market: Ledger
) -> None:
    market.handler.execute(DelistApp("alice", SOURCE, "firefox"))
    market.catch_up()
    source = http.data(http.get(f"{MARKET}/market/data"))["user_data"]["sources"][SOURCE]
    assert [a["app_simple_info"]["app_id"] for a in source["app_info_latest"]] == ["firefox"]


def test_states_of_apps_from_an_unknown_source_are_listed_under_that_source(
    http: Api, market: Ledger, clock: FakeClock
) -> None:
    market.handler.execute(ObserveInstallationState("alice", "files", "running", clock()))
    market.catch_up()
    sources: dict[str, Any] = http.data(http.get(f"{MARKET}/market/state"))["user_data"]["sources"]
    assert [s["status"]["name"] for s in sources[""]["app_state_latest"]] == ["files"]


def test_a_render_without_simple_info_gets_one_derived_from_the_offered_entry(
    http: Api, market: Ledger
) -> None:
    plain = offer("plain", categories=["Utilities"], supportArch=["amd64"])
    market.handler.handle(plain, render(plain))  # a render with neither copy nor simple info
    market.catch_up()
    source = http.data(http.get(f"{MARKET}/market/data"))["user_data"]["sources"][SOURCE]
    info = next(
        a["app_simple_info"]
        for a in source["app_info_latest"]
        if a["app_simple_info"].get("app_id") == "plain"
    )
    assert info["app_name"] == "plain" and info["app_version"] == "1.0.0"
    assert info["categories"] == ["Utilities"] and info["support_arch"] == ["amd64"]
    assert info["app_title"] == {"en-US": "Plain"} and info["app_labels"] == []
