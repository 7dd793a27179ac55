"""Given appends made under a role's lease, the PostgreSQL store refuses a stale holder's."""

from __future__ import annotations

import pytest

from market_ledger.bootstrap import Ledger
from market_ledger.domain.user import RegisterUser
from market_ledger.projections import role_leases as leases
from market_ledger.service.fencing import LeaseLost, writing_under
from tests.conftest import StoreFactory


@pytest.fixture
def pg_ledger(store: StoreFactory) -> Ledger:
    if store.backend != "postgres":
        pytest.skip("fencing guards several instances, which need PostgreSQL")
    return store.open()


def test_given_the_live_lease_when_appending_under_it_then_the_events_are_written(
    pg_ledger: Ledger,
) -> None:
    with pg_ledger.writer.begin() as conn:
        lease = leases.try_acquire(conn, "cycle", "a:1", 3600.0)
    token = writing_under.set(lease)
    try:
        outcome = pg_ledger.handler.handle(RegisterUser("alice"))
    finally:
        writing_under.reset(token)
    assert len(outcome.events) == 1


def test_given_a_lease_taken_over_when_its_old_holder_appends_then_nothing_is_written(
    pg_ledger: Ledger,
) -> None:
    with pg_ledger.writer.begin() as conn:
        stale = leases.try_acquire(conn, "cycle", "a:1", 0.0)  # runs out at once
        assert stale is not None
        assert leases.try_acquire(conn, "cycle", "b:2", 3600.0) is not None
    head = pg_ledger.projector.head()
    token = writing_under.set(stale)
    try:
        with pytest.raises(LeaseLost, match="no longer held by a:1"):
            pg_ledger.handler.handle(RegisterUser("alice"))
    finally:
        writing_under.reset(token)
    assert pg_ledger.projector.head() == head


def test_given_no_lease_when_appending_then_nothing_is_checked(pg_ledger: Ledger) -> None:
    assert len(pg_ledger.handler.handle(RegisterUser("alice")).events) == 1
