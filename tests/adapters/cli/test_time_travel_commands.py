"""``catalog`` and ``hash`` with ``--position`` or ``--at``: the past, on a real store."""

from __future__ import annotations

import json
from typing import Any

import pytest

from market_ledger.bootstrap import Ledger
from market_ledger.domain.canonical import format_instant
from market_ledger.domain.market_source import ConfigureSource
from market_ledger.domain.user import RegisterUser
from market_ledger.service.catalog_at import catalog_at
from tests.conftest import FakeClock, StoreFactory
from tests.support.builders import offer, render

SOURCE = "market.olares"


class Past:
    """A log where "a" is offered and rendered, then a minute later "b" too."""

    def __init__(self, store: StoreFactory, clock: FakeClock) -> None:
        self.ledger: Ledger = store.open(clock, checkpoint_every=3)
        handler = self.ledger.handler
        handler.handle(ConfigureSource(SOURCE, "remote", "https://m"))
        self.before_alice = self.ledger.projector.head()
        handler.handle(RegisterUser("alice"))
        first = offer("a")
        handler.handle(first, render(first))
        self.with_a = self.ledger.projector.head()
        self.moment = clock()
        clock.advance(60)
        second = offer("b")
        handler.handle(second, render(second))
        self.head = self.ledger.projector.head()


@pytest.fixture
def past(store: StoreFactory, clock: FakeClock) -> Past:
    return Past(store, clock)


def apps(view: dict[str, Any]) -> list[str]:
    return [app["app_id"] for app in view["sources"][SOURCE]["apps"]]


def test_given_a_past_position_when_asking_the_catalog_then_it_shows_what_was_seen_then(
    run: Any, past: Past
) -> None:
    # when
    then = json.loads(
        run("catalog", "--user", "alice", "--position", str(past.with_a), "--json").output
    )
    now = json.loads(run("catalog", "--user", "alice", "--json").output)
    text = run("catalog", "--user", "alice", "--position", str(past.with_a)).output

    # then: the catalog's JSON, with the position, as the use case gives it
    assert apps(then) == ["a"] and apps(now) == ["a", "b"]
    assert then == catalog_at(past.ledger, "alice", position=past.with_a)
    assert then["position"] == past.with_a and "position" not in now
    assert {k: v for k, v in then.items() if k != "position"}.keys() == now.keys()
    assert text.splitlines()[0] == f"user alice  hash {then['hash']}  position {past.with_a}"
    assert [line.split()[0] for line in text.splitlines() if line.startswith("  ")] == ["a"]


def test_given_a_past_moment_when_asking_the_catalog_then_it_names_the_position_and_the_moment(
    run: Any, past: Past
) -> None:
    # when
    then = json.loads(
        run("catalog", "--user", "alice", "--at", format_instant(past.moment), "--json").output
    )

    # then
    assert apps(then) == ["a"]
    assert then["position"] == past.with_a
    assert then["at"] == format_instant(past.moment)


def test_given_a_past_position_when_asking_the_hash_then_it_is_that_catalogs_hash(
    run: Any, past: Past
) -> None:
    # when
    then = run("hash", "--user", "alice", "--position", str(past.with_a)).output.strip()
    at_head = run("hash", "--user", "alice", "--position", str(past.head)).output.strip()
    now = run("hash", "--user", "alice").output.strip()

    # then
    assert then == catalog_at(past.ledger, "alice", position=past.with_a)["hash"]
    assert then != now and at_head == now


def test_given_a_position_beyond_the_head_or_before_the_user_then_the_cli_exits_1_saying_so(
    run: Any, past: Past
) -> None:
    beyond = str(past.head + 1)
    for command in ("catalog", "hash"):
        result = run(command, "--user", "alice", "--position", beyond, code=1)
        assert f"position {beyond} is beyond the head of the log ({past.head})" in result.output
        result = run(command, "--user", "alice", "--position", str(past.before_alice), code=1)
        assert f"'alice' was not registered at position {past.before_alice}" in result.output
    result = run("catalog", "--user", "ghost", "--position", str(past.head), code=1)
    assert f"'ghost' was not registered at position {past.head}" in result.output


def test_given_bad_time_travel_flags_then_the_cli_exits_2_naming_the_flag(
    run: Any, past: Past
) -> None:
    both = run(
        "catalog", "--user", "alice", "--position", "1", "--at", "2026-11-01T12:00:00Z", code=2
    )
    assert "give either --position or --at, not both" in both.output
    not_a_time = run("hash", "--user", "alice", "--at", "yesterday", code=2)
    assert "'yesterday' is not an RFC 3339 time" in not_a_time.output
    assert "--at" in not_a_time.output
    negative = run("catalog", "--user", "alice", "--position", "-1", code=2)
    assert "--position" in negative.output
