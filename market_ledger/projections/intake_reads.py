"""What the NATS intake reads from the views to turn a message into commands.

A message may omit the market source of an installed app; these reads fill in what the views
know, for many messages of one batch in a few queries, and say which users the views know.
Whether an entrance is hidden is not read here: the Installation aggregate remembers it.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from market_ledger.projections.listing_status import live
from market_ledger.projections.schema import ViewTables
from market_ledger.projections.store import chunks


def registered_among(conn: Connection, t: ViewTables, names: Iterable[str]) -> set[str]:
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
    """:func:`installed_app_source` of many ``(user, name, raw_app_name)`` in two queries, the
    listings read only for the apps whose installation names no source."""
    keys = set(wanted)
    i, listing = t.installations, t.listings
    known: dict[tuple[str, str], str] = {}
    users = sorted({user for user, _, _ in keys})
    for part in chunks(sorted({name for _, name, _ in keys if name})):
        installed = conn.execute(
            sa.select(i.c.user_name, i.c.name, i.c.source).where(
                i.c.user_name.in_(users), i.c.name.in_(part)
            )
        )
        known.update(((user, name), source) for user, name, source in installed)
    unresolved = [(user, name, raw) for user, name, raw in keys if not known.get((user, name))]
    listed: dict[tuple[str, str], set[str]] = {}
    users = sorted({user for user, _, _ in unresolved})
    for part in chunks(sorted({n for _, name, raw in unresolved for n in (name, raw) if n})):
        listings = conn.execute(
            sa.select(listing.c.user_name, listing.c.name, listing.c.app_id, listing.c.source)
            .distinct()
            .where(
                listing.c.user_name.in_(users),
                live(listing),
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
