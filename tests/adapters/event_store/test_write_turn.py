"""Writers sharing a PostgreSQL store take turns at deciding batches, and never depend on it."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from market_ledger.adapters.event_store.write_turn import WRITE_TURN_LOCK, PostgresWriteTurn
from market_ledger.domain.installation import ObserveInstallationState
from market_ledger.domain.user import RegisterUser
from tests.conftest import NO_POSTGRES, POSTGRES_URL, StoreFactory

pytestmark = [pytest.mark.postgres, pytest.mark.skipif(not POSTGRES_URL, reason=NO_POSTGRES)]
APPS = [f"app-{n}" for n in range(5)]
START = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture
def postgres_store(tmp_path: object) -> StoreFactory:
    factory = StoreFactory("postgres", tmp_path)  # type: ignore[arg-type]
    yield factory  # type: ignore[misc]
    factory.close()


def batch(writer: int, n: int) -> list[ObserveInstallationState]:
    """One observation of every app: each batch touches every stream the others touch."""
    at = START + timedelta(seconds=n, microseconds=writer)
    return [
        ObserveInstallationState("alice", app, "running", at, progress=f"{writer}-{n}")
        for app in APPS
    ]


def test_given_two_instances_deciding_batches_on_the_same_streams_then_none_is_decided_twice(
    postgres_store: StoreFactory, caplog: pytest.LogCaptureFixture
) -> None:
    # given two instances (two ledgers, two connection pools) on one PostgreSQL schema
    first, second = postgres_store.open(), postgres_store.open()
    first.handler.execute(RegisterUser("alice"))
    caplog.set_level(logging.INFO, logger="market_ledger.service.handler")

    # when both decide batches about the same five installations at the same time
    failures: list[Exception] = []

    def write(writer: int) -> None:
        ledger = (first, second)[writer]
        try:
            for n in range(30):
                ledger.handler.handle(*batch(writer, n))
        except Exception as error:  # a thread's error would otherwise go unseen
            failures.append(error)

    threads = [threading.Thread(target=write, args=(w,)) for w in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then every observation is in the log, and no batch lost a race and was decided again
    assert failures == []
    observed = sum(len(list(first.application.events.get(b.aggregate_id))) for b in batch(0, 0))
    assert observed == 2 * 30 * len(APPS)
    assert "concurrent write" not in caplog.text


def test_given_the_turn_held_elsewhere_past_the_wait_then_a_batch_goes_ahead_without_it(
    postgres_store: StoreFactory, caplog: pytest.LogCaptureFixture
) -> None:
    # given another session holding the turn and never giving it back
    ledger = postgres_store.open()
    ledger.handler.write_turn = PostgresWriteTurn(ledger.writer, wait_seconds=0.2)
    with psycopg.connect(POSTGRES_URL, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (WRITE_TURN_LOCK,))
        # when a batch is handled, then another
        outcome = ledger.handler.handle(RegisterUser("alice"), *batch(0, 0))
        again = ledger.handler.handle(*batch(0, 1))
    # then both were decided and saved all the same, the wait was said, and only the first
    # waited: the next ones go without turns for a while
    assert len(outcome.events) == 1 + len(APPS)
    assert len(again.events) == len(APPS)
    assert caplog.text.count("no turn at deciding within 200 ms") == 1


def test_given_a_turn_then_its_session_holds_the_lock_until_it_ends(
    postgres_store: StoreFactory,
) -> None:
    ledger = postgres_store.open()
    turn = PostgresWriteTurn(ledger.writer)

    def held_elsewhere() -> bool:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as other:
            row = other.execute("SELECT pg_try_advisory_lock(%s)", (WRITE_TURN_LOCK,)).fetchone()
            taken = bool(row and row[0])
            if taken:
                other.execute("SELECT pg_advisory_unlock(%s)", (WRITE_TURN_LOCK,))
            return not taken

    with turn():
        assert held_elsewhere()
    assert not held_elsewhere()
