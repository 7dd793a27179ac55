"""Given/when/then for installations: ordering, duplicates and removals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from market_ledger.domain.decider import DecisionContext
from market_ledger.domain.installation import (
    INSTALLATION,
    InstallationRemoved,
    InstallationState,
    ObserveInstallationState,
    RemoveInstallation,
    StateIgnored,
    StateObserved,
)
from tests.support.decider import DeciderSpec

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
CONTEXT = DecisionContext(at=T0 + timedelta(hours=1))
installations: DeciderSpec[InstallationState] = DeciderSpec(INSTALLATION, CONTEXT)


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


def test_a_newer_state_is_applied() -> None:
    given = installations.given(observe("installing", 1, "e1"))
    after = given.when(observe("running", 2, "e2")).then(StateObserved).state
    assert after is not None and after.state == "running"


def test_an_older_state_is_recorded_as_ignored_and_never_applied() -> None:
    # The replaced system's timestamp guard rarely parsed, so a late "installing" could
    # overwrite "running".
    given = installations.given(observe("running", 5, "e2"))
    then = given.when(observe("installing", 1, "e1")).then(StateIgnored)
    assert then.events[0].newer_than == T0 + timedelta(seconds=5)
    after = then.state
    assert after is not None and after.state == "running"


def test_the_same_event_id_again_produces_nothing() -> None:
    given = installations.given(observe("running", 5, "e2"))
    given.when(observe("running", 5, "e2")).then_nothing()
    given.when(observe("installing", 1, "e2")).then_nothing()


def test_a_correction_that_agrees_with_the_known_state_produces_nothing() -> None:
    given = installations.given(observe("running", 5, "e2"))
    given.when(observe("running", 9, "", origin="status-correction")).then_nothing()


def test_a_progress_change_is_recorded() -> None:
    given = installations.given(observe("downloading", 1, "e1", progress="10"))
    then = given.when(observe("downloading", 2, "e2", progress="40")).then_accepted()
    assert len(then.events) == 1


def test_removal_is_recorded_once_and_not_over_a_newer_observation() -> None:
    given = installations.given(observe("running", 5, "e2"))
    remove = RemoveInstallation("alice", "firefox", T0 + timedelta(seconds=6))
    then = given.when(remove).then(InstallationRemoved)
    removed = then.state
    assert removed is not None and removed.removed
    then.after.when(remove).then_nothing()
    late_remove = RemoveInstallation("alice", "firefox", T0 + timedelta(seconds=1))
    given.when(late_remove).then_nothing()


def test_an_app_installed_again_after_removal_is_observed_again() -> None:
    given = installations.given(
        observe("running", 5, "e2"),
        RemoveInstallation("alice", "firefox", T0 + timedelta(seconds=6)),
    )
    then = given.when(observe("running", 5, "", origin="status-correction")).then_accepted()
    assert then.events == () or isinstance(then.events[0], StateIgnored)
    given.when(observe("installing", 7, "e3")).then(StateObserved)
