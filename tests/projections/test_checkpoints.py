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
from alembic import command as alembic
from hypothesis import given
from hypothesis import strategies as st

from market_ledger.adapters.config import Settings
from market_ledger.bootstrap import Ledger, bootstrap
from market_ledger.domain.decider import Command
from market_ledger.domain.market_source import ConfigureSource
from market_ledger.domain.user import RegisterUser
from market_ledger.projections import queries
from market_ledger.projections.checkpoints import recorded_interval
from market_ledger.projections.migrate import alembic_config
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


def kept_rows(ledger: Ledger) -> list[tuple[Any, ...]]:
    table = ledger.tables.checkpoints
    with ledger.read() as conn:
        return [tuple(r) for r in conn.execute(sa.select(table).order_by(*table.primary_key))]


def test_given_a_listing_changed_in_a_later_interval_then_only_its_earlier_version_is_written_out(
    store: StoreFactory,
) -> None:
    # given checkpoints every 3 positions and listing "a" offered and rendered early
    ledger = store.open(checkpoint_every=3)
    ledger.handler.handle(RegisterUser("alice"), ConfigureSource(SOURCE, "remote", "https://m"))
    offers(ledger, ["a", "b"])
    ledger.catch_up()
    first = {(kind, key, point): row for kind, key, point, _, row in kept_rows(ledger)}

    # when "a" moves on to a new version, intervals later
    upgrade = offer("a", version="2.0.0")
    ledger.handler.handle(upgrade, render(upgrade))
    ledger.catch_up()

    # then the version the live view held until then is written out, the new one is not
    then = {(kind, key, point): row for kind, key, point, _, row in kept_rows(ledger)}
    moved = [k for k in first if first[k] is None and then[k] is not None]
    assert first and all(row is None for row in first.values())
    assert len(moved) == 1 and moved[0][0] == "listings"
    assert [k for k in then if k not in first and then[k] is not None] == []
    assert ledger.rebuild(verify=True).differences == ()
    for position in range(1, ledger.projector.head() + 1):
        assert catalog_at(ledger, "alice", position=position) == from_zero(ledger, position)


def from_zero(ledger: Ledger, position: int) -> dict[str, Any]:
    with ledger.read() as conn:
        known = known_streams(conn, ledger.tables, "alice")
    rows = replay_user(ledger.application, "alice", position, known)
    view = queries.catalog_from_rows(
        "alice", rows.hash, rows.listings, rows.installations, rows.sources
    )
    return {**view, "position": position}


def test_given_checkpoint_rows_kept_in_full_when_migrated_then_the_live_versions_are_kept_once(
    store: StoreFactory,
) -> None:
    # given views whose checkpoint rows were all written in full (migration 0007 undone)
    ledger = store.open(checkpoint_every=3)
    ledger.handler.handle(RegisterUser("alice"), ConfigureSource(SOURCE, "remote", "https://m"))
    offers(ledger, ["a", "b", "c"])
    upgrade = offer("b", version="2.0.0")
    ledger.handler.handle(upgrade, render(upgrade))
    ledger.catch_up()
    kept = kept_rows(ledger)
    head = ledger.projector.head()
    past = [catalog_at(ledger, "alice", position=p) for p in range(1, head + 1)]
    config = alembic_config()
    with ledger.writer.begin() as conn:
        config.attributes["connection"] = conn
        alembic.downgrade(config, "0006")
    in_full = kept_rows(ledger)

    # when migrated again
    with ledger.writer.begin() as conn:
        config.attributes["connection"] = conn
        alembic.upgrade(config, "head")

    # then the rows are as the projector keeps them, and the past reads the same
    assert [row for *_, row in kept if row is None] and None not in [row for *_, row in in_full]
    assert kept_rows(ledger) == kept
    assert [catalog_at(ledger, "alice", position=p) for p in range(1, head + 1)] == past
    assert ledger.rebuild(verify=True).differences == ()
