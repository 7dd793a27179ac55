"""The composition root: the one place that wires configuration, store, views and handler."""

from __future__ import annotations

import gc
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import datetime, timedelta

import attrs
import httpx
from sqlalchemy.engine import Connection, Engine

from market_ledger.adapters.app_service.client import AppServiceClient
from market_ledger.adapters.app_service.operations import AppServiceOperations
from market_ledger.adapters.chart_repo.client import ChartRepoClient
from market_ledger.adapters.chart_repo.renderer import ChartRepoRenderer
from market_ledger.adapters.config import Settings
from market_ledger.adapters.event_store.settings import (
    bulk_loader_for,
    event_store_env,
    split_schema,
)
from market_ledger.adapters.event_store.write_turn import PostgresWriteTurn
from market_ledger.adapters.local.catalog_file import LocalCatalogSource
from market_ledger.adapters.local.in_process import InProcessRenderer
from market_ledger.adapters.market.client import MarketSourceClient
from market_ledger.adapters.market.credentials import CredentialStore
from market_ledger.domain.retry_policy import RetryPolicy
from market_ledger.projections.database import create_view_engine
from market_ledger.projections.migrate import creating_tables, migrate
from market_ledger.projections.projector import Projector
from market_ledger.projections.rebuild import RebuildReport, rebuild
from market_ledger.projections.schema import ViewTables, define_tables
from market_ledger.service.application import LedgerApplication
from market_ledger.service.context import RemoteSystems
from market_ledger.service.handler import CommandHandler, WriteTurn, utc_now
from market_ledger.service.open_tasks import OpenTasks
from market_ledger.service.ports import CatalogSource, CatalogSources, Renderer
from market_ledger.service.task_dispatcher import TaskSettings

#: logs at least this long are rebuilt with the history table filled by a second process
PARALLEL_REBUILD_FROM = 50_000


@attrs.define
class Ledger:
    """Everything a command, the pipeline or the service needs, wired once."""

    settings: Settings
    application: LedgerApplication
    handler: CommandHandler
    reader: Engine
    writer: Engine
    tables: ViewTables
    projector: Projector
    #: the open tasks, followed in memory (see market_ledger.service.open_tasks)
    open_tasks: OpenTasks = attrs.field(factory=OpenTasks)
    #: the PostgreSQL schema, when not the default (tests use one each)
    schema: str | None = None

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.reader.connect() as conn:
            yield conn

    def catch_up(self) -> int:
        """Bring the views to the head of the log (reads see their writes)."""
        return self.projector.catch_up()

    def rebuild(
        self,
        *,
        verify: bool = False,
        progress: Callable[[int, int], None] | None = None,
        at_step: Callable[[str], None] | None = None,
    ) -> RebuildReport:
        if verify:
            self.catch_up()
        database_url = self.writer.url.render_as_string(hide_password=False)
        large = self.projector.head() >= PARALLEL_REBUILD_FROM
        return rebuild(
            self.application,
            self.writer,
            self.tables,
            verify=verify,
            progress=progress,
            parallel=(database_url, self.schema) if large else None,
            checkpoint_every=self.settings.checkpoint_every,
            at_step=at_step,
        )

    def close(self) -> None:
        self.application.close()
        self.reader.dispose()
        self.writer.dispose()


def collect_cycles_less_often() -> None:
    """Run the cyclic garbage collector after 50,000 allocations instead of 700.

    Deciding or projecting a batch allocates thousands of short-lived objects (events,
    states, rows) without reference cycles; at the default threshold the collector keeps
    scanning them, which costs a sixth of a batch's time. Cycles are still collected.
    """
    generation0, generation1, generation2 = gc.get_threshold()
    gc.set_threshold(max(generation0, 50_000), max(generation1, 20), max(generation2, 20))


def bootstrap(
    settings: Settings | None = None,
    *,
    schema: str | None = None,
    clock: Callable[[], datetime] = utc_now,
    projector_batch_size: int = 1000,
) -> Ledger:
    settings = settings or Settings.from_env()
    collect_cycles_less_often()
    database_url, url_schema = split_schema(settings.database_url)
    schema = schema or url_schema
    store_env = event_store_env(database_url, schema=schema)
    writer = create_view_engine(database_url, schema=schema, for_writing=True)
    reader = create_view_engine(database_url, schema=schema)
    with creating_tables(writer):
        application = LedgerApplication(env=store_env)
        migrate(writer)
    tables = define_tables()
    policy = RetryPolicy(
        base_seconds=settings.retry_base_seconds,
        max_seconds=settings.retry_max_seconds,
        max_attempts=settings.retry_max_attempts,
    )
    return Ledger(
        settings=settings,
        application=application,
        handler=CommandHandler(
            application,
            retry_policy=policy,
            clock=clock,
            bulk_loader=bulk_loader_for(application),
            write_turn=write_turn_for(writer),
        ),
        reader=reader,
        writer=writer,
        tables=tables,
        projector=Projector(
            application,
            writer,
            tables,
            batch_size=projector_batch_size,
            checkpoint_every=settings.checkpoint_every,
        ),
        schema=schema,
    )


def write_turn_for(writer: Engine) -> WriteTurn:
    """Turns at deciding batches on a PostgreSQL store shared by several processes; SQLite
    serves one ``serve`` and appends one transaction at a time, with nothing to share."""
    if writer.dialect.name == "postgresql":
        return PostgresWriteTurn(writer)
    return nullcontext


def connection_pool(concurrency: int = 16) -> httpx.AsyncClient:
    """The connection pool every remote call of the running loop shares.

    Sized to the render workers (plus a few for the other phases): the pool scans its
    connections on every request, so idle extra connections cost CPU on every render.
    """
    size = concurrency + 4
    transport = httpx.AsyncHTTPTransport(
        limits=httpx.Limits(max_connections=size, max_keepalive_connections=size),
        # A request's headers and body go out in two writes: without this the body waits
        # for the server's delayed acknowledgement of the headers (tens of ms per request).
        socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
    )
    return httpx.AsyncClient(transport=transport)


def catalog_sources(
    http: httpx.AsyncClient | None, credentials: CredentialStore | None, detail_pause: float
) -> CatalogSources:
    """``file://`` sources are read from disk; the others over HTTP, with their credentials."""

    def source_for(base_url: str, source_id: str | None) -> CatalogSource:
        if base_url.strip().startswith("file://"):
            return LocalCatalogSource(base_url)
        found = None
        if credentials is not None and source_id is not None:
            found = credentials.load(source_id)
        return MarketSourceClient(base_url, client=http, detail_gap=detail_pause, credentials=found)

    return source_for


def remote_systems(settings: Settings, http: httpx.AsyncClient | None = None) -> RemoteSystems:
    """The ports for what ``settings`` configures; create them inside the loop that uses them.

    Without chart-repo, listings are rendered in process (the embedded default over
    ``file://`` sources); with it, chart-repo renders them.
    """
    chart_repo = (
        ChartRepoClient(settings.chart_repo_host, client=http) if settings.chart_repo_host else None
    )
    renderer: Renderer = (
        ChartRepoRenderer(chart_repo) if chart_repo is not None else InProcessRenderer()
    )
    return RemoteSystems(
        catalogs=catalog_sources(
            http, CredentialStore(settings.credentials_dir), settings.detail_batch_pause
        ),
        renderer=renderer,
        chart_repo=chart_repo,
        app_service=AppServiceClient(
            settings.app_service_host, settings.app_service_port, client=http
        )
        if settings.app_service_host
        else None,
        app_operations=AppServiceOperations(
            settings.app_service_host,
            settings.app_service_port,
            repo_url=settings.repo_url or "",
            client=http,
            timeout=settings.task_http_timeout,
        )
        if settings.app_service_host
        else None,
    )


def task_settings(settings: Settings) -> TaskSettings:
    return TaskSettings(
        concurrency=settings.task_concurrency,
        outcome_deadline=timedelta(seconds=settings.task_deadline),
        sweep_seconds=settings.task_sweep_interval,
        sync_wait_seconds=settings.task_sync_wait,
    )
