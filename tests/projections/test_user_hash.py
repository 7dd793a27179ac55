"""The per-user hash: its published value, and the projector's parts kept between batches."""

from __future__ import annotations

from typing import Any

from market_ledger.bootstrap import Ledger
from market_ledger.domain.installation import ObserveInstallationState, RemoveInstallation
from market_ledger.domain.listing import DelistApp
from market_ledger.domain.market_source import ConfigureSource, UpdateSourceExtras
from market_ledger.domain.user import RegisterUser
from market_ledger.projections import queries
from market_ledger.projections.hash_rows import KeptParts, kept_parts
from market_ledger.projections.projector import compute_hashes
from market_ledger.projections.user_hash import user_hash
from tests.conftest import FakeClock, StoreFactory
from tests.support.builders import SOURCE, offer, render

USERS = ("alice", "bob")


def listing(app: str, source: str = "main", **fields: Any) -> dict[str, Any]:
    row = {
        "source": source,
        "app_id": app,
        "name": app,
        "latest_version": "1.0.0",
        "latest_digest": f"d-{app}",
        "rendered_digest": f"r-{app}",
        "labels": '["b","a"]',
        "delisted": False,
        "withdrawn": False,
    }
    return {**row, **fields}


def installation(app: str, source: str = "main", **fields: Any) -> dict[str, Any]:
    row = {
        "source": source,
        "name": app,
        "state": "running",
        "op_type": "install",
        "app_version": "1.0.0",
        "entrances": '[{"name":"web","state":"running","url":"http://x","invisible":false,"extra":1}]',
        "removed": False,
    }
    return {**row, **fields}


def source(source_id: str, extras_digest: str, *, active: bool = True) -> dict[str, Any]:
    return {
        "source_id": source_id,
        "removed": False,
        "active": active,
        "source_type": "remote",
        "extras_digest": extras_digest,
    }


def test_the_hash_of_known_rows_keeps_its_published_value() -> None:
    # given rows of every kind the hash reads or leaves out
    listings = [
        listing("zeta"),
        listing("alpha"),
        listing("gone", delisted=True),
        listing("kept", delisted=True),
        listing("pending", latest_version=None),
        listing("other", source="off"),
        listing("away", withdrawn=True),
    ]
    installations = [
        installation("kept"),
        installation("alpha", state="stopped"),
        installation("old", removed=True),
        installation("sys", source=""),
    ]
    # when hashed, then the value is the one clients have been given for such a catalog
    assert (
        user_hash(
            listings, installations, [source("main", "e1"), source("off", "e2", active=False)]
        )
        == "57a2c7814f44b603013d89e7e9ebb05cf927b82e2bc64e939c53703976bd80eb"
    )


def stored_hashes(ledger: Ledger) -> dict[str, str]:
    ledger.catch_up()
    with ledger.read() as conn:
        return {user: queries.stored_hash(conn, ledger.tables, user) for user in USERS}


def full_hashes(ledger: Ledger) -> dict[str, str]:
    with ledger.read() as conn:
        return compute_hashes(conn, ledger.tables, None)


def observe(ledger: Ledger, clock: FakeClock, user: str, app: str, state: str) -> None:
    ledger.handler.execute(
        ObserveInstallationState(user, app, state, clock.advance(1), source=SOURCE)
    )


def a_market(ledger: Ledger) -> None:
    ledger.handler.handle(
        *(RegisterUser(user) for user in USERS),
        ConfigureSource(SOURCE, "remote", "https://market.example"),
    )
    for user in USERS:
        for app in ("firefox", "gimp"):
            command = offer(app, user=user)
            ledger.handler.handle(command, render(command))


def test_hashes_from_kept_parts_equal_hashes_from_every_row_batch_after_batch(
    ledger: Ledger, clock: FakeClock
) -> None:
    # given a market whose hashes the projector computed once
    a_market(ledger)
    stored_hashes(ledger)
    # when batch after batch changes what the users see
    steps = [
        lambda: observe(ledger, clock, "alice", "firefox", "running"),
        lambda: ledger.handler.execute(DelistApp("alice", SOURCE, "firefox", "gone")),
        lambda: observe(ledger, clock, "bob", "gimp", "running"),
        lambda: observe(ledger, clock, "alice", "firefox", "uninstalled"),
        lambda: ledger.handler.execute(RemoveInstallation("bob", "gimp", clock.advance(1))),
        lambda: ledger.handler.handle(offer("zim", "2.0.0", user="bob")),
    ]
    seen = [stored_hashes(ledger)]
    for step in steps:
        step()
        # then each stored hash is the one a read of every row gives
        assert stored_hashes(ledger) == full_hashes(ledger)
        seen.append(stored_hashes(ledger))
    assert len({h["alice"] for h in seen}) > 1 and len({h["bob"] for h in seen}) > 1


def test_a_batch_reads_only_the_rows_written_since_its_users_parts(
    ledger: Ledger, clock: FakeClock
) -> None:
    # given a market where a batch of alice's had her hash computed
    a_market(ledger)
    stored_hashes(ledger)
    observe(ledger, clock, "alice", "firefox", "downloading")
    stored_hashes(ledger)
    # when another app state of alice's arrives
    observe(ledger, clock, "alice", "gimp", "running")
    stored_hashes(ledger)
    # then that batch read the one row it wrote, not alice's other rows again
    with ledger.projector.engine.connect() as conn:
        assert kept_parts(conn, ledger.tables).rows_read == 1


def test_rows_another_projector_wrote_reach_the_kept_parts(
    store: StoreFactory, clock: FakeClock
) -> None:
    # given two projectors on one store (two processes, say), the first with kept parts
    first = store.open(clock)
    a_market(first)
    stored_hashes(first)
    second = store.open(clock)
    # when the second applies a batch, then the first another
    observe(first, clock, "alice", "firefox", "running")
    second.catch_up()
    observe(first, clock, "alice", "gimp", "running")
    # then the first's hash of alice counts both
    assert stored_hashes(first) == full_hashes(first)


def test_parts_are_read_again_after_a_rebuild_replaced_the_tables(
    ledger: Ledger, clock: FakeClock
) -> None:
    # given kept parts, then a rebuild that switched in fresh tables
    a_market(ledger)
    observe(ledger, clock, "alice", "firefox", "running")
    stored_hashes(ledger)
    ledger.rebuild()
    # when an app state of alice's is projected
    observe(ledger, clock, "alice", "gimp", "running")
    stored_hashes(ledger)
    # then every row of alice was read again, and her hash is the full read's
    with ledger.projector.engine.connect() as conn:
        assert kept_parts(conn, ledger.tables).rows_read == 4
    assert stored_hashes(ledger) == full_hashes(ledger)


def test_a_source_change_rehashes_every_user_from_every_row(
    ledger: Ledger, clock: FakeClock
) -> None:
    # given kept parts of both users
    a_market(ledger)
    stored_hashes(ledger)
    before = stored_hashes(ledger)
    # when the source's extras change (what every user sees)
    ledger.handler.execute(UpdateSourceExtras(SOURCE, {"tops": [{"appid": "gimp"}]}))
    # then every hash changes, as a read of every row says
    after = stored_hashes(ledger)
    assert after == full_hashes(ledger)
    assert all(after[user] != before[user] for user in USERS)


def test_parts_beyond_the_limit_are_dropped_and_read_again_when_needed(
    ledger: Ledger, clock: FakeClock
) -> None:
    # given parts kept for at most 3 rows, and both users' 2 rows each hashed by one batch
    a_market(ledger)
    stored_hashes(ledger)
    kept = KeptParts(limit=3)
    position = ledger.projector.position()
    with ledger.projector.engine.begin() as conn:
        kept.hashes(conn, ledger.tables, ["alice", "bob"], position)
        # when a later batch hashes alice alone
        kept.hashes(conn, ledger.tables, ["alice"], position)
        # then bob's parts are dropped, and hashing him again reads his rows and agrees
        assert set(kept.users) == {"alice"}
        again = kept.hashes(conn, ledger.tables, ["bob"], position)
    assert kept.rows_read == 2
    assert again["bob"] == full_hashes(ledger)["bob"]
