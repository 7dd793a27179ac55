"""What phase 1 sends for a catalog: exactly the offers and delistings the domain acts on."""

from __future__ import annotations

from datetime import UTC, datetime

from market_ledger.domain import listing
from market_ledger.domain.decider import Command, DecisionContext
from market_ledger.domain.listing import DelistApp, ListingState, OfferApp
from market_ledger.domain.manifest import Manifest
from market_ledger.service.sync_plan import MISSING, plan_catalog
from tests.support.builders import SOURCE, USER, manifest

AT = datetime(2024, 5, 1, tzinfo=UTC)


def stored(*commands: Command) -> ListingState:
    """The listing after ``commands``, as the domain decides and folds them."""
    state: ListingState | None = None
    for command in commands:
        assert isinstance(command, listing.ListingCommand)
        events = listing.decide(command, state, DecisionContext(at=AT))
        state = listing.LISTING.fold(state, events)
    assert state is not None
    return state


def plan(entries: list[Manifest], listings: dict[str, ListingState]) -> list[Command]:
    return plan_catalog(
        SOURCE,
        {m.app_id: m for m in entries},
        [USER],
        {(USER, app_id): state for app_id, state in listings.items()},
    )


def test_an_unchanged_entry_labelled_for_delisting_is_sent_when_the_listing_is_not_delisted() -> (
    None
):
    # given a listing offered with a delisting label that was never delisted
    labelled = manifest(appLabels=["suspend"])
    never_delisted = listing.evolve(
        None,
        listing.Offered(
            originator_id=OfferApp(USER, SOURCE, labelled).aggregate_id,
            originator_version=1,
            timestamp=AT,
            user=USER,
            source=SOURCE,
            app_id=labelled.app_id,
            name=labelled.name,
            app_version=labelled.version,
            digest=labelled.digest,
            labels=list(labelled.labels),
        ),
    )
    # when the source offers the very same content again
    commands = plan([labelled], {labelled.app_id: never_delisted})
    # then the offer is sent, so that the domain delists it
    assert commands == [OfferApp(USER, SOURCE, labelled)]


def test_an_entry_offered_again_unchanged_sends_nothing() -> None:
    # given a listing of one entry
    entry = manifest()
    current = stored(OfferApp(USER, SOURCE, entry))
    # when the source offers the same content
    # then nothing is sent
    assert plan([entry], {entry.app_id: current}) == []


def test_a_new_version_or_new_labels_are_offered() -> None:
    # given a listing of version 1
    current = stored(OfferApp(USER, SOURCE, manifest()))
    # when version 2 arrives, or the same version with other labels
    newer, relabelled = manifest(version="2.0.0"), manifest(appLabels=["new"])
    # then each is offered
    assert plan([newer], {newer.app_id: current}) == [OfferApp(USER, SOURCE, newer)]
    assert plan([relabelled], {newer.app_id: current}) == [OfferApp(USER, SOURCE, relabelled)]


def test_a_delisted_entry_back_without_its_label_is_offered_to_relist_it() -> None:
    # given a listing delisted by its label
    entry = manifest()
    current = stored(OfferApp(USER, SOURCE, manifest(appLabels=["suspend"])))
    assert current.delisted
    # when the entry comes back unlabelled
    # then it is offered
    assert plan([entry], {entry.app_id: current}) == [OfferApp(USER, SOURCE, entry)]


def test_an_entry_gone_from_the_catalog_is_delisted_once() -> None:
    # given one listing still listed and one already delisted
    kept = stored(OfferApp(USER, SOURCE, manifest("kept")))
    gone = stored(OfferApp(USER, SOURCE, manifest("gone")))
    delisted = stored(OfferApp(USER, SOURCE, manifest("old")), DelistApp(USER, SOURCE, "old"))
    # when neither is in the catalog any more
    commands = plan([], {"gone": gone, "kept": kept, "old": delisted})
    # then only the listed ones are delisted
    assert commands == [
        DelistApp(USER, SOURCE, "gone", MISSING),
        DelistApp(USER, SOURCE, "kept", MISSING),
    ]


def test_a_first_sync_offers_every_entry_to_every_user() -> None:
    # given no listing at all
    entries = [manifest("a"), manifest("b")]
    # when the catalog is planned for two users
    commands = plan_catalog(SOURCE, {m.app_id: m for m in entries}, ["u1", "u2"], {})
    # then every entry is offered to every user
    assert commands == [OfferApp(u, SOURCE, m) for u in ("u1", "u2") for m in entries]
