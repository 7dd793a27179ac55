"""Runs pipeline cycles against a ledger and the fake remote systems, on one event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from market_ledger.adapters.app_service.client import AppServiceClient
from market_ledger.adapters.chart_repo.client import ChartRepoClient
from market_ledger.adapters.chart_repo.renderer import ChartRepoRenderer
from market_ledger.adapters.local.catalog_file import LocalCatalogSource
from market_ledger.adapters.local.in_process import InProcessRenderer
from market_ledger.adapters.market.client import MarketSourceClient
from market_ledger.adapters.remote.client import RetrySettings
from market_ledger.bootstrap import Ledger, connection_pool
from market_ledger.projections import queries
from market_ledger.service.context import CycleContext, RemoteSystems
from market_ledger.service.cycle import Cycle
from market_ledger.service.ports import CatalogSource, Renderer
from tests.conftest import FakeClock
from tests.support.fakes.app_service import FakeAppService
from tests.support.fakes.chart_repo import FakeChartRepo

FAST = RetrySettings(attempts=2, base_delay=0.01)


def remote_systems(
    http: httpx.AsyncClient,
    chart_repo: FakeChartRepo | None = None,
    app_service: FakeAppService | None = None,
) -> RemoteSystems:
    client = (
        ChartRepoClient(chart_repo.host_port, client=http, sync_timeout=1.0, retry=FAST)
        if chart_repo
        else None
    )
    renderer: Renderer = ChartRepoRenderer(client) if client else InProcessRenderer()

    def catalogs(url: str, source_id: str | None) -> CatalogSource:
        if url.startswith("http"):
            return MarketSourceClient(
                url, client=http, retry=FAST, detail_retry=FAST, detail_gap=0.0
            )
        return LocalCatalogSource(url)

    return RemoteSystems(
        catalogs=catalogs,
        renderer=renderer,
        chart_repo=client,
        app_service=AppServiceClient(app_service.host, app_service.port, client=http, retry=FAST)
        if app_service
        else None,
    )


class Pipeline:
    """A cycle with its context; ``run_cycle`` advances the clock past every retry first."""

    def __init__(
        self,
        ledger: Ledger,
        remote: RemoteSystems,
        clock: FakeClock,
        *,
        sync_interval: float = 3600.0,
        concurrency: int = 4,
    ) -> None:
        self.ledger = ledger
        self.clock = clock
        self.cycle = Cycle.standard(sync_interval=sync_interval, hydration_concurrency=concurrency)
        self.context = CycleContext(ledger, remote, clock=clock)

    async def run_cycle(self, advance: float = 0.0) -> dict[str, Any]:
        self.clock.advance(advance)
        return await self.cycle.run(self.context)

    def catalog(self, user: str) -> dict[str, Any]:
        self.ledger.catch_up()
        with self.ledger.read() as conn:
            return queries.catalog(conn, self.ledger.tables, user)


def run(scenario: Callable[[httpx.AsyncClient], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        async with connection_pool() as http:
            return await scenario(http)

    return asyncio.run(main())
