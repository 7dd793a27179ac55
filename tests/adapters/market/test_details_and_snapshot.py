"""The market source client's details and merged snapshot.

The detail tests use respx; the snapshot tests talk to FakeMarket over loopback HTTP.
"""

from __future__ import annotations

import asyncio
import copy
import math
from typing import Any

import httpx
import pytest
import respx

from market_ledger.adapters.market.detail_merge import merge_detail
from market_ledger.adapters.remote.client import RetrySettings
from market_ledger.service.ports import CatalogSource, RemoteError
from market_ledger.service.remote_values import MarketSnapshot
from tests.adapters.market.support import BASE, FAST, VERSION, app, client, run
from tests.support.fakes import FakeMarket, Reply
from tests.support.fakes.market import load_timeline

# --- details ------------------------------------------------------------------------------------


@respx.mock
def test_given_a_202_then_a_200_when_details_are_fetched_then_the_batch_is_retried() -> None:
    route = respx.post(f"{BASE}/api/v1/applications/info").mock(
        side_effect=[
            httpx.Response(202, json={"apps": {}, "message": "being loaded"}),
            httpx.Response(200, json={"apps": {"a": app("a", apiVersion="v2")}, "not_found": []}),
        ]
    )
    report = run(lambda: client().fetch_details(["a"], VERSION))
    assert route.call_count == 2
    assert report.complete
    assert report.apps["a"]["apiVersion"] == "v2"


@respx.mock
def test_given_a_400_when_details_are_fetched_then_the_batch_fails_without_retry() -> None:
    route = respx.post(f"{BASE}/api/v1/applications/info").mock(
        return_value=httpx.Response(400, text="bad ids")
    )
    report = run(lambda: client().fetch_details(["a", "b"], VERSION))
    assert route.call_count == 1
    assert set(report.failures) == {"a", "b"}
    assert "HTTP 400: bad ids" in report.failures["a"]


@respx.mock
def test_given_a_detail_answer_with_odd_apps_then_each_is_reported_and_unasked_ones_ignored() -> (
    None
):
    respx.post(f"{BASE}/api/v1/applications/info").mock(
        return_value=httpx.Response(
            200,
            json={
                "apps": {"a": app("a"), "b": "oops", "stranger": app("stranger")},
                "not_found": ["c"],
            },
        )
    )
    report = run(lambda: client().fetch_details(["a", "b", "c", "d"], VERSION))
    assert set(report.apps) == {"a"}
    assert report.not_found == ("c",)
    assert report.failures == {
        "b": "detail entry must be an object, got string",
        "d": "missing from the detail response (neither in apps nor not_found)",
    }


def test_merge_keeps_every_detail_field_but_summary_texts_and_never_erases_with_empties() -> None:
    summary = {
        "id": "a",
        "name": "a",
        "version": "1.0.0",
        "title": {"en-US": "Summary title"},
        "description": {"en-US": "Summary text"},
        "appLabels": ["suspend"],
        "categories": ["AI"],
        "dir": "a",
    }
    detail = {
        "id": "a",
        "name": "a",
        "version": "1.0.1",
        "title": {"en-US": "Detail title"},
        "fullDescription": {"en-US": "Only in detail"},
        "apiVersion": "v2",
        "ports": [{"name": "web", "port": 80}],
        "envs": [{"envName": "TZ"}],
        "appLabels": [],
        "categories": None,
        "onlyAdmin": False,
        "rating": 0,
    }
    merged = merge_detail(summary, detail)
    assert merged["title"] == {"en-US": "Summary title"}
    assert merged["description"] == {"en-US": "Summary text"}
    assert merged["fullDescription"] == {"en-US": "Only in detail"}
    assert merged["version"] == "1.0.1"
    assert merged["apiVersion"] == "v2"
    assert merged["ports"] == [{"name": "web", "port": 80}]
    assert merged["envs"] == [{"envName": "TZ"}]
    assert merged["appLabels"] == ["suspend"]
    assert merged["categories"] == ["AI"]
    assert merged["onlyAdmin"] is False and merged["rating"] == 0
    assert merged["dir"] == "a"


# --- against the fake market --------------------------------------------------------------------


def apps_after(seq: int) -> dict[str, dict[str, Any]]:
    apps: dict[str, dict[str, Any]] = {}
    for change_set in load_timeline():
        if change_set["seq"] > seq:
            break
        apps.update(copy.deepcopy(change_set["upserts"]))
        for key in change_set["removed"]:
            apps.pop(key, None)
    return apps


def test_given_the_real_catalog_when_snapshotted_then_every_app_is_offered_in_batches_of_ten() -> (
    None
):
    expected = apps_after(40)
    with FakeMarket.from_timeline(40) as market:
        source: CatalogSource = client(market.url)
        snapshot = run(lambda: source.fetch_snapshot(VERSION))
        assert set(snapshot.apps) == set(expected)
        assert snapshot.complete and snapshot.hash_agrees
        assert snapshot.remote_hash == market.current_hash()
        assert market.count("detail") == math.ceil(len(expected) / 10)
        assert market.count("hash") == 1 and market.count("catalog") == 1
        assert all(len(r.json()["app_ids"]) <= 10 for r in market.requests_to("detail"))
        assert all(r.param("version") == VERSION for r in market.requests_to("catalog"))
    assert set(snapshot.manifests()) == set(expected)


def test_given_a_change_set_applied_when_snapshotted_again_then_the_catalog_and_hash_follow() -> (
    None
):
    timeline = load_timeline()
    removal = next(cs for cs in timeline if cs["removed"])
    with FakeMarket.from_timeline(removal["seq"] - 1) as market:
        before = run(lambda: client(market.url).fetch_snapshot(VERSION))
        market.apply_change_set(removal)
        after = run(lambda: client(market.url).fetch_snapshot(VERSION))
    assert before.remote_hash != after.remote_hash
    for key in removal["removed"]:
        assert key not in after.apps
    for key, entry in removal["upserts"].items():
        assert after.apps[key]["version"] == entry["version"]


def test_given_a_disagreeing_hash_endpoint_then_snapshot_keeps_catalog_hash_and_says_so() -> None:
    with FakeMarket({"a": app("a")}) as market:
        market.hash_override = "what-the-hash-endpoint-says"
        snapshot = run(lambda: client(market.url).fetch_snapshot(VERSION))
        assert snapshot.remote_hash == market.current_hash()
    assert snapshot.endpoint_hash == "what-the-hash-endpoint-says"
    assert not snapshot.hash_agrees
    assert set(snapshot.apps) == {"a"}


def test_given_a_probed_hash_when_snapshotted_then_the_hash_endpoint_is_not_asked_again() -> None:
    with FakeMarket({"a": app("a")}) as market:
        snapshot = run(lambda: client(market.url).fetch_snapshot(VERSION, endpoint_hash="probed"))
        assert market.count("hash") == 0
    assert snapshot.endpoint_hash == "probed"


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (Reply.empty(), "empty body"),
        (Reply.garbage(), "body is not JSON (text/html)"),
        (Reply.error(500), "HTTP 500"),
        (Reply.json({"version": VERSION, "hash": "x", "data": {"apps": [app("a")]}}), "got array"),
        (Reply.json({"version": VERSION, "hash": "x", "data": {"apps": {}}}), "no apps"),
    ],
    ids=["empty", "garbage", "500", "apps-array", "empty-apps"],
)
def test_given_a_broken_catalog_endpoint_when_snapshotted_then_it_fails_before_details(
    fault: Reply, reason: str
) -> None:
    with FakeMarket({"a": app("a")}) as market:
        market.fail("catalog", fault)
        with pytest.raises(RemoteError) as caught:
            run(lambda: client(market.url).fetch_snapshot(VERSION))
        assert reason in str(caught.value)
        assert market.count("detail") == 0
        if fault.status == 500:
            assert market.count("catalog") == FAST.attempts


def test_given_a_catalog_500_once_when_snapshotted_then_the_retry_succeeds() -> None:
    with FakeMarket({"a": app("a")}) as market:
        market.fail("catalog", Reply.error(500), times=1)
        snapshot = run(lambda: client(market.url).fetch_snapshot(VERSION))
        assert market.count("catalog") == 2
    assert set(snapshot.apps) == {"a"}


def test_given_a_catalog_slower_than_the_timeout_then_the_fetch_fails_as_timed_out() -> None:
    with FakeMarket({"a": app("a")}) as market:
        market.set_latency("catalog", 1.0)
        source = client(market.url, request_timeout=0.1, retry=RetrySettings(attempts=1))
        with pytest.raises(RemoteError, match=r"timed out after 0\.1 s"):
            run(lambda: source.fetch_catalog(VERSION))


def test_given_a_detail_batch_failing_for_good_then_its_apps_keep_summary_and_are_reported() -> (
    None
):
    apps = {f"app{i:02d}": app(f"app{i:02d}", title={"en-US": f"App {i}"}) for i in range(25)}
    with FakeMarket(apps) as market:
        for app_id in apps:
            market.details[app_id] = {"apiVersion": "v2"}
        market.fail_details_for("app12", times=99)
        snapshot = run(lambda: client(market.url).fetch_snapshot(VERSION))
        # three batches; the middle one is tried three times
        assert market.count("detail") == 3 + 2
    failed = {f"app{i:02d}" for i in range(10, 20)}
    assert set(snapshot.detail_failures) == failed
    assert "HTTP 500" in snapshot.detail_failures["app12"]
    assert "after 3 attempts" in snapshot.detail_failures["app12"]
    assert not snapshot.complete
    assert set(snapshot.apps) == set(apps)
    assert all("apiVersion" not in snapshot.apps[a] for a in failed)
    assert all(snapshot.apps[a]["apiVersion"] == "v2" for a in set(apps) - failed)


def test_given_a_detail_batch_failing_once_then_the_retry_completes_the_snapshot() -> None:
    with FakeMarket({"a": app("a"), "b": app("b")}) as market:
        market.details["a"] = {"ports": [{"port": 80}]}
        market.fail_details_for("a", times=1)
        snapshot = run(lambda: client(market.url).fetch_snapshot(VERSION))
        assert market.count("detail") == 2
    assert snapshot.complete
    assert snapshot.apps["a"]["ports"] == [{"port": 80}]


def test_given_apps_unknown_to_the_detail_endpoint_then_they_keep_summary_without_retry() -> None:
    with FakeMarket({"a": app("a"), "b": app("b")}) as market:
        market.not_found = {"b"}
        snapshot = run(lambda: client(market.url).fetch_snapshot(VERSION))
        assert market.count("detail") == 1
    assert snapshot.not_found == ("b",)
    assert snapshot.complete
    assert snapshot.apps["b"] == app("b")


def test_given_a_detail_that_changes_the_app_key_then_the_summary_is_kept_and_reported() -> None:
    with FakeMarket({"a": app("a")}) as market:
        market.details["a"] = {"id": "someone-else", "appID": "someone-else"}
        snapshot = run(lambda: client(market.url).fetch_snapshot(VERSION))
    assert snapshot.apps["a"] == app("a")
    assert "app key 'someone-else'" in snapshot.detail_failures["a"]


def test_detail_batches_are_spaced_by_the_configured_gap() -> None:
    apps = {f"app{i:02d}": app(f"app{i:02d}") for i in range(30)}
    with FakeMarket(apps) as market:
        loop_time: list[float] = []

        async def timed() -> MarketSnapshot:
            start = asyncio.get_running_loop().time()
            result = await client(market.url, detail_gap=0.05).fetch_snapshot(VERSION)
            loop_time.append(asyncio.get_running_loop().time() - start)
            return result

        run(timed)
    assert loop_time[0] >= 0.1  # two gaps between three batches
