"""chart-repo as the service's renderer: each hydrate worker renders over its own connection."""

from __future__ import annotations

import functools
import socket
import ssl
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx

from market_ledger.adapters.chart_repo.app_data import pending_entry_of
from market_ledger.adapters.chart_repo.client import ChartRepoClient
from market_ledger.service.ports import RenderResult, RenderWorker


@functools.cache
def _tls() -> ssl.SSLContext:
    """Loading the trusted certificates takes tens of ms: once per process is enough."""
    return httpx.create_ssl_context()


def worker_connection() -> httpx.AsyncClient:
    """One keep-alive connection, without Nagle's delay (see market_ledger.bootstrap)."""
    transport = httpx.AsyncHTTPTransport(
        verify=_tls(),
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
    )
    return httpx.AsyncClient(transport=transport)


class ChartRepoRenderer:
    """Renders through ``dcr/sync-app``.

    Each worker keeps its own connection: a shared pool checks every connection it holds on
    every request, which costs more CPU than the render call itself.
    """

    def __init__(self, client: ChartRepoClient) -> None:
        self.client = client

    @asynccontextmanager
    async def worker(self) -> AsyncIterator[RenderWorker]:
        async with worker_connection() as http:
            yield _Worker(self.client.bound_to(http))


class _Worker:
    def __init__(self, client: ChartRepoClient) -> None:
        self.client = client

    async def render(self, entry: Mapping[str, Any], source: str, user: str) -> RenderResult:
        return await self.client.sync_app(pending_entry_of(entry), source, user)
