"""Given the lease table, who may take, keep and write for a role."""

from __future__ import annotations

import pytest

from market_ledger.bootstrap import Ledger
from market_ledger.domain.user import RegisterUser
from market_ledger.projections import queries
from market_ledger.projections import role_leases as leases
from market_ledger.projections.projector import Projector

LONG = 3600.0


def test_given_a_free_role_when_taken_then_the_first_token_is_one(ledger: Ledger) -> None:
    with ledger.writer.begin() as conn:
        lease = leases.try_acquire(conn, "cycle", "a:1", LONG)
    assert lease is not None and (lease.holder, lease.token) == ("a:1", 1)
    assert lease.expires_at - lease.since == LONG


def test_given_a_live_lease_then_another_instance_cannot_take_it(ledger: Ledger) -> None:
    with ledger.writer.begin() as conn:
        leases.try_acquire(conn, "cycle", "a:1", LONG)
    with ledger.writer.begin() as conn:
        assert leases.try_acquire(conn, "cycle", "b:2", LONG) is None
        assert leases.current_leases(conn)["cycle"].holder == "a:1"


def test_given_an_expired_lease_when_taken_then_the_token_grows_and_the_old_holder_is_fenced(
    ledger: Ledger,
) -> None:
    with ledger.writer.begin() as conn:
        old = leases.try_acquire(conn, "projector", "a:1", 0.0)  # expires at once
    assert old is not None
    with ledger.writer.begin() as conn:
        new = leases.try_acquire(conn, "projector", "b:2", LONG)
    assert new is not None and new.token == old.token + 1
    with ledger.writer.begin() as conn:
        assert not leases.holds(conn, old)
        assert leases.renew(conn, old, LONG) is None
        assert leases.holds(conn, new)


def test_given_a_held_lease_when_renewed_then_it_runs_longer(ledger: Ledger) -> None:
    with ledger.writer.begin() as conn:
        lease = leases.try_acquire(conn, "notifier", "a:1", 60.0)
    assert lease is not None
    with ledger.writer.begin() as conn:
        renewed = leases.renew(conn, lease, LONG)
    assert renewed is not None and renewed.expires_at > lease.expires_at
    assert renewed.token == lease.token


def test_given_a_released_lease_then_the_next_instance_takes_it_at_once(ledger: Ledger) -> None:
    with ledger.writer.begin() as conn:
        lease = leases.try_acquire(conn, "tasks", "a:1", LONG)
    assert lease is not None
    with ledger.writer.begin() as conn:
        leases.release(conn, lease)
    with ledger.writer.begin() as conn:
        taken = leases.try_acquire(conn, "tasks", "b:2", LONG)
    assert taken is not None and taken.token == 2


def test_given_each_role_then_each_has_its_own_lease(ledger: Ledger) -> None:
    with ledger.writer.begin() as conn:
        held = [
            leases.try_acquire(conn, role, f"i{n}:1", LONG) for n, role in enumerate(leases.ROLES)
        ]
        recorded = leases.current_leases(conn)
    assert all(lease is not None for lease in held)
    assert {role: lease.holder for role, lease in recorded.items()} == {
        "cycle": "i0:1",
        "projector": "i1:1",
        "notifier": "i2:1",
        "tasks": "i3:1",
    }


def test_given_a_projector_whose_lease_was_taken_then_its_batch_is_refused(
    ledger: Ledger,
) -> None:
    ledger.handler.handle(RegisterUser("alice"))
    with ledger.writer.begin() as conn:
        stale = leases.try_acquire(conn, "projector", "a:1", 0.0)
        assert leases.try_acquire(conn, "projector", "b:2", LONG) is not None
    fenced = Projector(ledger.application, ledger.writer, ledger.tables, lease=stale)
    with pytest.raises(leases.LeaseLost, match="projector role's lease"):
        fenced.run_batch()
    assert fenced.position() == 0


def test_given_the_projector_s_live_lease_then_its_batches_are_written(ledger: Ledger) -> None:
    ledger.handler.handle(RegisterUser("alice"))
    with ledger.writer.begin() as conn:
        live = leases.try_acquire(conn, "projector", "a:1", LONG)
    fenced = Projector(ledger.application, ledger.writer, ledger.tables, lease=live)
    assert fenced.run_batch() == 1 and fenced.position() == ledger.projector.head()


def test_given_instances_beating_then_only_the_recent_ones_are_live(ledger: Ledger) -> None:
    with ledger.writer.begin() as conn:
        leases.heartbeat(conn, "a:1")
        leases.heartbeat(conn, "b:2")
        leases.heartbeat(conn, "a:1")  # again: one row
        assert leases.live_instances(conn, LONG) == {"a:1", "b:2"}
        assert leases.live_instances(conn, -1.0) == set()  # none beat in the future
        leases.forget_instance(conn, "b:2")
        assert leases.live_instances(conn, LONG) == {"a:1"}


def test_given_leases_then_status_shows_who_holds_each_role_since_when(ledger: Ledger) -> None:
    with ledger.writer.begin() as conn:
        leases.try_acquire(conn, "cycle", "a:1", LONG)
        leases.try_acquire(conn, "notifier", "b:2", 0.0)  # ran out at once
        shown = queries.status(conn, ledger.tables, head=0)["roles"]
    assert set(shown) == {"cycle", "projector", "notifier", "tasks"}
    assert shown["cycle"]["holder"] == "a:1" and str(shown["cycle"]["since"]).endswith("Z")
    assert shown["notifier"] == {"holder": None, "since": None, "token": None}
    assert shown["projector"]["holder"] is None
