"""What the notifier reads from the views to describe the events it announces.

The views are at or past the events being announced, so what an event itself says (a state,
a render) is taken from the event; the views give what it does not say: whether its user is
registered, the listing a render belongs to, the app's latest entry and its current labels,
the version a render stored before renders named it replaced, and what a task event does not
repeat: the task's kind, user, app, version, source and error.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from market_ledger.domain import listing
from market_ledger.projections.market_reads import manifest_contents
from market_ledger.projections.market_shapes import (
    full_entry_of,
    index_latest_listings,
    listing_of_installed,
    rendered_entry,
)
from market_ledger.projections.rows import Row, loads
from market_ledger.projections.schema import ViewTables


class NotificationReads:
    """Reads of one batch, on one connection; the latest entries are read once per app."""

    def __init__(self, conn: Connection, tables: ViewTables) -> None:
        self.conn = conn
        self.t = tables
        self._entries: dict[tuple[str, str, str], tuple[dict[str, Any] | None, str | None]] = {}

    def listings(self, listing_ids: list[str]) -> dict[str, Row]:
        """Listing rows by id."""
        if not listing_ids:
            return {}
        table = self.t.listings
        query = sa.select(table).where(table.c.listing_id.in_(sorted(set(listing_ids))))
        return {r["listing_id"]: dict(r) for r in self.conn.execute(query).mappings()}

    def rendered_before(self, renders: list[tuple[int, Row]]) -> dict[int, str]:
        """For renders given as (log position, listing row): the version the listing's previous
        render made latest, from the history; a render with none before it is left out.

        What a render event of today names itself (``Rendered.replaces``); an event stored
        before it did says nothing (see ``Rendered.upcast_v1_v2``), and this says it instead.
        """
        if not renders:
            return {}
        h = self.t.history
        keys = {(r["user_name"], r["source"], r["app_id"]) for _, r in renders}
        # One IN list per column, so that the (user, app, position) index serves the query
        # (a tuple IN is read by a scan of the history on SQLite); other pairs are left out
        # below.
        query = (
            sa.select(h.c.position, h.c.user_name, h.c.source, h.c.app, h.c.details)
            .where(h.c.user_name.in_(sorted({k[0] for k in keys})))
            .where(h.c.app.in_(sorted({k[2] for k in keys})))
            .where(h.c.source.in_(sorted({k[1] for k in keys})))
            .where(h.c.kind == "listing", h.c.event == listing.Rendered.HISTORY_NAME)
            .where(h.c.position < max(position for position, _ in renders))
            .order_by(h.c.position)
        )
        earlier: dict[tuple[str, str, str], list[tuple[int, str]]] = {}
        for row in self.conn.execute(query).mappings():
            key = (row["user_name"], row["source"], row["app"])
            if key in keys:
                version = loads(row["details"])["version"]
                earlier.setdefault(key, []).append((row["position"], version))
        found: dict[int, str] = {}
        for position, r in renders:
            before = [
                v
                for p, v in earlier.get((r["user_name"], r["source"], r["app_id"]), ())
                if p < position
            ]
            if before:
                found[position] = before[-1]
        return found

    def tasks(self, task_ids: list[str]) -> dict[str, Row]:
        """Task rows by task id (the columns a task notice names)."""
        if not task_ids:
            return {}
        table = self.t.tasks
        columns = ("task_id", "kind", "user_name", "app_name", "version", "source", "error")
        query = sa.select(*(table.c[name] for name in columns)).where(
            table.c.task_id.in_(sorted(set(task_ids)))
        )
        return {r["task_id"]: dict(r) for r in self.conn.execute(query).mappings()}

    def registered(self, names: set[str]) -> set[str]:
        """Those of ``names`` that are registered users."""
        if not names:
            return set()
        users = self.t.users
        query = sa.select(users.c.user_name).where(
            users.c.user_name.in_(sorted(names)), users.c.registered.is_(True)
        )
        return {str(name) for name in self.conn.execute(query).scalars()}

    def latest_entry(
        self, user_name: str, source: str, name: str
    ) -> tuple[dict[str, Any] | None, str | None]:
        """The full latest entry of the app of that name (or app id) in ``source``, and its
        version; ``(None, None)`` when it has none."""
        key = (user_name, source, name)
        if key not in self._entries:
            listings = self.t.listings
            rows = [
                dict(r)
                for r in self.conn.execute(
                    sa.select(listings).where(
                        listings.c.user_name == user_name,
                        listings.c.source == source,
                        sa.or_(listings.c.name == name, listings.c.app_id == name),
                    )
                ).mappings()
            ]
            row = listing_of_installed(index_latest_listings(rows), source, name)
            if row is None or row["rendered"] is None:
                self._entries[key] = (None, None)
            else:
                entry = full_entry_of(row, self._content(row["latest_digest"]))
                self._entries[key] = (entry, row["latest_version"])
        return self._entries[key]

    def rendered_entry(self, row: Row, event: listing.Rendered) -> dict[str, Any]:
        """The full entry a render event made, with the listing's current labels."""
        return rendered_entry(
            event.rendered, self._content(event.digest), row, event.app_version, event.timestamp
        )

    def _content(self, digest: str) -> dict[str, Any]:
        return manifest_contents(self.conn, self.t, [digest]).get(digest, {})
