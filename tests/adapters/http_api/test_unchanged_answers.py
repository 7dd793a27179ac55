"""Read answers kept while nothing was committed to the store, and read again after a commit."""

from __future__ import annotations

import asyncio

from market_ledger.adapters.http_api.unchanged import StoreWatch, UnchangedAnswers
from market_ledger.bootstrap import Ledger
from market_ledger.domain.market_source import ConfigureSource
from market_ledger.domain.user import RegisterUser
from market_ledger.projections import queries
from tests.conftest import StoreFactory
from tests.support.builders import SOURCE, offer, render


class HashReads:
    """alice's stored hash, read from the views; counts the reads."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.count = 0

    def __call__(self) -> str:
        self.count += 1
        with self.ledger.read() as conn:
            return queries.stored_hash(conn, self.ledger.tables, "alice")


def answered(answers: UnchangedAnswers[str], read: HashReads) -> str:
    return asyncio.run(answers.get("alice", read))


def registered(ledger: Ledger) -> Ledger:
    ledger.handler.handle(
        RegisterUser("alice"), ConfigureSource(SOURCE, "remote", "https://market.example")
    )
    ledger.catch_up()
    return ledger


def test_given_sqlite_when_nothing_is_committed_then_the_kept_answer_is_given_unread(
    sqlite_store: StoreFactory,
) -> None:
    ledger = registered(sqlite_store.open())
    read = HashReads(ledger)
    answers = UnchangedAnswers[str](StoreWatch(ledger), 4)
    first = answered(answers, read)
    assert [answered(answers, read) for _ in range(3)] == [first] * 3
    assert read.count == 1


def test_given_sqlite_when_another_process_commits_then_the_next_answer_is_read_again(
    sqlite_store: StoreFactory,
) -> None:
    ledger = registered(sqlite_store.open())
    read = HashReads(ledger)
    answers = UnchangedAnswers[str](StoreWatch(ledger), 4)
    before = answered(answers, read)
    writer = sqlite_store.open()  # its own engines, as another process would have
    app = offer()
    writer.handler.handle(app, render(app))
    writer.catch_up()
    after = answered(answers, read)
    assert read.count == 2
    assert after != before
    with ledger.read() as conn:
        assert after == queries.stored_hash(conn, ledger.tables, "alice")


def test_given_any_store_when_the_views_change_then_the_next_answer_shows_the_change(
    ledger: Ledger,
) -> None:
    registered(ledger)
    read = HashReads(ledger)
    answers = UnchangedAnswers[str](StoreWatch(ledger), 4)
    before = answered(answers, read)
    app = offer()
    ledger.handler.handle(app, render(app))
    ledger.catch_up()
    after = answered(answers, read)
    assert after != before
    with ledger.read() as conn:
        assert after == queries.stored_hash(conn, ledger.tables, "alice")


def test_past_its_capacity_the_least_recently_used_answer_is_read_again(
    sqlite_store: StoreFactory,
) -> None:
    ledger = registered(sqlite_store.open())
    answers = UnchangedAnswers[str](StoreWatch(ledger), 2)
    reads: list[str] = []

    def reader(key: str) -> str:
        reads.append(key)
        return key

    for key in ("a", "b", "c", "a", "c"):
        asyncio.run(answers.get(key, lambda k=key: reader(k)))  # type: ignore[misc]
    assert reads == ["a", "b", "c", "a"]


def test_given_the_watch_cannot_ask_sqlite_then_every_answer_is_read_and_none_fails(
    sqlite_store: StoreFactory,
) -> None:
    ledger = registered(sqlite_store.open())
    read = HashReads(ledger)
    watch = StoreWatch(ledger)
    answers = UnchangedAnswers[str](watch, 4)
    first = answered(answers, read)
    watch._connection.dbapi_connection.close()  # a fault of the watch's own connection
    assert watch.version() is None
    assert [answered(answers, read) for _ in range(2)] == [first] * 2
    assert read.count == 3
