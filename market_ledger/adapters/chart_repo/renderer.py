"""chart-repo as the service's renderer: each hydrate worker renders over its own connection."""

from __future__ import annotations

import functools
import ssl
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx

from market_ledger.adapters.chart_repo.app_data import pending_entry_of
from market_ledger.adapters.chart_repo.client import ChartRepoClient
from market_ledger.adapters.remote.keep_alive import KeepAliveConnection
from market_ledger.service.ports import RenderResult, RenderWorker


@functools.cache
def _tls() -> ssl.SSLContext:
    """Loading the trusted certificates takes tens of ms: once per process is enough."""
    return httpx.create_ssl_context()


class ChartRepoRenderer:
    """Renders through ``dcr/sync-app``.

    Each worker keeps one connection of its own to chart-repo, outside the shared httpx pool:
    a worker sends one call after another, and the pool's bookkeeping and httpx's models
    cost more CPU than the render call itself (see market_ledger.adapters.remote.keep_alive).
    """

    def __init__(self, client: ChartRepoClient) -> None:
        self.client = client

    @asynccontextmanager
    async def worker(self) -> AsyncIterator[RenderWorker]:
        secure = self.client.base_url.startswith("https://")
        async with KeepAliveConnection(
            self.client.base_url, tls=_tls() if secure else None
        ) as connection:
            yield _Worker(self.client, connection)


class _Worker:
    def __init__(self, client: ChartRepoClient, connection: KeepAliveConnection) -> None:
        self.client = client
        self.connection = connection

    async def render(self, entry: Mapping[str, Any], source: str, user: str) -> RenderResult:
        return await self.client.sync_app(
            pending_entry_of(entry), source, user, over=self.connection
        )
