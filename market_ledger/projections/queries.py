"""The catalog and audit reads: what the CLI and the ledger routes show of the views.

Also the user lookups (``registered_user``, ``stored_hash``, ``user_rows``) that the market
routes share. The market API's own shapes are in :mod:`market_reads`, the pipeline's work
lists in :mod:`work_queries`, the intake's reads in :mod:`intake_reads` and the notifier's in
:mod:`notification_reads`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from market_ledger.domain.redaction import redact_url
from market_ledger.projections.generations import building
from market_ledger.projections.listing_status import STATUSES, live, shown_status
from market_ledger.projections.listing_status import parked as is_parked
from market_ledger.projections.parked_messages import parked_count
from market_ledger.projections.projector import read_position
from market_ledger.projections.role_leases import roles_shown
from market_ledger.projections.rows import Row, loads
from market_ledger.projections.schema import ViewTables
from market_ledger.projections.views_version import VIEWS_VERSION, serving_version
from market_ledger.projections.visibility import (
    installation_of,
    installations_by_name,
    is_visible,
    visible_sources,
)


class UnknownUser(LookupError):
    def __init__(self, user: str) -> None:
        super().__init__(f"unknown user {user!r}")
        self.user = user


def registered_user(conn: Connection, t: ViewTables, user: str) -> Row:
    row = conn.execute(sa.select(t.users).where(t.users.c.user_name == user)).mappings().first()
    if row is None or not row["registered"]:
        raise UnknownUser(user)
    return dict(row)


def stored_hash(conn: Connection, t: ViewTables, user: str) -> str:
    return str(registered_user(conn, t, user)["hash"])


#: the listing columns the catalog shows or decides visibility with
CATALOG_LISTING_COLUMNS = (
    "user_name",
    "source",
    "app_id",
    "name",
    "status",
    "latest_version",
    "pending_version",
    "labels",
    "delisted",
    "withdrawn",
)


@attrs.frozen
class UserRows:
    """The view rows that make up what one user sees: their own and every source's."""

    user: Row
    listings: list[Row]
    installations: list[Row]
    sources: list[Row]


def user_rows(
    conn: Connection,
    t: ViewTables,
    user: str,
    listing_columns: Sequence[str] | None = CATALOG_LISTING_COLUMNS,
) -> UserRows:
    """The user's rows (``listing_columns``: which listing columns, None for all, empty for
    no listings at all)."""
    user_row = registered_user(conn, t, user)
    listings: list[Row] = []
    if listing_columns is None or listing_columns:
        listings = user_listings(conn, t, user, listing_columns)
    return UserRows(
        user=user_row,
        listings=listings,
        installations=_rows(
            conn, sa.select(t.installations).where(t.installations.c.user_name == user)
        ),
        sources=_rows(conn, sa.select(t.sources)),
    )


def user_listings(
    conn: Connection, t: ViewTables, user: str, listing_columns: Sequence[str] | None = None
) -> list[Row]:
    """The user's listing rows (``listing_columns``: which columns, None for all)."""
    columns = (
        [t.listings] if listing_columns is None else [t.listings.c[c] for c in listing_columns]
    )
    return _rows(conn, sa.select(*columns).where(t.listings.c.user_name == user))


def _rows(conn: Connection, query: sa.Select[Any]) -> list[Row]:
    """Rows as dicts, built from plain tuples (much faster than row mappings)."""
    result = conn.execute(query)
    keys = list(result.keys())
    return [dict(zip(keys, values, strict=True)) for values in result.all()]


def catalog(conn: Connection, t: ViewTables, user: str) -> dict[str, Any]:
    """``{"user", "hash", "sources": {id: {"type", "apps": [...]}}}``, apps sorted by app_id."""
    rows = user_rows(conn, t, user)
    return catalog_from_rows(
        user, rows.user["hash"], rows.listings, rows.installations, rows.sources
    )


def catalog_from_rows(
    user: str,
    user_hash: str,
    listings: Iterable[Row],
    installations: Iterable[Row],
    sources: Iterable[Row],
) -> dict[str, Any]:
    """The catalog of ``user`` from view rows, whether read from the views or replayed.

    Apps are sorted by ``app_id`` in code point order, the same on every backend.
    """
    shown_sources = visible_sources(sources)
    by_name = installations_by_name(row for row in installations if row["user_name"] == user)
    shown: dict[str, dict[str, Any]] = {
        source_id: {"type": row["source_type"], "apps": []}
        for source_id, row in sorted(shown_sources.items())
    }
    mine = sorted(
        (row for row in listings if row["user_name"] == user), key=lambda r: str(r["app_id"])
    )
    for row in mine:
        installed = installation_of(row, by_name)
        if not is_visible(row, shown_sources, installed):
            continue
        shown[row["source"]]["apps"].append(catalog_entry(row, installed))
    return {"user": user, "hash": user_hash, "sources": shown}


def catalog_entry(row: Row | Any, installed: Row | None) -> dict[str, Any]:
    return {
        "app_id": row["app_id"],
        "name": row["name"],
        "status": shown_status(row),
        "latest_version": row["latest_version"],
        "pending_version": row["pending_version"],
        "labels": loads(row["labels"]),
        "installed_state": installed["state"] if installed else None,
    }


def history(
    conn: Connection, t: ViewTables, user: str, app: str, source: str | None = None
) -> list[dict[str, Any]]:
    """The lifecycle of ``app`` (its app id or installed name) for ``user``, in log order."""
    h = t.history
    query = sa.select(h).where(h.c.user_name == user, h.c.app == app)
    if source is not None:
        query = query.where(h.c.source == source)
    entries = []
    for row in conn.execute(query.order_by(h.c.position)).mappings():
        entries.append(
            {
                "position": row["position"],
                "at": row["at"],
                "event": row["event"],
                "source": row["source"],
                **loads(row["details"]),
            }
        )
    return entries


def users(conn: Connection, t: ViewTables) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.select(t.users).where(t.users.c.registered.is_(True)).order_by(t.users.c.user_name)
    ).mappings()
    return [
        {"name": r["user_name"], "role": r["role"], "zone": r["zone"], "hash": r["hash"]}
        for r in rows
    ]


def sources(conn: Connection, t: ViewTables) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.select(t.sources)
        .where(t.sources.c.removed.is_(False))
        .order_by(t.sources.c.priority.desc(), t.sources.c.source_id)
    ).mappings()
    return [
        {
            "id": r["source_id"],
            "type": r["source_type"],
            "url": redact_url(r["base_url"]),
            "priority": r["priority"],
            "active": r["active"],
            "remote_hash": r["remote_hash"],
            "catalog_version": r["catalog_version"],
            "app_count": r["app_count"],
        }
        for r in rows
    ]


def parked(conn: Connection, t: ViewTables) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.select(t.listings)
        .where(is_parked(t.listings))
        .order_by(t.listings.c.user_name, t.listings.c.source, t.listings.c.app_id)
    ).mappings()
    return [
        {
            "user": r["user_name"],
            "source": r["source"],
            "app_id": r["app_id"],
            "version": r["pending_version"],
            "attempts": r["attempts"],
            "step": r["failure_step"],
            "reason": r["failure_reason"],
        }
        for r in rows
    ]


def status(conn: Connection, t: ViewTables, head: int) -> dict[str, Any]:
    """Positions, projector lag, counts per status and the parked renders."""
    position = read_position(conn, t)
    listing = t.listings
    counts = dict.fromkeys(STATUSES, 0)
    for status_value, count in conn.execute(
        sa.select(listing.c.status, sa.func.count()).where(live(listing)).group_by(listing.c.status)
    ):
        counts[status_value] = count
    delisted = conn.execute(
        sa.select(sa.func.count()).where(live(listing), listing.c.delisted.is_(True))
    ).scalar_one()
    feeds = {r["feed"]: r["position"] for r in conn.execute(sa.select(t.feed_cursors)).mappings()}
    return {
        "log_head": head,
        "projector_position": position,
        "projector_lag": max(head - position, 0),
        "users": len(users(conn, t)),
        "sources": len(sources(conn, t)),
        "listings": counts,
        "delisted": delisted,
        "feeds": feeds,
        "parked": parked(conn, t),
        "parked_messages": parked_count(conn, t),
        "roles": roles_shown(conn),
        "views_version": {
            "serving": serving_version(conn, t, position),
            "code": VIEWS_VERSION,
        },
        "rebuild": building(conn, head),
    }
