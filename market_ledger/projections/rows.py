"""How each event changes a view row: pure functions ``(row, event, position) -> row``.

Rows are plain dicts keyed by column name, so a batch writes them with one executemany and
time travel can apply the very same functions to rows held in memory.
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Callable, Mapping
from typing import Any
from uuid import UUID

import orjson

from market_ledger.domain import (
    feed_cursor,
    installation,
    listing,
    manifest_record,
    market_source,
    user,
)
from market_ledger.domain.canonical import format_instant, parse_instant

Row = dict[str, Any]


def dumps(value: Any) -> str:
    """Sorted-key JSON text: equal content, equal text, whichever process wrote it."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def loads(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


#: the listing columns :func:`listing_state` reads: the lifecycle, without what only views show
LISTING_STATE_COLUMNS = (
    "listing_id",
    "user_name",
    "source",
    "app_id",
    "name",
    "offered_version",
    "offered_digest",
    "labels",
    "status",
    "pending_version",
    "pending_digest",
    "latest_version",
    "latest_digest",
    "attempts",
    "retry_at",
    "delisted",
    "withdrawn",
)


def listing_state(row: Row) -> listing.ListingState:
    """The listing as its aggregate knows it, read back from its view row.

    The row keeps neither the stream's version nor the images' digests (``version`` is 0 and
    ``image_digests`` empty): such a state says where the listing is in its life, to ask the
    domain what a command would change; the handler decides each command on the stream itself.
    """
    retry_at = row["retry_at"]
    return listing.ListingState(
        id=UUID(hex=row["listing_id"]),
        version=0,
        user=row["user_name"],
        source=row["source"],
        app_id=row["app_id"],
        name=row["name"],
        offered_version=row["offered_version"],
        offered_digest=row["offered_digest"],
        labels=tuple(loads(row["labels"])),
        status=listing.ListingStatus(row["status"]),
        pending_version=row["pending_version"],
        pending_digest=row["pending_digest"],
        latest_version=row["latest_version"],
        latest_digest=row["latest_digest"],
        attempts=row["attempts"],
        retry_at=parse_instant(retry_at) if retry_at else None,
        delisted=bool(row["delisted"]),
        withdrawn=bool(row["withdrawn"]),
    )


class _LastStates:
    """The state each listing row was last made from, by listing id.

    A rebuild applies several events to most listings in a row; reading the state back from
    the row's columns at each of them is most of the cost of a listing event. A remembered
    state is used only for a row whose lifecycle columns are exactly the ones that state
    wrote, so it is the state :func:`listing_state` would read (apart from the stream's
    version and the images' digests, which no column depends on), whichever store the row
    comes from.
    """

    LIMIT = 10_000

    def __init__(self) -> None:
        self._states: dict[str, tuple[tuple[Any, ...], listing.ListingState]] = {}

    def of(self, row: Row) -> listing.ListingState:
        known = self._states.get(row["listing_id"])
        if known is not None and known[0] == _lifecycle(row):
            return known[1]
        return listing_state(row)

    def remember(self, row: Row, state: listing.ListingState) -> None:
        if len(self._states) >= self.LIMIT:
            self._states.clear()
        self._states[row["listing_id"]] = (_lifecycle(row), state)


#: a row's lifecycle columns, as one tuple
_lifecycle: Callable[[Row], tuple[Any, ...]] = operator.itemgetter(*LISTING_STATE_COLUMNS)


_LAST_STATES = _LastStates()


def listing_row(row: Row | None, event: listing.AnyListingEvent, position: int) -> Row:
    """The domain's own ``evolve`` says the listing's life; this adds what only the views show
    (the rendered entry, why it failed or was delisted, when it last changed)."""
    if row is None and not isinstance(event, listing.Offered):
        raise ValueError(f"{type(event).__name__} at {position} for a listing never offered")
    state = listing.evolve(_LAST_STATES.of(row) if row else None, event)
    row = dict(row) if row else _new_listing_row(state)
    row.update(
        name=state.name,
        offered_version=state.offered_version,
        offered_digest=state.offered_digest,
        labels=dumps(list(state.labels)),
        status=state.status.value,
        pending_version=state.pending_version,
        pending_digest=state.pending_digest,
        latest_version=state.latest_version,
        latest_digest=state.latest_digest,
        attempts=state.attempts,
        retry_at=format_instant(state.retry_at) if state.retry_at else None,
        delisted=state.delisted,
        withdrawn=state.withdrawn,
        updated_at=format_instant(event.timestamp),
        position=position,
    )
    _show(row, event)
    _LAST_STATES.remember(row, state)
    return row


def _new_listing_row(state: listing.ListingState) -> Row:
    return {
        "listing_id": state.id.hex,
        "user_name": state.user,
        "source": state.source,
        "app_id": state.app_id,
        "delist_reason": None,
        "failure_step": None,
        "failure_reason": None,
        "rendered": None,
        "rendered_digest": None,
    }


def _show(row: Row, event: listing.ListingEvent) -> None:
    """The view-only columns an event changes: the rendered entry and the reasons."""
    if isinstance(event, listing.Offered | listing.Rendered):
        row.update(failure_step=None, failure_reason=None)
    if isinstance(event, listing.Rendered):
        row.update(rendered=event.rendered, rendered_digest=text_digest(event.rendered))
    elif isinstance(event, listing.RenderFailed):
        row.update(failure_step=event.step, failure_reason=event.reason)
    elif isinstance(event, listing.Delisted):
        row.update(delist_reason=event.reason)
    elif isinstance(event, listing.Relisted):
        row.update(delist_reason=None)
    elif isinstance(event, listing.ImageInfoUpdated):
        rendered = dumps(
            patch_image_info(loads(row["rendered"]) or {}, event.image_name, event.info)
        )
        row.update(rendered=rendered, rendered_digest=text_digest(rendered))


def patch_image_info(rendered: dict[str, Any], image_name: str, info: Mapping[str, Any]) -> Any:
    """The rendered entry with one image's info replaced (``app_info.image_analysis.images``)."""
    images = rendered.get("app_info", {}).get("image_analysis", {}).get("images")
    if isinstance(images, dict) and image_name in images:
        images[image_name] = dict(info)
    return rendered


def installation_row(row: Row | None, event: installation.InstallationEvent, position: int) -> Row:
    if isinstance(event, installation.StateObserved):
        return {
            "installation_id": event.originator_id.hex,
            "user_name": event.user,
            "name": event.name,
            "source": event.source,
            "state": event.state,
            "op_type": event.op_type,
            "progress": event.progress,
            "app_version": event.app_version,
            "raw_app_name": event.raw_app_name,
            "title": event.title,
            "entrances": dumps(event.entrances),
            "shared_entrances": dumps(event.shared_entrances),
            "event_id": event.event_id,
            "observed_at": format_instant(event.observed_at),
            "origin": event.origin,
            "removed": False,
            "position": position,
        }
    if isinstance(event, installation.StateRefused):
        # kept in history only; refused before anything was observed, it is an installation
        # of nothing (removed), as in the aggregate
        return row or _refused_installation_row(event, position)
    if row is None:
        raise ValueError(f"{type(event).__name__} at {position} for an app never observed")
    if isinstance(event, installation.StateIgnored):
        return row  # kept in history only
    if isinstance(event, installation.InstallationRemoved):
        return {**row, "removed": True, "origin": event.origin, "position": position}
    raise TypeError(f"not an installation event: {event!r}")


def _refused_installation_row(event: installation.StateRefused, position: int) -> Row:
    return {
        "installation_id": event.originator_id.hex,
        "user_name": event.user,
        "name": event.name,
        "source": event.source,
        "state": "",
        "op_type": "",
        "progress": "",
        "app_version": "",
        "raw_app_name": "",
        "title": "",
        "entrances": dumps([]),
        "shared_entrances": dumps([]),
        "event_id": "",
        "observed_at": format_instant(installation.NEVER),
        "origin": event.origin,
        "removed": True,
        "position": position,
    }


def user_row(row: Row | None, event: user.UserEvent, position: int) -> Row:
    if isinstance(event, user.UserRegistered):
        return {
            "user_name": event.name,
            "role": event.role,
            "zone": event.zone,
            "registered": True,
            "hash": row["hash"] if row else "",
            "position": position,
        }
    if row is None:
        raise ValueError(f"{type(event).__name__} at {position} for a user never registered")
    if isinstance(event, user.UserRemoved):
        return {**row, "registered": False, "position": position}
    if isinstance(event, user.UserMarkedDirty):
        return {**row, "position": position}
    raise TypeError(f"not a user event: {event!r}")


def source_row(row: Row | None, event: market_source.SourceEvent, position: int) -> Row:
    if isinstance(event, market_source.SourceConfigured):
        base = row or {
            "source_id": event.source_id,
            "remote_hash": "",
            "catalog_version": "",
            "app_count": 0,
            "extras": dumps({}),
            "extras_digest": "",
        }
        return {
            **base,
            "source_type": event.source_type,
            "base_url": event.base_url,
            "priority": event.priority,
            "active": event.active,
            "removed": False,
            "position": position,
        }
    if row is None:
        raise ValueError(f"{type(event).__name__} at {position} for a source never configured")
    if isinstance(event, market_source.SourceRemoved):
        return {
            **row,
            "removed": True,
            "remote_hash": "",
            "extras": dumps({}),
            "extras_digest": "",
            "position": position,
        }
    if isinstance(event, market_source.CatalogObserved):
        return {
            **row,
            "remote_hash": event.remote_hash,
            "catalog_version": event.catalog_version,
            "app_count": event.app_count,
            "position": position,
        }
    if isinstance(event, market_source.ExtrasUpdated):
        return {
            **row,
            "extras": dumps(event.extras),
            "extras_digest": event.digest,
            "position": position,
        }
    raise TypeError(f"not a market source event: {event!r}")


def manifest_row(event: manifest_record.ManifestEvent) -> Row:
    if not isinstance(event, manifest_record.ManifestRecorded):
        raise TypeError(f"not a manifest event: {event!r}")
    return {"digest": event.digest, "app_id": event.app_id, "content": event.content}


def feed_row(event: feed_cursor.FeedEvent) -> Row:
    if not isinstance(event, feed_cursor.FeedConsumed):
        raise TypeError(f"not a feed cursor event: {event!r}")
    return {"feed": event.feed, "position": event.up_to_id}
