"""Listing: one app of one market source, as offered to one user.

Its life: offered at a version, rendered for the user (then it is the latest), or failed and
retried with backoff until parked; delisted when the source drops or suspends it; withdrawn
when the source or the user goes away. Its events: :mod:`market_ledger.domain.listing_events`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from functools import cached_property
from typing import Any, assert_never
from uuid import UUID

import attrs

from market_ledger.domain import identity
from market_ledger.domain.canonical import canonical_json, digest_of
from market_ledger.domain.decider import (
    Command,
    CommandRejected,
    Decider,
    DecisionContext,
    members,
)
from market_ledger.domain.events import Stamper
from market_ledger.domain.limits import printable
from market_ledger.domain.listing_events import (
    AnyListingEvent,
    Delisted,
    ImageInfoUpdated,
    LabelsChanged,
    ListingEvent,
    Offered,
    Parked,
    Relisted,
    Rendered,
    RenderFailed,
    RetryRequested,
    Withdrawn,
)
from market_ledger.domain.manifest import Manifest, is_delisting
from market_ledger.domain.manifest_record import RecordManifest

#: the events are read from here too, beside the rules that decide them
__all__ = [
    "AnyListingEvent",
    "Delisted",
    "ImageInfoUpdated",
    "LabelsChanged",
    "ListingEvent",
    "Offered",
    "Parked",
    "Relisted",
    "RenderFailed",
    "Rendered",
    "RetryRequested",
    "Withdrawn",
]


class ListingStatus(StrEnum):
    PENDING = "pending"  # offered, not yet rendered
    LATEST = "latest"  # the offered version is rendered
    FAILED = "failed"  # the newest offer failed and waits for its retry
    PARKED = "parked"  # retries exhausted; an operator may retry


# --- state -------------------------------------------------------------------------------------


@attrs.frozen
class ListingState:
    id: UUID
    version: int
    user: str
    source: str
    app_id: str
    name: str
    offered_version: str
    offered_digest: str
    labels: tuple[str, ...]
    status: ListingStatus
    pending_version: str | None = None
    pending_digest: str | None = None
    latest_version: str | None = None
    latest_digest: str | None = None
    attempts: int = 0
    retry_at: datetime | None = None
    delisted: bool = False
    withdrawn: bool = False
    image_digests: Mapping[str, str] = attrs.field(factory=dict)


def rendered_image_digests(rendered: Mapping[str, Any]) -> dict[str, str]:
    """Digests of the image infos in a rendered entry (``app_info.image_analysis.images``)."""
    app_info = rendered.get("app_info")
    analysis = app_info.get("image_analysis") if isinstance(app_info, Mapping) else None
    images = analysis.get("images") if isinstance(analysis, Mapping) else None
    if not isinstance(images, Mapping):
        return {}
    return {str(name): digest_of(info) for name, info in images.items()}


# --- commands --------------------------------------------------------------------------------


@attrs.frozen
class ListingCommandBase(Command):
    user: str
    source: str
    app_id: str

    @cached_property
    def aggregate_id(self) -> UUID:
        return identity.listing_id(self.user, self.source, self.app_id)


@attrs.frozen(init=False)
class OfferApp(ListingCommandBase):
    """A source offers this catalog entry to this user (new, changed, or the same again)."""

    manifest: Manifest

    def __init__(self, user: str, source: str, manifest: Manifest) -> None:
        self.__attrs_init__(user=user, source=source, app_id=manifest.app_id, manifest=manifest)

    def prerequisites(self) -> tuple[Command, ...]:
        return (RecordManifest(self.manifest),)


@attrs.frozen
class DelistApp(ListingCommandBase):
    reason: str = "missing from catalog"


@attrs.frozen
class RecordRender(ListingCommandBase):
    """The renderer produced this version; accepted only while it is the pending one."""

    version: str
    digest: str
    rendered: Mapping[str, Any]


@attrs.frozen
class RecordRenderFailure(ListingCommandBase):
    version: str
    digest: str
    step: str
    reason: str


@attrs.frozen
class RetryParked(ListingCommandBase):
    requested_by: str = "operator"


@attrs.frozen
class UpdateImageInfo(ListingCommandBase):
    image_name: str
    info: Mapping[str, Any]


@attrs.frozen
class WithdrawListing(ListingCommandBase):
    """The listing's source or user is gone."""

    reason: str


ListingCommand = (
    OfferApp
    | DelistApp
    | RecordRender
    | RecordRenderFailure
    | RetryParked
    | UpdateImageInfo
    | WithdrawListing
)


def evolve(state: ListingState | None, event: AnyListingEvent) -> ListingState:
    if isinstance(event, Offered):
        if state is None:
            return ListingState(
                id=event.originator_id,
                version=event.originator_version,
                user=event.user,
                source=event.source,
                app_id=event.app_id,
                name=event.name,
                offered_version=event.app_version,
                offered_digest=event.digest,
                labels=tuple(event.labels),
                status=ListingStatus.PENDING,
                pending_version=event.app_version,
                pending_digest=event.digest,
            )
        already_rendered = (event.app_version, event.digest) == (
            state.latest_version,
            state.latest_digest,
        )
        return attrs.evolve(
            state,
            version=event.originator_version,
            name=event.name,
            offered_version=event.app_version,
            offered_digest=event.digest,
            labels=tuple(event.labels),
            status=ListingStatus.LATEST if already_rendered else ListingStatus.PENDING,
            pending_version=None if already_rendered else event.app_version,
            pending_digest=None if already_rendered else event.digest,
            attempts=0,
            retry_at=None,
            withdrawn=False,
        )
    if state is None:
        raise ValueError(f"{type(event).__name__} before the listing was offered")
    version = event.originator_version
    if isinstance(event, Rendered):
        return attrs.evolve(
            state,
            version=version,
            status=ListingStatus.LATEST,
            pending_version=None,
            pending_digest=None,
            latest_version=event.app_version,
            latest_digest=event.digest,
            attempts=0,
            retry_at=None,
            image_digests=dict(event.images),
        )
    if isinstance(event, RenderFailed):
        return attrs.evolve(
            state,
            version=version,
            status=ListingStatus.FAILED,
            attempts=event.attempt,
            retry_at=event.retry_at,
        )
    if isinstance(event, Parked):
        return attrs.evolve(state, version=version, status=ListingStatus.PARKED, retry_at=None)
    if isinstance(event, RetryRequested):
        return attrs.evolve(state, version=version, status=ListingStatus.PENDING, attempts=0)
    if isinstance(event, Delisted):
        return attrs.evolve(state, version=version, delisted=True)
    if isinstance(event, Relisted):
        return attrs.evolve(state, version=version, delisted=False)
    if isinstance(event, LabelsChanged):
        return attrs.evolve(state, version=version, labels=tuple(event.labels))
    if isinstance(event, ImageInfoUpdated):
        digests = dict(state.image_digests)
        digests[event.image_name] = digest_of(event.info)
        return attrs.evolve(state, version=version, image_digests=digests)
    if isinstance(event, Withdrawn):
        return attrs.evolve(state, version=version, withdrawn=True)
    assert_never(event)


# --- decisions ---------------------------------------------------------------------------------


def decide(
    command: ListingCommand, state: ListingState | None, context: DecisionContext
) -> list[AnyListingEvent]:
    stamp = Stamper(command.aggregate_id, state.version if state else 0, context.at)
    if isinstance(command, OfferApp):
        return _offer(command, state, stamp)
    if state is None or state.withdrawn:
        if isinstance(command, RetryParked):
            raise CommandRejected(
                f"no listing of {command.app_id!r} in {command.source!r} for {command.user!r}"
            )
        return []  # a late result for a listing that is gone changes nothing
    if isinstance(command, RecordRender):
        if not _is_pending(state, command.version, command.digest):
            return []  # stale: a newer offer is never overwritten by an older render
        return [
            stamp(
                Rendered,
                app_version=command.version,
                digest=command.digest,
                rendered=canonical_json(command.rendered),
                images=rendered_image_digests(command.rendered),
                replaces=state.latest_version,
            )
        ]
    if isinstance(command, RecordRenderFailure):
        if not _is_pending(state, command.version, command.digest):
            return []
        attempt = state.attempts + 1
        policy = context.retry_policy
        parked = policy.exhausted(attempt)
        retry_at = None if parked else context.at + policy.delay(attempt, str(state.id))
        events: list[AnyListingEvent] = [
            stamp(
                RenderFailed,
                app_version=command.version,
                digest=command.digest,
                step=printable(command.step),
                reason=printable(command.reason),
                attempt=attempt,
                retry_at=retry_at,
            )
        ]
        if parked:
            events.append(stamp(Parked, app_version=command.version, attempts=attempt))
        return events
    if isinstance(command, RetryParked):
        if state.status is not ListingStatus.PARKED:
            raise CommandRejected(
                f"{command.app_id!r} in {command.source!r} for {command.user!r} is not parked "
                f"(it is {state.status.value})"
            )
        return [
            stamp(
                RetryRequested,
                app_version=state.pending_version or state.offered_version,
                requested_by=printable(command.requested_by),
            )
        ]
    if isinstance(command, DelistApp):
        return [] if state.delisted else [stamp(Delisted, reason=printable(command.reason))]
    if isinstance(command, UpdateImageInfo):
        if command.image_name not in state.image_digests:
            return []
        if state.image_digests[command.image_name] == digest_of(command.info):
            return []
        return [stamp(ImageInfoUpdated, image_name=command.image_name, info=dict(command.info))]
    if isinstance(command, WithdrawListing):
        return [stamp(Withdrawn, reason=printable(command.reason))]
    assert_never(command)


def _is_pending(state: ListingState, version: str, digest: str) -> bool:
    return (state.pending_version, state.pending_digest) == (version, digest)


def _offer(command: OfferApp, state: ListingState | None, stamp: Stamper) -> list[AnyListingEvent]:
    manifest = command.manifest
    events: list[AnyListingEvent] = []
    content_changed = (
        state is None
        or state.withdrawn
        or (manifest.version, manifest.digest) != (state.offered_version, state.offered_digest)
    )
    if state is not None and state.delisted and not manifest.delisting:
        events.append(stamp(Relisted))
    if content_changed:
        events.append(
            stamp(
                Offered,
                user=command.user,
                source=command.source,
                app_id=manifest.app_id,
                name=manifest.name,
                app_version=manifest.version,
                digest=manifest.digest,
                labels=list(manifest.labels),
            )
        )
    elif state is not None and tuple(manifest.labels) != state.labels:
        events.append(stamp(LabelsChanged, labels=list(manifest.labels)))
    if manifest.delisting and (state is None or not state.delisted):
        label = next(lbl for lbl in manifest.labels if is_delisting((lbl,)))
        events.append(stamp(Delisted, reason=f"labelled {label.strip().lower()}"))
    return events


LISTING: Decider[ListingState, ListingCommand, AnyListingEvent] = Decider(
    commands=members(ListingCommand), decide=decide, evolve=evolve
)
