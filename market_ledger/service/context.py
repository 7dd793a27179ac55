"""What every phase of a cycle works with: the ledger, the remote systems, a clock, a stop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import attrs
from sqlalchemy.engine import Connection

from market_ledger.domain.decider import Command
from market_ledger.projections.projector import Projector
from market_ledger.projections.schema import ViewTables
from market_ledger.service.app_operations import AppOperations
from market_ledger.service.handler import CommandHandler, Outcome
from market_ledger.service.open_tasks import OpenTasks
from market_ledger.service.ports import (
    CatalogSource,
    CatalogSources,
    ChangesFeed,
    Clock,
    CycleMetrics,
    InstalledAppsSource,
    NoMetrics,
    RemoteError,
    Renderer,
)

log = logging.getLogger(__name__)

#: the OS version a market is asked for when app-service cannot tell (the replaced system's default)
DEFAULT_OS_VERSION = "1.12.3"


class LedgerParts(Protocol):
    """The parts of the wired ledger the cycle uses."""

    handler: CommandHandler
    tables: ViewTables
    projector: Projector
    open_tasks: OpenTasks

    def read(self) -> Any: ...  # a context manager giving a Connection

    def catch_up(self) -> int: ...


@attrs.define
class RemoteSystems:
    """The ports to the systems around the ledger, built by the composition root;
    ``None`` where one is not configured."""

    catalogs: CatalogSources
    renderer: Renderer
    chart_repo: ChangesFeed | None = None
    app_service: InstalledAppsSource | None = None
    #: app-service's operations, for tasks (install, uninstall, ...)
    app_operations: AppOperations | None = None

    def reader_for(self, base_url: str, source_id: str | None = None) -> CatalogSource:
        return self.catalogs(base_url, source_id)

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
    clock: Clock
    stop: asyncio.Event = attrs.field(factory=asyncio.Event)
    metrics: CycleMetrics = attrs.field(factory=NoMetrics)

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
