"""Given/when/then for users, market sources and feed cursors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from market_ledger.domain.decider import DecisionContext
from market_ledger.domain.feed_cursor import (
    FEED_CURSOR,
    ConsumeFeed,
    FeedConsumed,
    FeedCursorState,
)
from market_ledger.domain.market_source import (
    MARKET_SOURCE,
    CatalogObserved,
    ConfigureSource,
    ExtrasUpdated,
    MarketSourceState,
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
    UserState,
)
from tests.support.decider import DeciderSpec

CONTEXT = DecisionContext(at=datetime(2026, 11, 1, tzinfo=UTC))
users: DeciderSpec[UserState] = DeciderSpec(USER, CONTEXT)
sources: DeciderSpec[MarketSourceState] = DeciderSpec(MARKET_SOURCE, CONTEXT)
cursors: DeciderSpec[FeedCursorState] = DeciderSpec(FEED_CURSOR, CONTEXT)


def test_registering_a_user_twice_produces_one_event_and_a_role_change_another() -> None:
    users.given(RegisterUser("alice")).when(RegisterUser("alice")).then_nothing()
    users.given(RegisterUser("alice")).when(RegisterUser("alice", role="admin")).then(
        UserRegistered
    )


def test_removing_or_dirtying_an_unknown_user_is_refused() -> None:
    users.when(RemoveUser("bob")).then_rejected("unknown user 'bob'")
    given = users.given(RegisterUser("bob"), RemoveUser("bob"))
    given.when(MarkUserDirty("bob")).then_rejected("unknown user")


def test_a_user_can_be_removed_and_registered_again() -> None:
    then = users.given(RegisterUser("bob")).when(RemoveUser("bob")).then(UserRemoved)
    assert then.state is not None and not then.state.registered
    state = users.given(RegisterUser("bob"), RemoveUser("bob"), RegisterUser("bob")).state
    assert state is not None and state.registered


def test_marking_a_user_dirty_is_always_recorded() -> None:
    given = users.given(RegisterUser("bob"))
    then = given.when(MarkUserDirty("bob", "hash format")).then(UserMarkedDirty)
    assert then.events[0].reason == "hash format"


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
    sources.when(command).then_rejected(message)


def test_reconfiguring_a_source_identically_produces_nothing() -> None:
    add = ConfigureSource("m", "remote", "https://m", 5)
    sources.given(add).when(add).then_nothing()
    sources.given(add).when(ConfigureSource("m", "remote", "https://n", 5)).then(SourceConfigured)


def test_a_catalog_observation_is_recorded_only_when_it_changes() -> None:
    add = ConfigureSource("m", "remote", "https://m")
    seen = ObserveCatalog("m", "h1", "1.12.3", 90)
    sources.given(add).when(seen).then(CatalogObserved)
    sources.given(add, seen).when(seen).then_nothing()


def test_extras_in_a_different_order_are_the_same_extras() -> None:
    add = ConfigureSource("m", "remote", "https://m")
    first = UpdateSourceExtras("m", {"tags": [{"name": "a"}, {"name": "b"}], "latest": ["x"]})
    shuffled = UpdateSourceExtras("m", {"tags": [{"name": "b"}, {"name": "a"}], "latest": ["x"]})
    sources.given(add).when(first).then(ExtrasUpdated)
    sources.given(add, first).when(shuffled).then_nothing()


def test_commands_for_a_removed_source_are_refused() -> None:
    given = sources.given(ConfigureSource("m", "remote", "https://m"), RemoveSource("m"))
    given.when(ObserveCatalog("m", "h", "v", 1)).then_rejected("unknown source 'm'")


def test_a_feed_cursor_never_moves_backwards() -> None:
    # The replaced system reset its cursor to 0 when every change of a batch failed.
    cursors.when(ConsumeFeed("chart-repo", 40)).then(FeedConsumed)
    at_40 = cursors.given(ConsumeFeed("chart-repo", 40))
    at_40.when(ConsumeFeed("chart-repo", 0)).then_nothing()
    at_40.when(ConsumeFeed("chart-repo", 40)).then_nothing()
    state = cursors.given(ConsumeFeed("chart-repo", 40), ConsumeFeed("chart-repo", 41)).state
    assert state is not None and state.position == 41
