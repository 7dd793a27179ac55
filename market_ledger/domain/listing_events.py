"""The events of a Listing (see :mod:`market_ledger.domain.listing` for its rules)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from market_ledger.domain.events import LedgerEvent


@dataclass(frozen=True)
class ListingEvent(LedgerEvent):
    pass


@dataclass(frozen=True)
class Offered(ListingEvent):
    """A source offered this version and content to the user; it waits to be rendered.

    The content itself is recorded once for every user, by its digest (ManifestRecorded).
    """

    TOPIC = "listing.Offered.v1"
    HISTORY_NAME = "offered"
    user: str
    source: str
    app_id: str
    name: str
    app_version: str
    digest: str
    labels: list[str]


@dataclass(frozen=True)
class Rendered(ListingEvent):
    """The pending version is rendered and becomes the latest.

    Version 2 names the version it replaces, so whether an app is newly ready is read from
    the event alone. A version 1 event, stored before, did not record it and is read as
    replacing nothing; a reader that needs to know finds the previous render in the listing's
    history (the notifier does).
    """

    TOPIC = "listing.Rendered.v2"
    FORMER_TOPICS = ("listing.Rendered.v1",)
    HISTORY_NAME = "rendered"
    class_version: ClassVar[int] = 2
    app_version: str
    digest: str
    #: what the renderer produced, as canonical JSON text (see market_ledger.domain.rendering)
    rendered: str
    #: image name -> digest of its info, to recognise image updates that change nothing
    images: dict[str, str]
    #: the latest version before this render; None when none was rendered before, or when
    #: the event was stored as version 1, which did not say
    replaces: str | None

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["replaces"] = None


@dataclass(frozen=True)
class RenderFailed(ListingEvent):
    TOPIC = "listing.RenderFailed.v1"
    HISTORY_NAME = "render_failed"
    app_version: str
    digest: str
    step: str
    reason: str
    attempt: int
    retry_at: datetime | None


@dataclass(frozen=True)
class Parked(ListingEvent):
    """Retries are exhausted: nothing renders this version until an operator retries it."""

    TOPIC = "listing.Parked.v1"
    HISTORY_NAME = "parked"
    app_version: str
    attempts: int


@dataclass(frozen=True)
class RetryRequested(ListingEvent):
    """A parked render is restored to pending, its attempts counted from zero."""

    TOPIC = "listing.RetryRequested.v1"
    HISTORY_NAME = "retry_requested"
    app_version: str
    requested_by: str


@dataclass(frozen=True)
class Delisted(ListingEvent):
    TOPIC = "listing.Delisted.v1"
    HISTORY_NAME = "delisted"
    reason: str


@dataclass(frozen=True)
class Relisted(ListingEvent):
    TOPIC = "listing.Relisted.v1"
    HISTORY_NAME = "relisted"


@dataclass(frozen=True)
class LabelsChanged(ListingEvent):
    TOPIC = "listing.LabelsChanged.v1"
    HISTORY_NAME = "labels_changed"
    labels: list[str]


@dataclass(frozen=True)
class ImageInfoUpdated(ListingEvent):
    TOPIC = "listing.ImageInfoUpdated.v1"
    HISTORY_NAME = "image_info_updated"
    image_name: str
    info: dict[str, Any]


@dataclass(frozen=True)
class Withdrawn(ListingEvent):
    """The listing's source or user was removed."""

    TOPIC = "listing.Withdrawn.v1"
    HISTORY_NAME = "withdrawn"
    reason: str


AnyListingEvent = (
    Offered
    | Rendered
    | RenderFailed
    | Parked
    | RetryRequested
    | Delisted
    | Relisted
    | LabelsChanged
    | ImageInfoUpdated
    | Withdrawn
)
