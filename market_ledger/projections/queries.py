"""Reads of the views, in the shapes of the public interface (DESIGN.md)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from market_ledger.domain.redaction import redact_url
from market_ledger.projections.parked_messages import parked_count
from market_ledger.projections.projector import read_position
from market_ledger.projections.rows import Row, loads
from market_ledger.projections.schema import ViewTables
from market_ledger.projections.store import chunks
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


def user_hash(conn: Connection, t: ViewTables, user: str) -> str:
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
        columns = (
            [t.listings] if listing_columns is None else [t.listings.c[c] for c in listing_columns]
        )
        listings = _rows(conn, sa.select(*columns).where(t.listings.c.user_name == user))
    return UserRows(
        user=user_row,
        listings=listings,
        installations=_rows(
            conn, sa.select(t.installations).where(t.installations.c.user_name == user)
        ),
        sources=_rows(conn, sa.select(t.sources)),
    )


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
        "status": "delisted" if row["delisted"] else row["status"],
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
        .where(t.listings.c.status == "parked", t.listings.c.withdrawn.is_(False))
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
    counts = dict.fromkeys(("pending", "latest", "failed", "parked"), 0)
    live = listing.c.withdrawn.is_(False)
    for status_value, count in conn.execute(
        sa.select(listing.c.status, sa.func.count()).where(live).group_by(listing.c.status)
    ):
        counts[status_value] = count
    delisted = conn.execute(
        sa.select(sa.func.count()).where(live, listing.c.delisted.is_(True))
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
    }


def registered_users(conn: Connection, t: ViewTables, names: Iterable[str]) -> set[str]:
    """Which of ``names`` are registered users."""
    wanted = sorted(set(names))
    found: set[str] = set()
    users = t.users
    for part in chunks(wanted):
        query = sa.select(users.c.user_name).where(
            users.c.user_name.in_(part), users.c.registered.is_(True)
        )
        found.update(str(name) for name in conn.execute(query).scalars())
    return found


def installed_app_source(
    conn: Connection, t: ViewTables, user: str, name: str, raw_app_name: str = ""
) -> str:
    """The market source of ``user``'s installed app ``name``, for a report that omits it.

    The installation's own source when the views know one; else the single source whose
    listing for ``user`` has that name or app id (then ``raw_app_name``, for a clone); else
    ``""`` when no source or more than one lists it.
    """
    key = (user, name, raw_app_name)
    return installed_app_sources(conn, t, [key])[key]


def installed_app_sources(
    conn: Connection, t: ViewTables, wanted: Iterable[tuple[str, str, str]]
) -> dict[tuple[str, str, str], str]:
    """:func:`installed_app_source` of many ``(user, name, raw_app_name)`` in two queries."""
    keys = set(wanted)
    users = sorted({user for user, _, _ in keys})
    names = sorted({n for _, name, raw in keys for n in (name, raw) if n})
    i, listing = t.installations, t.listings
    known: dict[tuple[str, str], str] = {}
    listed: dict[tuple[str, str], set[str]] = {}
    for part in chunks(names):
        installed = conn.execute(
            sa.select(i.c.user_name, i.c.name, i.c.source).where(
                i.c.user_name.in_(users), i.c.name.in_(part)
            )
        )
        known.update(((user, name), source) for user, name, source in installed)
        listings = conn.execute(
            sa.select(listing.c.user_name, listing.c.name, listing.c.app_id, listing.c.source)
            .distinct()
            .where(
                listing.c.user_name.in_(users),
                listing.c.withdrawn.is_(False),
                sa.or_(listing.c.name.in_(part), listing.c.app_id.in_(part)),
            )
        )
        for user, name, app_id, source in listings:
            for label in {name, app_id}:
                listed.setdefault((user, label), set()).add(source)
    found: dict[tuple[str, str, str], str] = {}
    for user, name, raw in keys:
        source = known.get((user, name), "")
        if not source:
            for candidate in dict.fromkeys(n for n in (name, raw) if n):
                sources = listed.get((user, candidate))
                if sources:
                    source = next(iter(sources)) if len(sources) == 1 else ""
                    break
        found[(user, name, raw)] = source
    return found


def known_entrance_flags(
    conn: Connection, t: ViewTables, keys: set[tuple[str, str]]
) -> dict[tuple[str, str], dict[str, bool]]:
    """(user, app name) -> entrance name -> ``invisible``, for the installations known."""
    i = t.installations
    users = sorted({user for user, _ in keys})
    query = sa.select(i.c.user_name, i.c.name, i.c.entrances).where(i.c.user_name.in_(users))
    flags: dict[tuple[str, str], dict[str, bool]] = {}
    for user_name, name, entrances in conn.execute(query):
        if (user_name, name) in keys:
            flags[(user_name, name)] = {
                str(e.get("name")): bool(e["invisible"])
                for e in loads(entrances)
                if isinstance(e, dict) and "invisible" in e
            }
    return flags
