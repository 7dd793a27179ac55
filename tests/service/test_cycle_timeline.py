"""The real Olares catalog history, replayed as a remote market that changes over time.

Several users (one joins, one leaves on the way), a chart-repo that fails some renders for
good and some once, installed apps reported by app-service (one of them removed from the
market later). After every cycle, each user's catalog equals what the independent model in
``tests/catalog_model.py`` computes, and the views equal a rebuild from position 0.
"""

from __future__ import annotations

import httpx
import pytest

from market_ledger.domain.market_source import ConfigureSource
from market_ledger.domain.user import RegisterUser, RemoveUser
from market_ledger.projections import queries
from tests.conftest import FakeClock, StoreFactory
from tests.support.catalog_model import CatalogModel, actual
from tests.support.fakes.app_service import FakeAppService
from tests.support.fakes.chart_repo import FakeChartRepo
from tests.support.fakes.market import FakeMarket, load_timeline
from tests.support.pipeline_harness import Pipeline, remote_systems, run

SOURCE = "market.olares"
RETRY = {"retry_base_seconds": 1.0, "retry_max_seconds": 10.0, "retry_max_attempts": 3}


def test_catalogs_follow_the_real_catalog_history_cycle_after_cycle(
    store: StoreFactory, clock: FakeClock
) -> None:
    timeline = load_timeline()
    ledger = store.open(clock, **RETRY)
    model = CatalogModel(
        max_attempts=3, permanent_failures={"ollama"}, transient_failures={"comfyui": 2}
    )
    users = ["alice", "bob"]
    installed = {"alice": {"devbox": "running", "affine": "running"}, "bob": {}}

    with (
        FakeMarket() as market,
        FakeChartRepo(render_latency=0.0) as chart_repo,
        FakeAppService() as app_service,
    ):
        chart_repo.fail_permanently("ollama")
        chart_repo.fail_transiently("comfyui", times=2)
        for user, apps in installed.items():
            for name, state in apps.items():
                app_service.install(user, name, state=state, source=SOURCE)
        ledger.handler.handle(
            ConfigureSource(SOURCE, "remote", market.url),
            *(RegisterUser(u) for u in users),
        )

        async def scenario(http: httpx.AsyncClient) -> tuple[int, int]:
            pipeline = Pipeline(ledger, remote_systems(http, chart_repo, app_service), clock)
            chunks = [timeline[:1], *(timeline[i : i + 40] for i in range(1, len(timeline), 40))]
            checks = 0
            for number, chunk in enumerate(chunks, start=1):
                for change_set in chunk:
                    market.apply_change_set(change_set)
                if number == 4:  # a user joins
                    ledger.handler.execute(RegisterUser("carol"))
                    users.append("carol")
                    installed["carol"] = {}
                if number == 7:  # a user leaves
                    ledger.handler.execute(RemoveUser("bob"))
                    users.remove("bob")
                if number == 9:  # an app is uninstalled
                    app_service.uninstall("alice", "affine")
                    del installed["alice"]["affine"]
                summary = await pipeline.run_cycle(advance=11)
                assert summary["failed_phases"] == [], summary
                model.sync(market.catalog_document()["data"]["apps"], users)
                model.hydrate(users)
                for user in users:
                    expected = model.expected(user, installed[user])
                    assert actual(pipeline.catalog(user), SOURCE) == expected, (number, user)
                    checks += 1
                # A cycle with no catalog change fetches nothing; due retries still run.
                quiet = await pipeline.run_cycle(advance=11)
                assert quiet["phases"]["sync"]["sources"][SOURCE]["outcome"] == "unchanged"
                model.hydrate(users)
                for user in users:
                    expected = model.expected(user, installed[user])
                    assert actual(pipeline.catalog(user), SOURCE) == expected, (number, user)
            return checks, len(chunks)

        checks, cycles = run(scenario)

    assert checks >= 2 * cycles
    ledger.catch_up()
    with ledger.read() as conn:
        with pytest.raises(queries.UnknownUser):
            queries.catalog(conn, ledger.tables, "bob")
        history = queries.history(conn, ledger.tables, "bob", "affine")
    assert history[-1]["event"] == "withdrawn" and history[-1]["reason"] == "user removed"
    report = ledger.rebuild(verify=True)
    assert report.differences == (), [d.describe() for d in report.differences]
