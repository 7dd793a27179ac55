"""Given/when/then for users, market sources and feed cursors."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from market_ledger.domain.decider import Command, CommandRejected, Decider, DecisionContext
from market_ledger.domain.feed_cursor import FEED_CURSOR, ConsumeFeed, FeedConsumed
from market_ledger.domain.market_source import (
    MARKET_SOURCE,
    CatalogObserved,
    ConfigureSource,
    ExtrasUpdated,
    ObserveCatalog,
    RemoveSource,
    SourceConfigured,
    UpdateSourceExtras,
)
from market_ledger.domain.user import (
    USER,
    MarkUserDirty,
    RegisterUser,
    RemoveUser,
    UserMarkedDirty,
    UserRegistered,
    UserRemoved,
)

CONTEXT = DecisionContext(at=datetime(2026, 11, 1, tzinfo=UTC))


def run(decider: Decider[Any], *commands: Command) -> tuple[Any, list[Any]]:
    """Decide and apply each command; returns the final state and the last command's events."""
    state, events = None, []
    for command in commands:
        events = list(decider.decide(command, state, CONTEXT))
        state = decider.fold(state, events)
    return state, events


def test_registering_a_user_twice_produces_one_event_and_a_role_change_another() -> None:
    _, events = run(USER, RegisterUser("alice"), RegisterUser("alice"))
    assert events == []
    _, events = run(USER, RegisterUser("alice"), RegisterUser("alice", role="admin"))
    assert [type(e) for e in events] == [UserRegistered]


def test_removing_or_dirtying_an_unknown_user_is_refused() -> None:
    with pytest.raises(CommandRejected, match="unknown user 'bob'"):
        run(USER, RemoveUser("bob"))
    with pytest.raises(CommandRejected, match="unknown user"):
        run(USER, RegisterUser("bob"), RemoveUser("bob"), MarkUserDirty("bob"))


def test_a_user_can_be_removed_and_registered_again() -> None:
    state, events = run(USER, RegisterUser("bob"), RemoveUser("bob"))
    assert [type(e) for e in events] == [UserRemoved] and not state.registered
    state, _ = run(USER, RegisterUser("bob"), RemoveUser("bob"), RegisterUser("bob"))
    assert state.registered


def test_marking_a_user_dirty_is_always_recorded() -> None:
    _, events = run(USER, RegisterUser("bob"), MarkUserDirty("bob", "hash format"))
    assert [type(e) for e in events] == [UserMarkedDirty] and events[0].reason == "hash format"


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (ConfigureSource("", "remote", "https://m"), "non-empty id"),
        (ConfigureSource("m", "ftp", "https://m"), "type must be one of remote, local"),
        (ConfigureSource("m", "remote", " "), "url is empty"),
    ],
)
def test_a_source_with_bad_settings_is_refused_with_the_reason(
    command: ConfigureSource, message: str
) -> None:
    with pytest.raises(CommandRejected, match=message):
        run(MARKET_SOURCE, command)


def test_reconfiguring_a_source_identically_produces_nothing() -> None:
    add = ConfigureSource("m", "remote", "https://m", 5)
    _, events = run(MARKET_SOURCE, add, add)
    assert events == []
    _, events = run(MARKET_SOURCE, add, ConfigureSource("m", "remote", "https://n", 5))
    assert [type(e) for e in events] == [SourceConfigured]


def test_a_catalog_observation_is_recorded_only_when_it_changes() -> None:
    add = ConfigureSource("m", "remote", "https://m")
    seen = ObserveCatalog("m", "h1", "1.12.3", 90)
    _, events = run(MARKET_SOURCE, add, seen)
    assert [type(e) for e in events] == [CatalogObserved]
    _, events = run(MARKET_SOURCE, add, seen, seen)
    assert events == []


def test_extras_in_a_different_order_are_the_same_extras() -> None:
    add = ConfigureSource("m", "remote", "https://m")
    first = UpdateSourceExtras("m", {"tags": [{"name": "a"}, {"name": "b"}], "latest": ["x"]})
    shuffled = UpdateSourceExtras("m", {"tags": [{"name": "b"}, {"name": "a"}], "latest": ["x"]})
    _, events = run(MARKET_SOURCE, add, first)
    assert [type(e) for e in events] == [ExtrasUpdated]
    _, events = run(MARKET_SOURCE, add, first, shuffled)
    assert events == []


def test_commands_for_a_removed_source_are_refused() -> None:
    with pytest.raises(CommandRejected, match="unknown source 'm'"):
        run(
            MARKET_SOURCE,
            ConfigureSource("m", "remote", "https://m"),
            RemoveSource("m"),
            ObserveCatalog("m", "h", "v", 1),
        )


def test_a_feed_cursor_never_moves_backwards() -> None:
    # The replaced system reset its cursor to 0 when every change of a batch failed.
    state, events = run(FEED_CURSOR, ConsumeFeed("chart-repo", 40))
    assert [type(e) for e in events] == [FeedConsumed]
    _, events = run(FEED_CURSOR, ConsumeFeed("chart-repo", 40), ConsumeFeed("chart-repo", 0))
    assert events == []
    _, events = run(FEED_CURSOR, ConsumeFeed("chart-repo", 40), ConsumeFeed("chart-repo", 40))
    assert events == []
    state, _ = run(FEED_CURSOR, ConsumeFeed("chart-repo", 40), ConsumeFeed("chart-repo", 41))
    assert state.position == 41
