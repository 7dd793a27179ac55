"""The listing's lifecycle in the views' terms: the one place a query or a view names a status.

The statuses and what moves a listing between them are the domain's
(:class:`~market_ledger.domain.listing.ListingStatus`, ``listing.evolve``); the rows follow
them by folding ``evolve``. What is here only selects rows by those statuses in SQL, and says
how the catalog shows one.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from market_ledger.domain.canonical import format_instant
from market_ledger.domain.listing import ListingStatus

#: every status a listing row can hold, in the order ``status`` counts them
STATUSES = tuple(status.value for status in ListingStatus)
#: what the catalog shows for a delisted listing, whatever its render status
DELISTED = "delisted"


def live(listings: sa.Table) -> sa.ColumnElement[bool]:
    """Listings whose source and user are still there (a withdrawn one is history only)."""
    return listings.c.withdrawn.is_(False)


def parked(listings: sa.Table) -> sa.ColumnElement[bool]:
    """Live listings whose retries are exhausted: an operator may retry them."""
    return sa.and_(listings.c.status == ListingStatus.PARKED.value, live(listings))


def due_for_render(listings: sa.Table, now: datetime) -> sa.ColumnElement[bool]:
    """Live, listed listings waiting for a render: pending, or failed and due for its retry.

    Delisted listings are not rendered: nobody can see a new version of them.
    """
    waiting = sa.or_(
        listings.c.status == ListingStatus.PENDING.value,
        sa.and_(
            listings.c.status == ListingStatus.FAILED.value,
            listings.c.retry_at <= format_instant(now),
        ),
    )
    return sa.and_(waiting, live(listings), listings.c.delisted.is_(False))


def shown_status(row: Mapping[str, Any]) -> str:
    """The status the catalog shows: ``delisted`` wins over where the render stands."""
    return DELISTED if row["delisted"] else str(row["status"])
