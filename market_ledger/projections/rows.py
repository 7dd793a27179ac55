"""How each event changes a view row: pure functions ``(row, event, position) -> row``.

Rows are plain dicts keyed by column name, so a batch writes them with one executemany and
time travel can apply the very same functions to rows held in memory.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

from market_ledger.domain import (
    feed_cursor,
    installation,
    listing,
    manifest_record,
    market_source,
    user,
)
from market_ledger.domain.canonical import format_instant

Row = dict[str, Any]


def dumps(value: Any) -> str:
    """Sorted-key JSON text: equal content, equal text, whichever process wrote it."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def loads(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def listing_row(row: Row | None, event: listing.ListingEvent, position: int) -> Row:
    at = format_instant(event.timestamp)
    if isinstance(event, listing.Offered):
        row = dict(row) if row else _new_listing_row(event)
        rendered = (event.app_version, event.digest) == (
            row["latest_version"],
            row["latest_digest"],
        )
        row.update(
            name=event.name,
            offered_version=event.app_version,
            offered_digest=event.digest,
            labels=dumps(event.labels),
            status=listing.ListingStatus.LATEST if rendered else listing.ListingStatus.PENDING,
            pending_version=None if rendered else event.app_version,
            pending_digest=None if rendered else event.digest,
            attempts=0,
            retry_at=None,
            failure_step=None,
            failure_reason=None,
            withdrawn=False,
        )
    else:
        if row is None:
            raise ValueError(f"{type(event).__name__} at {position} for a listing never offered")
        row = dict(row)
        _apply_to_listing(row, event)
    row["status"] = str(row["status"])
    row["updated_at"] = at
    row["position"] = position
    return row


def _new_listing_row(event: listing.Offered) -> Row:
    return {
        "listing_id": event.originator_id.hex,
        "user_name": event.user,
        "source": event.source,
        "app_id": event.app_id,
        "latest_version": None,
        "latest_digest": None,
        "delisted": False,
        "delist_reason": None,
        "rendered": None,
        "rendered_digest": None,
    }


def _apply_to_listing(row: Row, event: listing.ListingEvent) -> None:
    if isinstance(event, listing.Rendered):
        row.update(
            status=listing.ListingStatus.LATEST,
            pending_version=None,
            pending_digest=None,
            latest_version=event.app_version,
            latest_digest=event.digest,
            attempts=0,
            retry_at=None,
            failure_step=None,
            failure_reason=None,
            rendered=event.rendered,
            rendered_digest=text_digest(event.rendered),
        )
    elif isinstance(event, listing.RenderFailed):
        row.update(
            status=listing.ListingStatus.FAILED,
            attempts=event.attempt,
            retry_at=format_instant(event.retry_at) if event.retry_at else None,
            failure_step=event.step,
            failure_reason=event.reason,
        )
    elif isinstance(event, listing.Parked):
        row.update(status=listing.ListingStatus.PARKED, retry_at=None)
    elif isinstance(event, listing.RetryRequested):
        row.update(status=listing.ListingStatus.PENDING, attempts=0, retry_at=None)
    elif isinstance(event, listing.Delisted):
        row.update(delisted=True, delist_reason=event.reason)
    elif isinstance(event, listing.Relisted):
        row.update(delisted=False, delist_reason=None)
    elif isinstance(event, listing.LabelsChanged):
        row.update(labels=dumps(event.labels))
    elif isinstance(event, listing.ImageInfoUpdated):
        rendered = dumps(
            patch_image_info(loads(row["rendered"]) or {}, event.image_name, event.info)
        )
        row.update(rendered=rendered, rendered_digest=text_digest(rendered))
    elif isinstance(event, listing.Withdrawn):
        row.update(withdrawn=True)
    else:
        raise TypeError(f"not a listing event: {event!r}")


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
