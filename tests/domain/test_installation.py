"""Given/when/then for installations: ordering, duplicates and removals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from market_ledger.domain.decider import Command, DecisionContext
from market_ledger.domain.installation import (
    INSTALLATION,
    InstallationRemoved,
    InstallationState,
    ObserveInstallationState,
    RemoveInstallation,
    StateIgnored,
    StateObserved,
)

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
CONTEXT = DecisionContext(at=T0 + timedelta(hours=1))


def observe(
    state: str, seconds: float, event_id: str = "", **fields: Any
) -> ObserveInstallationState:
    return ObserveInstallationState(
        "alice",
        "firefox",
        state,
        T0 + timedelta(seconds=seconds),
        event_id=event_id,
        source="market.olares",
        **fields,
    )


def given(*commands: Command) -> InstallationState | None:
    state = None
    for command in commands:
        state = INSTALLATION.fold(state, INSTALLATION.decide(command, state, CONTEXT))
    return state


def when(state: InstallationState | None, command: Command) -> list[Any]:
    return list(INSTALLATION.decide(command, state, CONTEXT))


def test_a_newer_state_is_applied() -> None:
    state = given(observe("installing", 1, "e1"))
    events = when(state, observe("running", 2, "e2"))
    assert [type(e) for e in events] == [StateObserved]
    after = INSTALLATION.fold(state, events)
    assert after is not None and after.state == "running"


def test_an_older_state_is_recorded_as_ignored_and_never_applied() -> None:
    # The replaced system's timestamp guard rarely parsed, so a late "installing" could
    # overwrite "running".
    state = given(observe("running", 5, "e2"))
    events = when(state, observe("installing", 1, "e1"))
    assert [type(e) for e in events] == [StateIgnored]
    assert events[0].newer_than == T0 + timedelta(seconds=5)
    after = INSTALLATION.fold(state, events)
    assert after is not None and after.state == "running"


def test_the_same_event_id_again_produces_nothing() -> None:
    state = given(observe("running", 5, "e2"))
    assert when(state, observe("running", 5, "e2")) == []
    assert when(state, observe("installing", 1, "e2")) == []


def test_a_correction_that_agrees_with_the_known_state_produces_nothing() -> None:
    state = given(observe("running", 5, "e2"))
    assert when(state, observe("running", 9, "", origin="status-correction")) == []


def test_a_progress_change_is_recorded() -> None:
    state = given(observe("downloading", 1, "e1", progress="10"))
    assert len(when(state, observe("downloading", 2, "e2", progress="40"))) == 1


def test_removal_is_recorded_once_and_not_over_a_newer_observation() -> None:
    state = given(observe("running", 5, "e2"))
    remove = RemoveInstallation("alice", "firefox", T0 + timedelta(seconds=6))
    events = when(state, remove)
    assert [type(e) for e in events] == [InstallationRemoved]
    removed = INSTALLATION.fold(state, events)
    assert removed is not None and removed.removed
    assert when(removed, remove) == []
    late_remove = RemoveInstallation("alice", "firefox", T0 + timedelta(seconds=1))
    assert when(state, late_remove) == []


def test_an_app_installed_again_after_removal_is_observed_again() -> None:
    state = given(
        observe("running", 5, "e2"),
        RemoveInstallation("alice", "firefox", T0 + timedelta(seconds=6)),
    )
    events = when(state, observe("running", 5, "", origin="status-correction"))
    assert events == [] or isinstance(events[0], StateIgnored)
    events = when(state, observe("installing", 7, "e3"))
    assert [type(e) for e in events] == [StateObserved]
