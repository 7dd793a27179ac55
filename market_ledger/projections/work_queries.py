"""What the pipeline reads from the views to decide its next commands."""

from __future__ import annotations

from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from market_ledger.domain.canonical import format_instant
from market_ledger.projections.rows import Row, loads
from market_ledger.projections.schema import ViewTables


@attrs.frozen
class OfferedState:
    """What a listing was last offered with, to send only offers that change something."""

    version: str
    digest: str
    labels: tuple[str, ...]
    delisted: bool
    withdrawn: bool


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
) -> dict[tuple[str, str], OfferedState]:
    """(user, app_id) -> what the listing was last offered with, for one source."""
    listing = t.listings
    query = sa.select(
        listing.c.user_name,
        listing.c.app_id,
        listing.c.offered_version,
        listing.c.offered_digest,
        listing.c.labels,
        listing.c.delisted,
        listing.c.withdrawn,
    ).where(listing.c.source == source)
    return {
        (r.user_name, r.app_id): OfferedState(
            r.offered_version, r.offered_digest, tuple(loads(r.labels)), r.delisted, r.withdrawn
        )
        for r in conn.execute(query)
    }


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
        .where(listing.c.withdrawn.is_(False))
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
    """Pending listings, and failed ones whose retry is due, of live users and sources.

    Delisted listings are not rendered: nobody can see a new version of them.
    """
    listing, users, sources, manifests = t.listings, t.users, t.sources, t.manifests
    due = sa.or_(
        listing.c.status == "pending",
        sa.and_(listing.c.status == "failed", listing.c.retry_at <= format_instant(now)),
    )
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
            due,
            listing.c.withdrawn.is_(False),
            listing.c.delisted.is_(False),
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
    ).where(listing.c.withdrawn.is_(False), listing.c.rendered.contains(needle, autoescape=True))
    found = []
    for r in conn.execute(query):
        images = (loads(r.rendered).get("app_info") or {}).get("image_analysis") or {}
        if image_name in (images.get("images") or {}):
            found.append((r.user_name, r.source, r.app_id))
    return found
