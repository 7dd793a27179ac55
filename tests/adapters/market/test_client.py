"""The market source client, one call at a time: URLs, the catalog and the hash.

Unit tests use respx; a bad catalog is always an error, never an empty catalog.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
import respx

from market_ledger.adapters.market.catalog import Catalog
from market_ledger.adapters.market.client import MarketSourceClient, build_api_url
from market_ledger.service.ports import RemoteError
from tests.adapters.market.support import BASE, VERSION, app, client, run
from tests.support.fakes import FakeMarket


def catalog_document(apps: Any, **data: Any) -> dict[str, Any]:
    return {
        "version": VERSION,
        "hash": "h-1",
        "last_updated": "2025-11-20T08:15:30Z",
        "data": {"apps": apps, **data},
    }


def fetch_catalog_answering(response: httpx.Response) -> Catalog:
    with respx.mock:
        respx.get(f"{BASE}/api/v1/appstore/info").mock(return_value=response)
        return run(lambda: client().fetch_catalog(VERSION))


# --- URLs -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "path", "url"),
    [
        ("appstore.test", "/api/v1/appstore/hash", "https://appstore.test/api/v1/appstore/hash"),
        ("http://m.test/", "/api/x", "http://m.test/api/x"),
        ("https://m.test/market", "api/x", "https://m.test/market/api/x"),
    ],
)
def test_endpoint_urls_are_joined_to_the_base_with_https_by_default(
    base: str, path: str, url: str
) -> None:
    assert build_api_url(base, path) == url


# --- catalog: what is a failed fetch ------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        (httpx.Response(200, content=b""), "HTTP 200 with an empty body"),
        (
            httpx.Response(
                200, text="<html>maintenance</html>", headers={"content-type": "text/html"}
            ),
            "body is not JSON",
        ),
        (httpx.Response(200, json={}), "wrong shape: data is missing"),
        (httpx.Response(200, json={"data": {}}), "wrong shape: data.apps is missing"),
        (httpx.Response(200, json={"data": {"apps": None}}), "wrong shape: data.apps is missing"),
        (
            httpx.Response(200, json=catalog_document([app("a")])),
            "wrong shape: data.apps must be an object keyed by app id, got array",
        ),
        (httpx.Response(200, json=catalog_document({})), "the catalog has no apps"),
        (
            httpx.Response(200, json=catalog_document({"a": app("a")}, recommends=[{"name": "x"}])),
            "wrong shape: data.recommends must be an object, got array",
        ),
        (
            httpx.Response(
                200, json={**catalog_document({"a": app("a")}), "last_updated": "yesterday"}
            ),
            "wrong shape: last_updated must be an RFC 3339 time, got 'yesterday'",
        ),
        (
            httpx.Response(200, json={**catalog_document({"a": app("a")}), "hash": 42}),
            "wrong shape: hash must be a string, got number",
        ),
        (
            httpx.Response(
                200, json=catalog_document({"a": app("a")}, tags={"t": {"name": "T", "sort": "1"}})
            ),
            "wrong shape: data.tags.t.sort must be a number, got string",
        ),
        (
            httpx.Response(200, json=catalog_document({"a": app("a")}, latest=["a", 7])),
            "wrong shape: data.latest[1] must be a string, got number",
        ),
        (
            httpx.Response(200, json=catalog_document({"a": 1, "b": {"id": "b"}})),
            "none of the 2 catalog entries is valid",
        ),
    ],
    ids=[
        "empty-body",
        "garbage-html",
        "no-data",
        "no-apps",
        "null-apps",
        "apps-array",
        "empty-apps",
        "recommends-array",
        "bad-last-updated",
        "hash-number",
        "tag-sort-string",
        "latest-not-strings",
        "no-valid-entry",
    ],
)
def test_given_an_unusable_catalog_when_fetched_then_remote_error_never_empty_catalog(
    response: httpx.Response, reason: str
) -> None:
    with pytest.raises(RemoteError) as caught:
        fetch_catalog_answering(response)
    assert reason in caught.value.reason
    assert caught.value.service == "market source"
    assert caught.value.url == f"{BASE}/api/v1/appstore/info"


def test_given_a_good_catalog_when_fetched_then_apps_extras_hash_and_version_are_kept() -> None:
    document = catalog_document(
        {"a": app("a"), "b": app("b")},
        recommends={
            "home": {"name": "home", "content": "a,b", "data": {"title": {"en-US": "Home"}}}
        },
        tags={"ai": {"name": "AI", "sort": 1, "title": {"en-US": "AI"}}},
        tops=[{"appId": "a", "rank": 1}],
        latest=["b", "a"],
    )
    catalog = fetch_catalog_answering(httpx.Response(200, json=document))
    assert set(catalog.apps) == {"a", "b"}
    assert catalog.remote_hash == "h-1"
    assert catalog.catalog_version == VERSION
    assert catalog.last_updated is not None and catalog.last_updated.year == 2025
    assert catalog.extras["recommends"]["home"]["content"] == "a,b"
    assert catalog.extras["tops"] == [{"appid": "a", "rank": 1}]
    assert catalog.extras["latest"] == ["b", "a"]
    assert catalog.extras["topics"] == {} and catalog.extras["pages"] == {}
    assert catalog.detail_ids == ("a", "b")


def test_given_bad_entries_among_good_ones_when_fetched_then_they_are_left_out_with_a_reason() -> (
    None
):
    document = catalog_document(
        {
            "good": app("good"),
            "not-object": ["x"],
            "no-version": {"id": "no-version", "name": "nv"},
            "bad-labels": app("bad-labels", appLabels="suspend"),
            "zz-duplicate": app("good"),
            "mirror": {"id": "mirror-2", "name": "syncthing", "version": "1.3.1"},
        }
    )
    catalog = fetch_catalog_answering(httpx.Response(200, json=document))
    assert set(catalog.apps) == {"good", "mirror-2"}
    assert catalog.rejected["not-object"] == "entry must be an object, got array"
    assert "no 'version'" in catalog.rejected["no-version"]
    assert "appLabels" in catalog.rejected["bad-labels"]
    assert "duplicate app key 'good'" in catalog.rejected["zz-duplicate"]
    # an entry whose id differs from its catalog key is kept but not detail-fetched
    # (docs/protocols.md#market-source)
    assert catalog.detail_ids == ("good",)


@respx.mock
def test_the_callers_version_is_sent_on_hash_catalog_and_detail_requests() -> None:
    hash_route = respx.get(f"{BASE}/api/v1/appstore/hash").mock(
        return_value=httpx.Response(200, json={"hash": "h-1"})
    )
    catalog_route = respx.get(f"{BASE}/api/v1/appstore/info").mock(
        return_value=httpx.Response(200, json=catalog_document({"a": app("a")}))
    )
    detail_route = respx.post(f"{BASE}/api/v1/applications/info").mock(
        return_value=httpx.Response(200, json={"apps": {"a": app("a")}, "not_found": []})
    )
    run(lambda: client().fetch_snapshot("1.99.0"))
    assert hash_route.calls.last.request.url.params["version"] == "1.99.0"
    assert catalog_route.calls.last.request.url.params["version"] == "1.99.0"
    assert json.loads(detail_route.calls.last.request.content) == {
        "app_ids": ["a"],
        "version": "1.99.0",
    }


# --- hash and probe -----------------------------------------------------------------------------


@respx.mock
def test_given_a_failing_hash_endpoint_when_probed_then_none_and_a_debug_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    respx.get(f"{BASE}/api/v1/appstore/hash").mock(return_value=httpx.Response(500, text="down"))
    with caplog.at_level(logging.DEBUG, logger="market_ledger.adapters.market.client"):
        assert run(lambda: client().probe_hash(VERSION)) is None
    assert any(
        "HTTP 500: down" in r.getMessage() and r.levelno == logging.DEBUG for r in caplog.records
    )


@respx.mock
@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, json={"hash": ""}),
        httpx.Response(200, text="not json"),
        httpx.Response(200, json=["h"]),
    ],
    ids=["empty-hash", "garbage", "array"],
)
def test_given_a_useless_hash_answer_then_probe_says_none_and_fetch_raises(
    response: httpx.Response,
) -> None:
    route = respx.get(f"{BASE}/api/v1/appstore/hash").mock(return_value=response)
    assert run(lambda: client().probe_hash(VERSION)) is None
    assert route.call_count == 1  # a probe is one cheap attempt
    with pytest.raises(RemoteError):
        run(lambda: client().fetch_hash(VERSION))


def test_the_probe_defaults_to_three_seconds_and_detail_to_the_reference_numbers() -> None:
    market = MarketSourceClient(BASE)
    assert market.probe_timeout == 3.0
    assert market.request_timeout == 30.0
    assert market.detail_batch_size == 10
    assert market.detail_gap == 0.2
    assert [market.detail_retry.delay_before(k) for k in (1, 2, 3)] == [0.0, 2.0, 4.0]
    assert market.detail_retry.attempts == 3


def test_given_a_slow_hash_endpoint_when_probed_then_the_probe_gives_up_at_its_timeout() -> None:
    with FakeMarket({"a": app("a")}) as market:
        market.set_latency("hash", 1.0)
        source = client(market.url, probe_timeout=0.1)
        assert run(lambda: source.probe_hash(VERSION)) is None
