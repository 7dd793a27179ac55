"""Given/when/then for the Listing aggregate's rules (pure decide/evolve, no store)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from market_ledger.domain.decider import DecisionContext
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
from tests.support.decider import DeciderSpec

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
CONTEXT = DecisionContext(at=NOW, retry_policy=RetryPolicy(2.0, 60.0, 3))
listings: DeciderSpec[ListingState] = DeciderSpec(LISTING, CONTEXT)


def test_a_first_offer_is_pending_until_rendered() -> None:
    state = listings.when(offer(version="1.0.0")).then(Offered).state
    assert state is not None
    assert (state.status, state.pending_version, state.latest_version) == (
        ListingStatus.PENDING,
        "1.0.0",
        None,
    )


def test_offering_the_same_version_and_content_again_produces_nothing() -> None:
    listings.given(offer(version="1.0.0")).when(offer(version="1.0.0")).then_nothing()


def test_a_metadata_change_without_version_bump_is_an_offer() -> None:
    # The replaced system skipped any app whose version was unchanged, so a new description
    # or price never reached the catalog.
    first = offer(version="1.0.0", description={"en-US": "old"})
    given = listings.given(first, render(first))
    then = given.when(offer(version="1.0.0", description={"en-US": "new"})).then(Offered)
    after = then.state
    assert after is not None
    assert (after.status, after.pending_version, after.latest_version) == (
        ListingStatus.PENDING,
        "1.0.0",
        "1.0.0",
    )


def test_a_labels_change_alone_is_recorded_without_a_new_render() -> None:
    first = offer(version="1.0.0")
    given = listings.given(first, render(first))
    after = given.when(offer(version="1.0.0", appLabels=["featured"])).then(LabelsChanged).state
    assert after is not None and after.status is ListingStatus.LATEST


def test_a_stale_render_never_overwrites_a_newer_offer() -> None:
    # The replaced system let an older render result delete a newer pending version.
    old, new = offer(version="1.0.0"), offer(version="2.0.0")
    given = listings.given(old, new)
    given.when(render(old)).then_nothing()
    given.when(fail(old)).then_nothing()
    assert given.state is not None and given.state.pending_version == "2.0.0"


def test_a_render_of_the_pending_version_makes_it_the_latest() -> None:
    first = offer(version="1.0.0")
    state = listings.given(first).when(render(first)).then(Rendered).state
    assert state is not None
    assert (state.status, state.latest_version, state.pending_version) == (
        ListingStatus.LATEST,
        "1.0.0",
        None,
    )


def test_a_failed_render_keeps_the_previous_latest_visible_and_schedules_a_retry() -> None:
    v1, v2 = offer(version="1.0.0"), offer(version="2.0.0")
    then = listings.given(v1, render(v1), v2).when(fail(v2)).then(RenderFailed)
    failed = then.events[0]
    assert failed.attempt == 1
    assert NOW + timedelta(seconds=1) <= failed.retry_at <= NOW + timedelta(seconds=2)
    after = then.state
    assert after is not None
    assert (after.status, after.latest_version, after.pending_version) == (
        ListingStatus.FAILED,
        "1.0.0",
        "2.0.0",
    )


def test_retries_back_off_exponentially_and_park_after_the_last_attempt() -> None:
    v1 = offer()
    given = listings.given(v1)
    delays = []
    for _ in range(2):
        then = given.when(fail(v1)).then_accepted()
        delays.append(then.events[0].retry_at - NOW)
        given = then.after
    assert delays[1] > delays[0]
    then = given.when(fail(v1)).then(RenderFailed, Parked)
    assert then.events[0].retry_at is None and then.events[1].attempts == 3
    parked = then.state
    assert parked is not None and parked.status is ListingStatus.PARKED


def test_an_operator_retry_restores_a_parked_render_to_pending() -> None:
    v1 = offer()
    given = listings.given(v1, fail(v1), fail(v1), fail(v1))
    after = given.when(RetryParked(USER, SOURCE, "firefox")).then(RetryRequested).state
    assert after is not None and (after.status, after.attempts) == (ListingStatus.PENDING, 0)


def test_retrying_what_is_not_parked_is_refused_with_the_reason() -> None:
    listings.given(offer()).when(RetryParked(USER, SOURCE, "firefox")).then_rejected(
        "is not parked"
    )
    listings.when(RetryParked(USER, SOURCE, "firefox")).then_rejected("no listing")


def test_a_new_offer_after_parking_starts_over() -> None:
    v1 = offer(version="1.0.0")
    state = listings.given(v1, fail(v1), fail(v1), fail(v1), offer(version="1.0.1")).state
    assert state is not None
    assert (state.status, state.attempts, state.pending_version) == (
        ListingStatus.PENDING,
        0,
        "1.0.1",
    )


def test_a_suspend_label_delists_and_an_unlabelled_offer_relists() -> None:
    v1 = offer()
    given = listings.given(v1, render(v1))
    then = given.when(offer(appLabels=["Suspend"])).then(LabelsChanged, Delisted)
    assert then.events[1].reason == "labelled suspend"
    then.after.when(offer()).then(Relisted, LabelsChanged)


def test_an_app_missing_from_the_catalog_is_delisted_once() -> None:
    v1 = offer()
    given = listings.given(v1, render(v1))
    delist = DelistApp(USER, SOURCE, "firefox", "missing from catalog")
    then = given.when(delist).then(Delisted)
    then.after.when(delist).then_nothing()


def test_offering_the_rendered_version_again_needs_no_new_render() -> None:
    v1, v2 = offer(version="1.0.0"), offer(version="2.0.0")
    state = listings.given(v1, render(v1), v2, v1).state
    assert state is not None
    assert (state.status, state.pending_version, state.latest_version) == (
        ListingStatus.LATEST,
        None,
        "1.0.0",
    )


def test_a_withdrawn_listing_ignores_late_results_and_reopens_on_a_new_offer() -> None:
    v1 = offer()
    given = listings.given(v1, WithdrawListing(USER, SOURCE, "firefox", "source removed"))
    assert given.state is not None and given.state.withdrawn
    given.when(render(v1)).then_nothing()
    reopened = given.when(v1).then(Offered).state
    assert reopened is not None and not reopened.withdrawn


def test_withdrawal_is_recorded() -> None:
    given = listings.given(offer())
    given.when(WithdrawListing(USER, SOURCE, "firefox", "user removed")).then(Withdrawn)


def test_image_info_updates_only_known_images_and_only_when_changed() -> None:
    v1 = offer()
    rendered = {"app_info": {"image_analysis": {"images": {"nginx:1": {"status": "ok"}}}}}
    given = listings.given(v1, render(v1, **rendered))
    same = UpdateImageInfo(USER, SOURCE, "firefox", "nginx:1", {"status": "ok"})
    changed = UpdateImageInfo(USER, SOURCE, "firefox", "nginx:1", {"status": "downloaded"})
    unknown = UpdateImageInfo(USER, SOURCE, "firefox", "redis:7", {"status": "ok"})
    given.when(same).then_nothing()
    given.when(unknown).then_nothing()
    assert len(given.when(changed).then_accepted().events) == 1
