"""The Alembic migrations create exactly the tables the projections are written for."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from market_ledger.bootstrap import Ledger
from market_ledger.projections.migrate import migrate
from market_ledger.projections.notifier_state import define_notifier_tables
from market_ledger.projections.role_leases import LEASES
from market_ledger.projections.schema import define_tables
from tests.conftest import StoreFactory


def every_table() -> sa.MetaData:
    """The views' tables and the notifier's (kept apart: a rebuild must not touch them)."""
    metadata = sa.MetaData()
    for source in (define_tables().metadata, define_notifier_tables().metadata, LEASES.metadata):
        for table in source.tables.values():
            table.to_metadata(metadata)
    return metadata


def test_the_migrated_schema_matches_the_table_definitions(ledger: Ledger) -> None:
    metadata = every_table()
    ours = set(metadata.tables)

    def only_ours(name: str | None, type_: str, _parent: object) -> bool:
        return type_ != "table" or name in ours  # the event store's tables are the library's

    with ledger.writer.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": only_ours})
        differences = compare_metadata(context, metadata)
    assert differences == []


def test_migrating_twice_is_harmless(ledger: Ledger) -> None:

    migrate(ledger.writer)
    with ledger.writer.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == "0007"


def test_given_a_new_schema_when_several_instances_open_it_at_once_then_each_finds_its_tables(
    store: StoreFactory,
) -> None:
    # given a fresh database (a new PostgreSQL schema, or a new SQLite file)
    barrier = threading.Barrier(4)

    def open_one() -> int:
        barrier.wait()
        ledger = store.open()
        return ledger.projector.head()

    # when four instances create the store's and the views' tables at the same moment
    with ThreadPoolExecutor(max_workers=4) as pool:
        heads = list(pool.map(lambda _: open_one(), range(4)))

    # then none was refused by the others' DDL, and each sees the same empty store
    assert heads == [0, 0, 0, 0]
