"""Checkpoints: time travel from the nearest one gives what a replay from position 0 gives, the
projector and a rebuild keep the same ones whatever the batches, and a verify sees a change."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from market_ledger.adapters.config import Settings
from market_ledger.bootstrap import Ledger, bootstrap
from market_ledger.domain.decider import Command
from market_ledger.domain.market_source import ConfigureSource
from market_ledger.domain.user import RegisterUser
from market_ledger.projections import queries
from market_ledger.projections.checkpoints import recorded_interval
from market_ledger.projections.time_travel import (
    ReplayedRows,
    checkpoint_for,
    known_streams,
    replay_user,
)
from market_ledger.service.catalog_at import catalog_at
from tests.conftest import FakeClock, StoreFactory
from tests.fixtures import STORE_V1, fixture
from tests.projections.test_projection_properties import (
    PROPERTY_SETTINGS,
    SETUP,
    USERS,
    any_command,
)
from tests.support.builders import offer, render

SOURCE = "market.olares"


@contextmanager
def ledger_with_checkpoints(every: int, batch_size: int) -> Iterator[Ledger]:
    with tempfile.TemporaryDirectory() as folder:
        ledger = bootstrap(
            Settings(
                database_url=f"sqlite:///{folder}/ledger.db",
                retry_max_attempts=2,
                checkpoint_every=every,
            ),
            clock=FakeClock(),
            projector_batch_size=batch_size,
        )
        try:
            yield ledger
        finally:
            ledger.close()


def comparable(rows: ReplayedRows) -> dict[str, Any]:
    """The replayed rows whatever order they were made in."""
    return {
        "user": rows.user,
        "listings": sorted(rows.listings, key=lambda r: r["listing_id"]),
        "installations": sorted(rows.installations, key=lambda r: r["installation_id"]),
        "sources": sorted(rows.sources, key=lambda r: r["source_id"]),
        "hash": rows.hash,
    }


def run_commands(ledger: Ledger, commands: list[Command], catch_up_every: int) -> None:
    ledger.handler.handle(*SETUP)
    for index, command in enumerate(commands, start=1):
        ledger.handler.handle(command)
        if index % catch_up_every == 0:
            ledger.catch_up()


@PROPERTY_SETTINGS
@given(
    commands=st.lists(any_command, max_size=45),
    every=st.integers(3, 7),
    batch_size=st.integers(1, 9),
    catch_up_every=st.integers(1, 15),
    caught_up=st.booleans(),
    data=st.data(),
)
def test_given_checkpoints_every_few_positions_when_travelling_to_any_position_then_it_equals_a_replay_from_zero(  # noqa: E501
    commands: list[Command],
    every: int,
    batch_size: int,
    catch_up_every: int,
    caught_up: bool,
    data: st.DataObject,
) -> None:
    with ledger_with_checkpoints(every, batch_size) as ledger:
        # given a log of random commands, the views caught up now and then (or to the head)
        run_commands(ledger, commands, catch_up_every)
        if caught_up:
            ledger.catch_up()
        head = ledger.projector.head()
        positions = data.draw(st.lists(st.integers(0, head), min_size=1, max_size=4))
        for user in USERS:
            with ledger.read() as conn:
                known = known_streams(conn, ledger.tables, user)
                starts = [checkpoint_for(conn, ledger.tables, user, p, known) for p in positions]
            for position, start in zip(positions, starts, strict=True):
                # when travelling from the nearest checkpoint, and from position 0
                travelled = replay_user(ledger.application, user, position, known, start)
                reference = replay_user(ledger.application, user, position, known)
                # then the checkpoint is the newest one the views had passed, and the rows agree
                nearest = min(position, known.position) // every * every
                assert (start.position if start else 0) == nearest
                assert comparable(travelled) == comparable(reference)


@PROPERTY_SETTINGS
@given(
    commands=st.lists(any_command, max_size=45),
    every=st.integers(1, 7),
    batch_size=st.integers(1, 9),
    catch_up_every=st.integers(1, 15),
)
def test_given_checkpoints_every_few_positions_then_the_incremental_ones_equal_a_rebuild(
    commands: list[Command], every: int, batch_size: int, catch_up_every: int
) -> None:
    with ledger_with_checkpoints(every, batch_size) as ledger:
        run_commands(ledger, commands, catch_up_every)
        ledger.catch_up()

        report = ledger.rebuild(verify=True)

        assert report.differences == (), [d.describe() for d in report.differences]


def offers(ledger: Ledger, apps: list[str]) -> None:
    for app in apps:
        command = offer(app)
        ledger.handler.handle(command, render(command))


def test_given_a_tampered_checkpoint_row_when_verifying_then_the_difference_is_named(
    store: StoreFactory,
) -> None:
    # given checkpoints every 3 positions, one of them changed behind the projector's back
    ledger = store.open(checkpoint_every=3)
    ledger.handler.handle(RegisterUser("alice"), ConfigureSource(SOURCE, "remote", "https://m"))
    offers(ledger, ["a", "b", "c"])
    ledger.catch_up()
    table = ledger.tables.checkpoints
    with ledger.writer.begin() as conn:
        key = conn.execute(
            sa.select(table.c.kind, table.c.row_key, table.c.checkpoint)
            .where(table.c.kind == "listings")
            .order_by(table.c.checkpoint)
            .limit(1)
        ).one()
        conn.execute(
            table.update()
            .where(table.c.row_key == key.row_key, table.c.checkpoint == key.checkpoint)
            .values(row='{"tampered": true}')
        )

    # when
    report = ledger.rebuild(verify=True)

    # then
    described = [d.describe() for d in report.differences]
    assert len(described) == 1, described
    assert described[0].startswith(
        f"checkpoints listings/{key.row_key}/{key.checkpoint}: row: live='{{\"tampered\": true}}'"
    )


def test_given_a_store_reopened_with_another_interval_then_it_keeps_its_own_until_rebuilt(
    store: StoreFactory,
) -> None:
    # given views begun with checkpoints every 3 positions, then opened with 5
    first = store.open(checkpoint_every=3)
    first.handler.handle(RegisterUser("alice"), ConfigureSource(SOURCE, "remote", "https://m"))
    offers(first, ["a", "b"])
    first.catch_up()
    second = store.open(checkpoint_every=5)
    offers(second, ["c", "d"])
    second.catch_up()
    with second.read() as conn:
        kept = recorded_interval(conn, second.tables)
    verified = second.rebuild(verify=True)

    # when rebuilt
    second.rebuild()

    # then the views kept 3 (and verify to it), and the rebuild took 5
    with second.read() as conn:
        rebuilt = recorded_interval(conn, second.tables)
    assert kept == 3 and verified.differences == ()
    assert rebuilt == 5 and second.rebuild(verify=True).differences == ()
    head = second.projector.head()
    assert catalog_at(second, "alice", position=head)["hash"] == catalog_at(second, "alice")["hash"]


def test_given_views_written_before_checkpoints_then_time_travel_replays_until_a_rebuild(
    tmp_path: Path,
) -> None:
    # given the store an early version wrote, opened (so migrated) by today's code
    copy = tmp_path / "ledger.db"
    shutil.copyfile(fixture(STORE_V1), copy)
    ledger = bootstrap(Settings(database_url=f"sqlite:///{copy}", checkpoint_every=50))
    try:
        head = ledger.projector.head()
        user = "alice"
        with ledger.read() as conn:
            before = recorded_interval(conn, ledger.tables)
            known = known_streams(conn, ledger.tables, user)
            none_yet = checkpoint_for(conn, ledger.tables, user, head, known)
        past = catalog_at(ledger, user, position=head)

        # when rebuilt
        ledger.rebuild()

        # then checkpoints are kept from then on, and the past reads the same from them
        with ledger.read() as conn:
            after = recorded_interval(conn, ledger.tables)
            known = known_streams(conn, ledger.tables, user)
            found = checkpoint_for(conn, ledger.tables, user, head, known)
        assert before == 0 and none_yet is None
        assert after == 50 and found is not None and found.position == head // 50 * 50
        assert catalog_at(ledger, user, position=head) == past
        with ledger.read() as conn:
            assert past["hash"] == queries.stored_hash(conn, ledger.tables, user)
    finally:
        ledger.close()
