"""What every phase of a cycle works with: the ledger, the remote systems, a clock, a stop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

import attrs
import httpx
from sqlalchemy.engine import Connection

from market_ledger.adapters.app_service.client import AppServiceClient
from market_ledger.adapters.chart_repo.client import ChartRepoClient
from market_ledger.adapters.config import Settings
from market_ledger.adapters.local.catalog_file import LocalCatalogSource
from market_ledger.adapters.market.catalog import CatalogReader
from market_ledger.adapters.market.client import MarketSourceClient
from market_ledger.adapters.market.credentials import CredentialStore
from market_ledger.adapters.remote.errors import RemoteError
from market_ledger.domain.decider import Command
from market_ledger.projections.projector import Projector
from market_ledger.projections.schema import ViewTables
from market_ledger.service.handler import CommandHandler, Outcome

log = logging.getLogger(__name__)

#: the OS version a market is asked for when app-service cannot tell (the reference's default)
DEFAULT_OS_VERSION = "1.12.3"


class LedgerParts(Protocol):
    """The parts of the wired ledger the pipeline uses."""

    settings: Settings
    handler: CommandHandler
    tables: ViewTables
    projector: Projector

    def read(self) -> Any: ...  # a context manager giving a Connection

    def catch_up(self) -> int: ...


@attrs.define
class RemoteSystems:
    """The clients of the systems around the ledger; ``None`` where one is not configured."""

    chart_repo: ChartRepoClient | None = None
    app_service: AppServiceClient | None = None
    #: one connection pool for every remote call of a running loop
    http: httpx.AsyncClient | None = None
    reader_factory: Callable[[str], CatalogReader] | None = None
    detail_pause: float = 0.2
    #: where each source's credentials are kept (None: sources have none)
    credentials: CredentialStore | None = None

    @classmethod
    def from_settings(
        cls, settings: Settings, http: httpx.AsyncClient | None = None
    ) -> RemoteSystems:
        """Clients for what ``settings`` configures; create it inside the loop that uses it."""
        return cls(
            chart_repo=ChartRepoClient(settings.chart_repo_host, client=http)
            if settings.chart_repo_host
            else None,
            app_service=AppServiceClient(
                settings.app_service_host, settings.app_service_port, client=http
            )
            if settings.app_service_host
            else None,
            http=http,
            detail_pause=settings.detail_batch_pause,
            credentials=CredentialStore(settings.credentials_dir),
        )

    def reader_for(self, base_url: str, source_id: str | None = None) -> CatalogReader:
        if self.reader_factory is not None:
            return self.reader_factory(base_url)
        if base_url.strip().startswith("file://"):
            return LocalCatalogSource(base_url)
        found = None
        if self.credentials is not None and source_id is not None:
            found = self.credentials.load(source_id)
        return MarketSourceClient(
            base_url, client=self.http, detail_gap=self.detail_pause, credentials=found
        )

    async def os_version(self) -> str:
        """The version string markets are asked with (from app-service when it is there)."""
        if self.app_service is None:
            return DEFAULT_OS_VERSION
        try:
            return await self.app_service.terminus_version() or DEFAULT_OS_VERSION
        except RemoteError as error:  # an unknown version is not a reason to skip a sync
            log.warning(
                "OS version unknown (%s); markets are asked for %s", error, DEFAULT_OS_VERSION
            )
            return DEFAULT_OS_VERSION


@attrs.define
class CycleContext:
    ledger: LedgerParts
    remote: RemoteSystems
    clock: Callable[[], datetime]
    stop: asyncio.Event = attrs.field(factory=asyncio.Event)

    async def handle(self, commands: Sequence[Command]) -> Outcome:
        """Handle commands off the event loop (the store is synchronous)."""
        if not commands:
            return Outcome()
        return await asyncio.to_thread(self.ledger.handler.handle, *commands)

    async def read(self, query: Callable[..., Any], *args: Any) -> Any:
        """Run ``query(conn, tables, *args)`` on a view connection, off the event loop."""

        def run() -> Any:
            with self.ledger.read() as conn:
                assert isinstance(conn, Connection)
                return query(conn, self.ledger.tables, *args)

        return await asyncio.to_thread(run)
