"""What the market API reads from the views, in the shapes of :mod:`market_shapes`.

The simple infos of the latest renders are parsed once per render (cached by the render's
digest), and full entries are put back together from the stored render and the stored
content of the manifest it rendered (by ``latest_digest``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from market_ledger.projections.market_shapes import full_entry_of, stored_simple_info
from market_ledger.projections.rows import Row, loads
from market_ledger.projections.schema import ViewTables
from market_ledger.projections.store import chunks
from market_ledger.projections.visibility import (
    installation_of,
    installations_by_name,
    is_visible,
    visible_sources,
)

#: listing columns an installed state is matched to its listing with
STATE_LISTING_COLUMNS = ("source", "app_id", "name", "latest_version", "withdrawn")
#: listing columns read for the market's data route (the render itself only when its
#: simple info is not cached yet)
MARKET_LISTING_COLUMNS = (
    "listing_id",
    "source",
    "app_id",
    "name",
    "latest_version",
    "latest_digest",
    "rendered_digest",
    "labels",
    "delisted",
    "withdrawn",
    "updated_at",
)


class SimpleInfoCache:
    """``app_simple_info`` by render digest: a render is parsed once, not on every read.

    Bounded (least recently used out); shared by the threads that serve requests.
    """

    def __init__(self, capacity: int = 50_000) -> None:
        self.capacity = capacity
        self._infos: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, digest: str) -> dict[str, Any] | None:
        with self._lock:
            info = self._infos.get(digest)
            if info is not None:
                self._infos.move_to_end(digest)
            return info

    def put(self, digest: str, info: dict[str, Any]) -> None:
        with self._lock:
            self._infos[digest] = info
            while len(self._infos) > self.capacity:
                self._infos.popitem(last=False)


def simple_infos(
    conn: Connection, tables: ViewTables, listings: Sequence[Row], cache: SimpleInfoCache
) -> dict[str, dict[str, Any]]:
    """Listing id -> simple info of its latest render, reading only renders not cached."""
    found: dict[str, dict[str, Any]] = {}
    missing: list[str] = []
    for row in listings:
        if row["latest_version"] is None or row["rendered_digest"] is None:
            continue
        info = cache.get(row["rendered_digest"])
        if info is None:
            missing.append(row["listing_id"])
        else:
            found[row["listing_id"]] = info
    for part in chunks(missing):
        bare = listing_rows(conn, tables, part)
        contents: dict[str, dict[str, Any]] | None = None
        for row in bare:
            info = stored_simple_info(row["rendered"])
            if info is None:  # the render came without one: derive it from the full entry
                if contents is None:
                    contents = manifest_contents(conn, tables, (r["latest_digest"] for r in bare))
                info = full_entry_of(row, contents.get(row["latest_digest"]))["app_simple_info"]
            info = dict(info or {})
            cache.put(row["rendered_digest"], info)
            found[row["listing_id"]] = info
    return found


def manifest_contents(
    conn: Connection, tables: ViewTables, digests: Iterable[str]
) -> dict[str, dict[str, Any]]:
    """Stored manifest contents by digest."""
    wanted = sorted(set(digests))
    if not wanted:
        return {}
    m = tables.manifests
    rows = conn.execute(sa.select(m.c.digest, m.c.content).where(m.c.digest.in_(wanted)))
    return {digest: dict(loads(content)) for digest, content in rows}


def find_entries(
    conn: Connection,
    tables: ViewTables,
    user: str,
    wanted: Sequence[tuple[str, str]],
) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """Full entries for ``(app, source)`` pairs: found ones in order, and the missing pairs.

    An app is matched by its app id, else by its name; it must be rendered and visible.
    """
    t = tables
    apps = sorted({app for app, _ in wanted})
    sources_wanted = sorted({source for _, source in wanted})
    listings = t.listings
    candidates = [
        dict(r)
        for r in conn.execute(
            sa.select(listings).where(
                listings.c.user_name == user,
                listings.c.source.in_(sources_wanted),
                sa.or_(listings.c.app_id.in_(apps), listings.c.name.in_(apps)),
            )
        ).mappings()
    ]
    shown = visible_sources(dict(r) for r in conn.execute(sa.select(t.sources)).mappings())
    by_name = installations_by_name(
        dict(r)
        for r in conn.execute(
            sa.select(t.installations).where(t.installations.c.user_name == user)
        ).mappings()
    )
    usable = [
        row
        for row in candidates
        if row["latest_version"] is not None
        and is_visible(row, shown, installation_of(row, by_name))
    ]
    matches = [(app, source, _match(usable, app, source)) for app, source in wanted]
    contents = manifest_contents(
        conn, tables, (row["latest_digest"] for _, _, row in matches if row is not None)
    )
    found: list[dict[str, Any]] = []
    missing: list[tuple[str, str]] = []
    for app, source, row in matches:
        if row is None:
            missing.append((app, source))
        else:
            found.append(full_entry_of(row, contents.get(row["latest_digest"])))
    return found, missing


def _match(rows: Iterable[Row], app: str, source: str) -> Row | None:
    in_source = [row for row in rows if row["source"] == source]
    for row in in_source:
        if row["app_id"] == app:
            return row
    for row in sorted(in_source, key=lambda r: str(r["app_id"])):
        if row["name"] == app:
            return row
    return None


def listing_rows(conn: Connection, tables: ViewTables, listing_ids: Sequence[str]) -> list[Row]:
    """Whole listing rows by id (for the rare renders that came without simple info)."""
    if not listing_ids:
        return []
    listings = tables.listings
    return [
        dict(r)
        for r in conn.execute(
            sa.select(listings).where(listings.c.listing_id.in_(list(listing_ids)))
        ).mappings()
    ]
