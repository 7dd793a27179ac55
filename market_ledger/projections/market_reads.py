"""What the market API reads from the views, in the shapes of :mod:`market_shapes`.

The simple infos of the latest renders are parsed once per render (cached by the render's
digest), and full entries are put back together from the stored render and the stored
content of the manifest it rendered (by ``latest_digest``). A user's latest entries are
encoded once per state of their listing rows (:class:`LatestEntriesCache`): a change to
their installations or to another user's rows reads and encodes only what it touched.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any

import attrs
import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from market_ledger.projections.market_shapes import (
    ListingIndex,
    full_entry_of,
    index_latest_listings,
    latest_entries,
    live_installations,
    stored_simple_info,
    visibility_inputs,
)
from market_ledger.projections.queries import UserRows, user_listings
from market_ledger.projections.rows import Row, loads
from market_ledger.projections.schema import ViewTables
from market_ledger.projections.store import chunks
from market_ledger.projections.views_version import recorded_version
from market_ledger.projections.visibility import (
    installation_of,
    installations_by_name,
    is_visible,
    visible_sources,
)

#: listing columns the market's data and state routes read (the render itself only when
#: its simple info is not cached yet)
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


def listings_mark(conn: Connection, tables: ViewTables, user: str) -> tuple[int, int, int | None]:
    """What changes whenever one of the user's listing rows does: every change stamps its
    row with the position of its event, always higher than the row's last, and rows are only
    ever added (the count says so too). A rebuild derives the same rows at the same
    positions, unless it builds another projection version (the third part)."""
    listings = tables.listings
    top, count = conn.execute(
        sa.select(sa.func.max(listings.c.position), sa.func.count()).where(
            listings.c.user_name == user
        )
    ).one()
    return int(top or 0), int(count), recorded_version(conn, tables)


@attrs.frozen
class _UserListings:
    mark: tuple[int, int, int | None]
    listings: list[Row]
    index: ListingIndex
    #: what decided the visibility of the encoded entries, and those entries per source
    visibility: Hashable = None
    encoded: Mapping[str, orjson.Fragment] | None = None


class LatestEntriesCache:
    """Per user, the listing rows the market data reads and their latest entries encoded,
    kept while :func:`listings_mark` stays the same.

    Installation progress, a source's extras or another user's change leave a user's
    listing rows as they were: the market data is then put together from the rows that did
    change and these encoded entries, instead of reading and encoding a thousand listings
    again. Bounded (least recently used out); shared by the threads that serve requests.
    """

    def __init__(self, capacity: int, infos: SimpleInfoCache) -> None:
        self.capacity = capacity
        self.infos = infos
        self._users: OrderedDict[str, _UserListings] = OrderedDict()
        self._lock = threading.Lock()

    def _listings(self, conn: Connection, tables: ViewTables, user: str) -> _UserListings:
        mark = listings_mark(conn, tables, user)  # first: rows read after it are not older
        with self._lock:
            known = self._users.get(user)
            if known is not None:
                self._users.move_to_end(user)
        if known is not None and known.mark == mark:
            return known
        listings = user_listings(conn, tables, user, MARKET_LISTING_COLUMNS)
        return self._keep(user, _UserListings(mark, listings, index_latest_listings(listings)))

    def _keep(self, user: str, entry: _UserListings) -> _UserListings:
        with self._lock:
            self._users[user] = entry
            self._users.move_to_end(user)
            while len(self._users) > self.capacity:
                self._users.popitem(last=False)
        return entry

    def index(self, conn: Connection, tables: ViewTables, user: str) -> ListingIndex:
        """The user's rendered listings by (source, app id or name), for installed states."""
        return self._listings(conn, tables, user).index

    def latest(
        self, conn: Connection, tables: ViewTables, rows: UserRows
    ) -> tuple[ListingIndex, Mapping[str, orjson.Fragment]]:
        """The listing index and, per source, the encoded ``app_info_latest`` of the user
        of ``rows`` (its installations and sources, read in the same snapshot)."""
        user = str(rows.user["user_name"])
        entry = self._listings(conn, tables, user)
        shown = visible_sources(rows.sources)
        live = live_installations(rows.installations)
        visibility = visibility_inputs(shown, live)
        if entry.encoded is None or entry.visibility != visibility:
            found = simple_infos(conn, tables, entry.listings, self.infos)
            lists = latest_entries(entry.listings, shown, live, found)
            encoded = {src: orjson.Fragment(orjson.dumps(value)) for src, value in lists.items()}
            entry = self._keep(user, attrs.evolve(entry, visibility=visibility, encoded=encoded))
        assert entry.encoded is not None
        return entry.index, entry.encoded


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
