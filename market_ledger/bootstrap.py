"""The composition root: the one place that wires configuration, store, views and handler."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

import attrs
from sqlalchemy.engine import Connection, Engine

from market_ledger.adapters.config import Settings
from market_ledger.adapters.event_store.settings import (
    bulk_loader_for,
    event_store_env,
    split_schema,
)
from market_ledger.domain.retry_policy import RetryPolicy
from market_ledger.projections.database import create_view_engine
from market_ledger.projections.migrate import migrate
from market_ledger.projections.projector import Projector
from market_ledger.projections.rebuild import RebuildReport, rebuild
from market_ledger.projections.schema import ViewTables, define_tables
from market_ledger.service.application import LedgerApplication
from market_ledger.service.handler import CommandHandler, utc_now

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
        self, *, verify: bool = False, progress: Callable[[int, int], None] | None = None
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
    application = LedgerApplication(env=event_store_env(database_url, schema=schema))
    writer = create_view_engine(database_url, schema=schema, for_writing=True)
    reader = create_view_engine(database_url, schema=schema)
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
        ),
        reader=reader,
        writer=writer,
        tables=tables,
        projector=Projector(application, writer, tables, batch_size=projector_batch_size),
        schema=schema,
    )
