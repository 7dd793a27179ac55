"""What the pipeline reads from the views to decide its next commands."""

from __future__ import annotations

from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from market_ledger.domain.listing import ListingState
from market_ledger.projections.listing_status import due_for_render, live
from market_ledger.projections.rows import LISTING_STATE_COLUMNS, Row, listing_state, loads
from market_ledger.projections.schema import ViewTables


@attrs.frozen
class RenderWork:
    """A listing due for rendering: its pending version and the entry to render."""

    user: str
    source: str
    app_id: str
    version: str
    digest: str
    labels: tuple[str, ...]
    content: str = attrs.field(repr=False)
    attempts: int = 0


def registered_users(conn: Connection, t: ViewTables) -> list[str]:
    query = sa.select(t.users.c.user_name).where(t.users.c.registered.is_(True))
    return sorted(conn.execute(query).scalars())


def live_sources(conn: Connection, t: ViewTables) -> list[Row]:
    """Configured sources (active or not), by priority then id."""
    query = (
        sa.select(t.sources)
        .where(t.sources.c.removed.is_(False))
        .order_by(t.sources.c.priority.desc(), t.sources.c.source_id)
    )
    return [dict(r) for r in conn.execute(query).mappings()]


def offered_states(
    conn: Connection, t: ViewTables, source: str
) -> dict[tuple[str, str], ListingState]:
    """(user, app_id) -> the listing as the views last saw it, for one source.

    Read in one query from the views, not stream by stream from the store: the first sync of
    a big catalog would otherwise load every listing's events.
    """
    listing = t.listings
    query = sa.select(*(listing.c[c] for c in LISTING_STATE_COLUMNS)).where(
        listing.c.source == source
    )
    keys = list(LISTING_STATE_COLUMNS)
    states = (listing_state(dict(zip(keys, r, strict=True))) for r in conn.execute(query))
    return {(state.user, state.app_id): state for state in states}


def orphaned_listings(conn: Connection, t: ViewTables) -> list[tuple[str, str, str, str]]:
    """Listings not yet withdrawn whose user or source is gone: (user, source, app_id, why)."""
    listing, users, sources = t.listings, t.users, t.sources
    query = (
        sa.select(
            listing.c.user_name,
            listing.c.source,
            listing.c.app_id,
            users.c.registered,
            sources.c.removed,
        )
        .select_from(
            listing.outerjoin(users, users.c.user_name == listing.c.user_name).outerjoin(
                sources, sources.c.source_id == listing.c.source
            )
        )
        .where(live(listing))
    )
    orphans = []
    for r in conn.execute(query):
        if not r.registered:
            orphans.append((r.user_name, r.source, r.app_id, "user removed"))
        elif r.removed is None or r.removed:
            orphans.append((r.user_name, r.source, r.app_id, "source removed"))
    return orphans


def due_renders(
    conn: Connection, t: ViewTables, now: Any, limit: int | None = None
) -> list[RenderWork]:
    """Listings due for a render (:func:`listing_status.due_for_render`) of live users and
    active sources, fewest attempts first."""
    listing, users, sources, manifests = t.listings, t.users, t.sources, t.manifests
    query = (
        sa.select(
            listing.c.user_name,
            listing.c.source,
            listing.c.app_id,
            listing.c.pending_version,
            listing.c.pending_digest,
            listing.c.labels,
            listing.c.attempts,
            manifests.c.content,
        )
        .join(users, users.c.user_name == listing.c.user_name)
        .join(sources, sources.c.source_id == listing.c.source)
        .join(manifests, manifests.c.digest == listing.c.pending_digest)
        .where(
            due_for_render(listing, now),
            users.c.registered.is_(True),
            sources.c.removed.is_(False),
            sources.c.active.is_(True),
        )
        .order_by(listing.c.attempts, listing.c.user_name, listing.c.source, listing.c.app_id)
    )
    if limit is not None:
        query = query.limit(limit)
    return [
        RenderWork(
            user=r.user_name,
            source=r.source,
            app_id=r.app_id,
            version=r.pending_version,
            digest=r.pending_digest,
            labels=tuple(loads(r.labels)),
            content=r.content,
            attempts=r.attempts,
        )
        for r in conn.execute(query)
    ]


def current_installations(conn: Connection, t: ViewTables) -> list[Row]:
    query = sa.select(t.installations).where(t.installations.c.removed.is_(False))
    return [dict(r) for r in conn.execute(query).mappings()]


def feed_position(conn: Connection, t: ViewTables, feed: str) -> int:
    query = sa.select(t.feed_cursors.c.position).where(t.feed_cursors.c.feed == feed)
    value = conn.execute(query).scalar()
    return int(value) if value is not None else 0


def listings_with_image(
    conn: Connection, t: ViewTables, image_name: str
) -> list[tuple[str, str, str]]:
    """(user, source, app_id) of rendered listings whose images include ``image_name``."""
    listing = t.listings
    needle = f'"{image_name}"'
    query = sa.select(
        listing.c.user_name, listing.c.source, listing.c.app_id, listing.c.rendered
    ).where(live(listing), listing.c.rendered.contains(needle, autoescape=True))
    found = []
    for r in conn.execute(query):
        images = (loads(r.rendered).get("app_info") or {}).get("image_analysis") or {}
        if image_name in (images.get("images") or {}):
            found.append((r.user_name, r.source, r.app_id))
    return found
