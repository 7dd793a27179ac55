"""The version of the projection: how the code makes rows from events, recorded with the views.

Migrations change the shape of the tables; they cannot change rows that the projection
functions now make differently from the same events (a new column filled from old events,
a rule that counts differently). Such a change raises :data:`VIEWS_VERSION`. The views
record the version that built them under :data:`NAME` in the position table, and a service
whose code builds a later version builds a new generation from the log beside the serving
one and switches it in (market_ledger.views_upgrade), while the old generation goes on
serving.

The first batch applied to empty views records the version its projector builds; views that
held events before versions were recorded are version 1, and their first batch records so.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from market_ledger.projections.schema import ViewTables
from market_ledger.projections.store import upsert_rows

#: the version this code's projection builds; raise it when existing rows must be rebuilt
VIEWS_VERSION = 1
#: the position table's row that holds the version of the views
NAME = "views_version"
#: the version of views that held events before the version was recorded
UNRECORDED = 1


def recorded_version(conn: Connection, tables: ViewTables) -> int | None:
    """The version recorded with the views, None when none is."""
    t = tables.position
    value = conn.execute(sa.select(t.c.position).where(t.c.name == NAME)).scalar()
    return None if value is None else int(value)


def serving_version(conn: Connection, tables: ViewTables, views_position: int) -> int | None:
    """The version the views were built by; None for empty views (any version fits them)."""
    recorded = recorded_version(conn, tables)
    if recorded is not None:
        return recorded
    return UNRECORDED if views_position > 0 else None


def record_for_batch(
    conn: Connection, tables: ViewTables, version: int | None, views_position: Callable[[], int]
) -> None:
    """Record, at a batch, the version of views that have none yet: ``version`` (the
    projector's) for empty views, :data:`UNRECORDED` for views that already hold events.
    A projector with no version (a rebuild that verifies) records none. Once recorded, a
    batch pays one read of the position table; the views' position only before that."""
    if version is None or recorded_version(conn, tables) is not None:
        return
    found = UNRECORDED if views_position() > 0 else version
    upsert_rows(conn, tables.position, [{"name": NAME, "position": found}])


def copy_version(conn: Connection, source: ViewTables, target: ViewTables) -> None:
    """Give ``target`` the version ``source`` records (none: none), so that comparing the
    two generations compares their rows, not the versions that built them."""
    t = target.position
    conn.execute(sa.delete(t).where(t.c.name == NAME))
    recorded = recorded_version(conn, source)
    if recorded is not None:
        upsert_rows(conn, t, [{"name": NAME, "position": recorded}])
