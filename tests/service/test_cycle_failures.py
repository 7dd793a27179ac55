"""The replaced system's failure modes, by name, against fake servers on loopback.

Each is described in docs/replaced-system.md.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from market_ledger.bootstrap import Ledger
from market_ledger.domain.market_source import ConfigureSource, RemoveSource
from market_ledger.domain.user import RegisterUser, RemoveUser
from market_ledger.projections import queries
from market_ledger.service.context import RemoteSystems
from tests.conftest import FakeClock, StoreFactory
from tests.support.fakes.app_service import FakeAppService
from tests.support.fakes.chart_repo import FakeChartRepo
from tests.support.fakes.http_fake import Reply
from tests.support.fakes.market import FakeMarket
from tests.support.pipeline_harness import Pipeline, remote_systems, run

SOURCE = "market.olares"
RETRY = {"retry_base_seconds": 1.0, "retry_max_seconds": 10.0, "retry_max_attempts": 3}


def entry(app: str, version: str = "1.0.0", **fields: Any) -> dict[str, Any]:
    return {
        "id": app,
        "appID": app,
        "name": app,
        "version": version,
        "title": {"en-US": app.title()},
        **fields,
    }


def market_with(*apps: str) -> FakeMarket:
    return FakeMarket({a: entry(a) for a in apps})


def statuses(pipeline: Pipeline, user: str = "alice") -> dict[str, tuple[str, str | None]]:
    apps = pipeline.catalog(user)["sources"].get(SOURCE, {"apps": []})["apps"]
    return {a["app_id"]: (a["status"], a["latest_version"]) for a in apps}


def setup(ledger: Ledger, market: FakeMarket, *users: str) -> None:
    ledger.handler.handle(
        ConfigureSource(SOURCE, "remote", market.url),
        *(RegisterUser(u) for u in users or ("alice",)),
    )


def pipeline_for(
    ledger: Ledger, clock: FakeClock, remote: RemoteSystems, **kwargs: Any
) -> Pipeline:
    return Pipeline(ledger, remote, clock, **kwargs)


def test_an_empty_or_garbage_catalog_changes_nothing_and_is_reported(
    store: StoreFactory, clock: FakeClock
) -> None:
    ledger = store.open(clock)
    with market_with("firefox", "gitea") as market, FakeChartRepo(0.0) as chart_repo:
        setup(ledger, market)

        async def scenario(http: httpx.AsyncClient) -> list[dict[str, Any]]:
            pipeline = pipeline_for(
                ledger, clock, remote_systems(http, chart_repo), sync_interval=0
            )
            await pipeline.run_cycle()
            before = statuses(pipeline)
            reports = []
            for reply in (
                Reply.empty(),
                Reply.garbage(),
                Reply.json({"data": {"apps": []}}),
                Reply.json({"version": "1", "hash": "h", "data": {}}),
                Reply.error(500),
            ):
                market.fail("catalog", reply)
                summary = await pipeline.run_cycle()
                reports.append(summary["phases"]["sync"]["sources"][SOURCE])
                assert statuses(pipeline) == before
            return reports

        reports = run(scenario)
    assert [r["outcome"] for r in reports] == ["failed"] * 5
    assert all(
        "market" in r["error"].lower() or "catalog" in r["error"].lower() for r in reports
    ), reports


def test_a_hash_endpoint_that_disagrees_with_the_catalog_does_not_cause_refetches(
    store: StoreFactory, clock: FakeClock
) -> None:
    ledger = store.open(clock)
    with market_with("firefox") as market, FakeChartRepo(0.0) as chart_repo:
        market.hash_override = "the-hash-endpoint-says-something-else"
        setup(ledger, market)

        async def scenario(http: httpx.AsyncClient) -> list[str]:
            pipeline = pipeline_for(ledger, clock, remote_systems(http, chart_repo))
            outcomes = []
            for _ in range(3):
                summary = await pipeline.run_cycle()
                outcomes.append(summary["phases"]["sync"]["sources"][SOURCE]["outcome"])
            return outcomes

        assert run(scenario) == ["synced", "unchanged", "unchanged"]
        assert market.count("catalog") == 1


def test_missing_details_keep_the_old_hash_so_the_next_cycle_fetches_again(
    store: StoreFactory, clock: FakeClock
) -> None:
    ledger = store.open(clock)
    with market_with("firefox", "gitea") as market, FakeChartRepo(0.0) as chart_repo:
        setup(ledger, market)
        market.fail_details_for("gitea", times=10)

        async def scenario(http: httpx.AsyncClient) -> list[dict[str, Any]]:
            pipeline = pipeline_for(ledger, clock, remote_systems(http, chart_repo))
            first = (await pipeline.run_cycle())["phases"]["sync"]["sources"][SOURCE]
            market.fail_details_for("gitea", times=0)
            second = (await pipeline.run_cycle())["phases"]["sync"]["sources"][SOURCE]
            third = (await pipeline.run_cycle())["phases"]["sync"]["sources"][SOURCE]
            return [first, second, third]

        first, second, third = run(scenario)
    assert first["missing_details"] == ["firefox", "gitea"]  # the batch holding gitea failed
    assert second["outcome"] == "synced" and second["missing_details"] == []
    assert third["outcome"] == "unchanged"


def test_chart_repo_timeouts_and_errors_are_retried_with_backoff_then_parked(
    store: StoreFactory, clock: FakeClock
) -> None:
    ledger = store.open(clock, **RETRY)
    with (
        market_with("slow", "broken", "flaky", "refused") as market,
        FakeChartRepo(0.0) as chart_repo,
    ):
        setup(ledger, market)
        chart_repo.make_slow("slow", 2.0)  # longer than the client's 1 s
        chart_repo.fail_permanently("broken")
        chart_repo.fail_transiently("flaky", times=1)
        chart_repo.refuse("refused", "chart not found")

        async def scenario(http: httpx.AsyncClient) -> list[dict[str, tuple[str, str | None]]]:
            pipeline = pipeline_for(ledger, clock, remote_systems(http, chart_repo))
            seen = [statuses(pipeline)]
            await pipeline.run_cycle()
            seen.append(statuses(pipeline))
            early = await pipeline.run_cycle(advance=0.1)  # retries not due yet
            assert early["phases"]["hydrate"]["due"] == 0
            for _ in range(3):
                await pipeline.run_cycle(advance=11)
                seen.append(statuses(pipeline))
            return seen

        seen = run(scenario)
    after_first = seen[1]
    assert after_first == {
        "slow": ("failed", None),
        "broken": ("failed", None),
        "flaky": ("failed", None),
        "refused": ("failed", None),
    }
    final = seen[-1]
    assert final["flaky"] == ("latest", "1.0.0")
    assert final["broken"] == ("parked", None) and final["slow"] == ("parked", None)
    assert final["refused"] == ("parked", None)
    ledger.catch_up()
    with ledger.read() as conn:
        history = queries.history(conn, ledger.tables, "alice", "refused")
    assert history[1]["reason"].endswith("chart not found")
    assert [e["event"] for e in history][-2:] == ["render_failed", "parked"]


def test_a_feed_cursor_that_goes_backwards_never_replays_old_changes(
    store: StoreFactory, clock: FakeClock
) -> None:
    ledger = store.open(clock)
    upload = entry("myapp", "0.1.0")
    with market_with("firefox") as market, FakeChartRepo(0.0) as chart_repo:
        setup(ledger, market)
        chart_repo.append_upload("alice", "myapp", entry=upload)
        chart_repo.append_upload("alice", "myapp", entry=upload)

        async def scenario(http: httpx.AsyncClient) -> list[dict[str, Any]]:
            pipeline = pipeline_for(ledger, clock, remote_systems(http, chart_repo))
            first = (await pipeline.run_cycle())["phases"]["feed"]
            # chart-repo's database is recreated: its ids start again from 1
            chart_repo.reset_ids()
            chart_repo.append_upload("alice", "myapp", entry=upload)
            second = (await pipeline.run_cycle())["phases"]["feed"]
            return [first, second]

        first, second = run(scenario)
        uploads_fetched = chart_repo.count("apps")
    assert (first["from"], first["to"]) == (0, 2)
    assert (second["from"], second["to"]) == (2, 2)
    assert "probably reset" in second["warning"]
    assert uploads_fetched == 2  # the replayed id 1 was not fetched again


def test_an_upload_and_an_image_update_arrive_through_the_feed(
    store: StoreFactory, clock: FakeClock
) -> None:
    ledger = store.open(clock)
    with market_with("firefox") as market, FakeChartRepo(0.0) as chart_repo:
        setup(ledger, market)
        chart_repo.append_upload("alice", "myapp", entry=entry("myapp", "0.1.0"))

        async def scenario(http: httpx.AsyncClient) -> dict[str, Any]:
            pipeline = pipeline_for(ledger, clock, remote_systems(http, chart_repo))
            await pipeline.run_cycle()
            await pipeline.run_cycle()
            return pipeline.catalog("alice")

        catalog = run(scenario)
    uploaded = catalog["sources"]["upload"]
    assert uploaded["type"] == "local"
    assert [(a["app_id"], a["status"]) for a in uploaded["apps"]] == [("myapp", "latest")]


def test_a_source_removed_mid_cycle_is_not_brought_back(
    store: StoreFactory, clock: FakeClock
) -> None:
    ledger = store.open(clock)
    with market_with("firefox", "gitea") as market, FakeChartRepo(0.0) as chart_repo:
        setup(ledger, market)
        market.set_latency("catalog", 0.5)

        async def scenario(http: httpx.AsyncClient) -> dict[str, Any]:
            pipeline = pipeline_for(ledger, clock, remote_systems(http, chart_repo))
            cycle = asyncio.ensure_future(pipeline.run_cycle())
            await asyncio.sleep(0.2)  # the sync is waiting for the catalog
            ledger.handler.execute(RemoveSource(SOURCE))
            summary = await cycle
            await pipeline.run_cycle()
            return summary

        summary = run(scenario)
    assert pipeline_catalog(ledger)["sources"] == {}
    assert summary["phases"]["hydrate"]["due"] == 0  # nothing rendered for a removed source
    ledger.catch_up()
    with ledger.read() as conn:
        assert queries.sources(conn, ledger.tables) == []
        history = queries.history(conn, ledger.tables, "alice", "firefox")
    assert history[-1]["event"] == "withdrawn" and history[-1]["reason"] == "source removed"


def test_a_user_removed_mid_cycle_gets_nothing_more(store: StoreFactory, clock: FakeClock) -> None:
    ledger = store.open(clock)
    with market_with("firefox") as market, FakeChartRepo(0.0) as chart_repo:
        setup(ledger, market, "alice", "bob")
        market.set_latency("catalog", 0.5)

        async def scenario(http: httpx.AsyncClient) -> dict[str, Any]:
            pipeline = pipeline_for(ledger, clock, remote_systems(http, chart_repo))
            cycle = asyncio.ensure_future(pipeline.run_cycle())
            await asyncio.sleep(0.2)
            ledger.handler.execute(RemoveUser("bob"))
            summary = await cycle
            await pipeline.run_cycle()
            return summary

        summary = run(scenario)
    assert summary["phases"]["hydrate"]["due"] == 1  # alice's only
    assert chart_repo.count("sync-app") == 1
    ledger.catch_up()
    with ledger.read() as conn:
        history = queries.history(conn, ledger.tables, "bob", "firefox")
    assert [e["event"] for e in history] == ["offered", "withdrawn"]


def test_status_correction_never_wipes_installations_on_a_bad_answer(
    store: StoreFactory, clock: FakeClock
) -> None:
    ledger = store.open(clock)
    with (
        market_with("firefox") as market,
        FakeChartRepo(0.0) as chart_repo,
        FakeAppService() as app_service,
    ):
        setup(ledger, market)
        app_service.install("alice", "firefox", source=SOURCE)

        async def scenario(http: httpx.AsyncClient) -> list[dict[str, Any]]:
            pipeline = pipeline_for(ledger, clock, remote_systems(http, chart_repo, app_service))
            reports = [(await pipeline.run_cycle())["phases"]["status_correction"]]
            app_service.fail("middlewares", Reply.error(503))
            reports.append((await pipeline.run_cycle())["phases"]["status_correction"])
            app_service.heal()
            app_service.uninstall("alice", "firefox")  # app-service restarting: says nothing
            reports.append((await pipeline.run_cycle())["phases"]["status_correction"])
            installed_after = statuses(pipeline)
            app_service.install("alice", "gitea", source=SOURCE)  # a real answer again
            reports.append((await pipeline.run_cycle())["phases"]["status_correction"])
            reports.append({"installed_after_empty_answer": installed_after})
            return reports

        reports = run(scenario)
    assert reports[0]["corrections"] == 1
    assert "failed" in reports[1]
    assert reports[2]["refused_wipe"] == 1 and reports[2]["corrections"] == 0
    assert reports[3]["corrections"] == 2  # firefox removed, gitea observed
    assert pipeline_catalog(ledger)["sources"][SOURCE]["apps"][0]["installed_state"] is None


def pipeline_catalog(ledger: Ledger) -> dict[str, Any]:
    ledger.catch_up()
    with ledger.read() as conn:
        return queries.catalog(conn, ledger.tables, "alice")
