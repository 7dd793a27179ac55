"""How long the oldest work of each role has waited, read at any instance.

Every instance answers for every role, whoever holds it, from what all of them share: the
log and the views. A role whose holder is gone, stuck or paused shows here as a lag that
keeps growing, on every instance's ``/metrics``.

- ``projector``: the age of the oldest event the views have not applied;
- ``notifier``: the age of the oldest event not announced yet;
- ``cycle``: how long the oldest render that is due has waited (pending since it was offered,
  or failed and due for its retry): a render waits for the next cycle, so up to one interval
  is normal;
- ``tasks``: how long the oldest task still queued (not sent to app-service) has waited.

A role with nothing waiting has a lag of 0.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from market_ledger.domain.canonical import parse_instant
from market_ledger.domain.listing import ListingStatus
from market_ledger.domain.task_events import TaskStatus
from market_ledger.projections.listing_status import due_for_render
from market_ledger.projections.log_reader import EventStore, LogReader
from market_ledger.projections.schema import ViewTables


def event_lag_seconds(application: EventStore, position: int, now: datetime) -> float:
    """The age of the first event after ``position``; 0 when there is none."""
    reader = LogReader(application)
    page = reader.notifications(position, None, 1)
    if not page:
        return 0.0
    return _age(reader.decode(page[0]).timestamp, now)


def cycle_lag_seconds(conn: Connection, tables: ViewTables, now: datetime) -> float:
    """How long the oldest render that is due has waited for a cycle."""
    listings = tables.listings
    waiting_since = sa.case(
        (listings.c.status == ListingStatus.FAILED.value, listings.c.retry_at),
        else_=listings.c.updated_at,
    )
    oldest = conn.execute(
        sa.select(sa.func.min(waiting_since)).where(due_for_render(listings, now))
    ).scalar()
    return _age(parse_instant(oldest), now) if oldest else 0.0


def tasks_lag_seconds(conn: Connection, tables: ViewTables, now: datetime) -> float:
    """How long the oldest task still queued has waited to be sent."""
    tasks = tables.tasks
    oldest = conn.execute(
        sa.select(sa.func.min(tasks.c.created_at)).where(tasks.c.state == TaskStatus.REQUESTED)
    ).scalar()
    return _age(parse_instant(oldest), now) if oldest else 0.0


def _age(since: datetime, now: datetime) -> float:
    return max((now - since).total_seconds(), 0.0)
