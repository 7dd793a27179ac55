"""Given/when/then for the Listing aggregate's rules (pure decide/evolve, no store)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from market_ledger.domain.decider import Command, CommandRejected, DecisionContext
from market_ledger.domain.listing import (
    LISTING,
    DelistApp,
    Delisted,
    LabelsChanged,
    ListingState,
    ListingStatus,
    Offered,
    Parked,
    Relisted,
    Rendered,
    RenderFailed,
    RetryParked,
    RetryRequested,
    UpdateImageInfo,
    WithdrawListing,
    Withdrawn,
)
from market_ledger.domain.retry_policy import RetryPolicy
from tests.support.builders import SOURCE, USER, fail, offer, render

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
CONTEXT = DecisionContext(at=NOW, retry_policy=RetryPolicy(2.0, 60.0, 3))


def given(*commands: Command) -> ListingState | None:
    """The state after deciding and applying ``commands`` in order."""
    state: ListingState | None = None
    for command in commands:
        state = LISTING.fold(state, LISTING.decide(command, state, CONTEXT))
    return state


def when(state: ListingState | None, command: Command) -> list[Any]:
    return list(LISTING.decide(command, state, CONTEXT))


def kinds(events: list[Any]) -> list[type]:
    return [type(e) for e in events]


def test_a_first_offer_is_pending_until_rendered() -> None:
    events = when(None, offer(version="1.0.0"))
    assert kinds(events) == [Offered]
    state = LISTING.fold(None, events)
    assert state is not None
    assert (state.status, state.pending_version, state.latest_version) == (
        ListingStatus.PENDING,
        "1.0.0",
        None,
    )


def test_offering_the_same_version_and_content_again_produces_nothing() -> None:
    state = given(offer(version="1.0.0"))
    assert when(state, offer(version="1.0.0")) == []


def test_a_metadata_change_without_version_bump_is_an_offer() -> None:
    # The replaced system skipped any app whose version was unchanged, so a new description
    # or price never reached the catalog.
    first = offer(version="1.0.0", description={"en-US": "old"})
    state = given(first, render(first))
    events = when(state, offer(version="1.0.0", description={"en-US": "new"}))
    assert kinds(events) == [Offered]
    after = LISTING.fold(state, events)
    assert after is not None
    assert (after.status, after.pending_version, after.latest_version) == (
        ListingStatus.PENDING,
        "1.0.0",
        "1.0.0",
    )


def test_a_labels_change_alone_is_recorded_without_a_new_render() -> None:
    first = offer(version="1.0.0")
    state = given(first, render(first))
    events = when(state, offer(version="1.0.0", appLabels=["featured"]))
    assert kinds(events) == [LabelsChanged]
    after = LISTING.fold(state, events)
    assert after is not None and after.status is ListingStatus.LATEST


def test_a_stale_render_never_overwrites_a_newer_offer() -> None:
    # The replaced system let an older render result delete a newer pending version.
    old, new = offer(version="1.0.0"), offer(version="2.0.0")
    state = given(old, new)
    assert when(state, render(old)) == []
    assert when(state, fail(old)) == []
    assert state is not None and state.pending_version == "2.0.0"


def test_a_render_of_the_pending_version_makes_it_the_latest() -> None:
    first = offer(version="1.0.0")
    events = when(given(first), render(first))
    assert kinds(events) == [Rendered]
    state = LISTING.fold(given(first), events)
    assert state is not None
    assert (state.status, state.latest_version, state.pending_version) == (
        ListingStatus.LATEST,
        "1.0.0",
        None,
    )


def test_a_failed_render_keeps_the_previous_latest_visible_and_schedules_a_retry() -> None:
    v1, v2 = offer(version="1.0.0"), offer(version="2.0.0")
    state = given(v1, render(v1), v2)
    events = when(state, fail(v2))
    assert kinds(events) == [RenderFailed]
    failed = events[0]
    assert failed.attempt == 1
    assert NOW + timedelta(seconds=1) <= failed.retry_at <= NOW + timedelta(seconds=2)
    after = LISTING.fold(state, events)
    assert after is not None
    assert (after.status, after.latest_version, after.pending_version) == (
        ListingStatus.FAILED,
        "1.0.0",
        "2.0.0",
    )


def test_retries_back_off_exponentially_and_park_after_the_last_attempt() -> None:
    v1 = offer()
    state = given(v1)
    delays = []
    for _ in range(2):
        events = when(state, fail(v1))
        delays.append(events[0].retry_at - NOW)
        state = LISTING.fold(state, events)
    assert delays[1] > delays[0]
    events = when(state, fail(v1))
    assert kinds(events) == [RenderFailed, Parked]
    assert events[0].retry_at is None and events[1].attempts == 3
    parked = LISTING.fold(state, events)
    assert parked is not None and parked.status is ListingStatus.PARKED


def test_an_operator_retry_restores_a_parked_render_to_pending() -> None:
    v1 = offer()
    state = given(v1, fail(v1), fail(v1), fail(v1))
    events = when(state, RetryParked(USER, SOURCE, "firefox"))
    assert kinds(events) == [RetryRequested]
    after = LISTING.fold(state, events)
    assert after is not None and (after.status, after.attempts) == (ListingStatus.PENDING, 0)


def test_retrying_what_is_not_parked_is_refused_with_the_reason() -> None:
    state = given(offer())
    with pytest.raises(CommandRejected, match="is not parked"):
        when(state, RetryParked(USER, SOURCE, "firefox"))
    with pytest.raises(CommandRejected, match="no listing"):
        when(None, RetryParked(USER, SOURCE, "firefox"))


def test_a_new_offer_after_parking_starts_over() -> None:
    v1 = offer(version="1.0.0")
    state = given(v1, fail(v1), fail(v1), fail(v1), offer(version="1.0.1"))
    assert state is not None
    assert (state.status, state.attempts, state.pending_version) == (
        ListingStatus.PENDING,
        0,
        "1.0.1",
    )


def test_a_suspend_label_delists_and_an_unlabelled_offer_relists() -> None:
    v1 = offer()
    state = given(v1, render(v1))
    events = when(state, offer(appLabels=["Suspend"]))
    assert kinds(events) == [LabelsChanged, Delisted]
    assert events[1].reason == "labelled suspend"
    state = LISTING.fold(state, events)
    assert kinds(when(state, offer())) == [Relisted, LabelsChanged]


def test_an_app_missing_from_the_catalog_is_delisted_once() -> None:
    v1 = offer()
    state = given(v1, render(v1))
    delist = DelistApp(USER, SOURCE, "firefox", "missing from catalog")
    events = when(state, delist)
    assert kinds(events) == [Delisted]
    assert when(LISTING.fold(state, events), delist) == []


def test_offering_the_rendered_version_again_needs_no_new_render() -> None:
    v1, v2 = offer(version="1.0.0"), offer(version="2.0.0")
    state = given(v1, render(v1), v2, v1)
    assert state is not None
    assert (state.status, state.pending_version, state.latest_version) == (
        ListingStatus.LATEST,
        None,
        "1.0.0",
    )


def test_a_withdrawn_listing_ignores_late_results_and_reopens_on_a_new_offer() -> None:
    v1 = offer()
    state = given(v1, WithdrawListing(USER, SOURCE, "firefox", "source removed"))
    assert state is not None and state.withdrawn
    assert when(state, render(v1)) == []
    events = when(state, v1)
    assert kinds(events) == [Offered]
    reopened = LISTING.fold(state, events)
    assert reopened is not None and not reopened.withdrawn


def test_withdrawal_is_recorded() -> None:
    state = given(offer())
    assert kinds(when(state, WithdrawListing(USER, SOURCE, "firefox", "user removed"))) == [
        Withdrawn
    ]


def test_image_info_updates_only_known_images_and_only_when_changed() -> None:
    v1 = offer()
    rendered = {"app_info": {"image_analysis": {"images": {"nginx:1": {"status": "ok"}}}}}
    state = given(v1, render(v1, **rendered))
    same = UpdateImageInfo(USER, SOURCE, "firefox", "nginx:1", {"status": "ok"})
    changed = UpdateImageInfo(USER, SOURCE, "firefox", "nginx:1", {"status": "downloaded"})
    unknown = UpdateImageInfo(USER, SOURCE, "firefox", "redis:7", {"status": "ok"})
    assert when(state, same) == []
    assert when(state, unknown) == []
    assert len(when(state, changed)) == 1
