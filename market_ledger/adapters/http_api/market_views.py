"""The market's read shapes (reference A §7), built from the view rows of one user.

- ``app_info_latest``: the rendered latest entries a user can see, reduced to ``{type,
  timestamp, version, app_simple_info}``, with the listing's current labels as
  ``app_simple_info.app_labels``;
- ``app_state_latest``: the installed apps' states, in the app-service state shape;
- ``others``: the source's extras (topics, topic lists, recommends, pages, tops, latest, tags)
  with the remote catalog's hash and version;
- full entries: chart-repo's rendered ``app_data`` put back together from the stored render
  and the stored content of the manifest it rendered (by ``latest_digest``).

``timestamp`` is the time of the listing's last change, in unix seconds: the replaced system
also reset it on every move and image update.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from market_ledger.adapters.chart_repo.app_data import LATEST_TYPE, simple_info_of
from market_ledger.domain.canonical import parse_instant
from market_ledger.domain.manifest import LABELS_FIELD, entry_with_labels
from market_ledger.domain.rendering import expand_rendered
from market_ledger.projections.queries import UserRows
from market_ledger.projections.rows import Row, loads
from market_ledger.projections.schema import ViewTables
from market_ledger.projections.store import chunks
from market_ledger.projections.visibility import (
    installation_of,
    installations_by_name,
    is_visible,
    visible_sources,
)

STATE_TYPE = "app-state-latest"
#: the type the replaced system gave a source it created on the fly (e.g. ``""``)
DEFAULT_SOURCE_TYPE = "remote"
EXTRAS_FIELDS = ("topics", "topic_lists", "recommends", "pages", "tops", "latest", "tags")
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


@lru_cache(maxsize=4096)  # the rows of one batch share their instant
def unix_seconds(instant: str) -> int:
    return int(parse_instant(instant).timestamp())


def state_entry(row: Row) -> dict[str, Any]:
    """An installation in the ``app_state_latest`` shape."""
    observed = row["observed_at"]
    return {
        "type": STATE_TYPE,
        "version": row["app_version"],
        "status": {
            "name": row["name"],
            "rawAppName": row["raw_app_name"],
            "title": row["title"],
            "state": row["state"],
            "updateTime": observed,
            "statusTime": observed,
            "lastTransitionTime": observed,
            "progress": row["progress"],
            "opType": row["op_type"],
            "entranceStatuses": loads(row["entrances"]) or [],
            "sharedEntrances": loads(row["shared_entrances"]) or [],
        },
    }


def others_of(source: Row) -> dict[str, Any]:
    extras = loads(source["extras"]) or {}
    others: dict[str, Any] = {"hash": source["remote_hash"], "version": source["catalog_version"]}
    for field in EXTRAS_FIELDS:
        value = extras.get(field)
        others[field] = value if value is not None else []
    return others


def latest_summary(row: Row, simple_info: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "type": LATEST_TYPE,
        "timestamp": unix_seconds(row["updated_at"]),
        "version": row["latest_version"],
        "app_simple_info": {**simple_info, "app_labels": loads(row["labels"]) or []},
    }


def stored_simple_info(rendered_text: str | None) -> dict[str, Any] | None:
    """The ``app_simple_info`` chart-repo returned with the render, if it did."""
    rendered = loads(rendered_text)
    if isinstance(rendered, dict):
        info = rendered.get("app_simple_info")
        if isinstance(info, dict):
            return info
    return None


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
                info = full_entry(row, contents.get(row["latest_digest"]))["app_simple_info"]
            info = dict(info or {})
            cache.put(row["rendered_digest"], info)
            found[row["listing_id"]] = info
    return found


def market_sources(
    rows: UserRows,
    *,
    with_apps: bool,
    infos: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Per source: type and installed states; with ``with_apps`` also the latest entries
    (``infos``: listing id -> simple info of its latest render) and the extras.

    Every visible source is listed; a source that is not (removed, inactive, or the ``""``
    of apps whose source is unknown) is listed only for the installed states it holds.
    """
    shown = visible_sources(rows.sources)
    known_types = {row["source_id"]: row["source_type"] for row in rows.sources}
    result: dict[str, dict[str, Any]] = {}

    def source_entry(source_id: str) -> dict[str, Any]:
        entry = result.get(source_id)
        if entry is None:
            entry = {
                "type": known_types.get(source_id, DEFAULT_SOURCE_TYPE),
                "app_state_latest": [],
            }
            if with_apps:
                entry["app_info_latest"] = []
                if source_id in shown:
                    entry["others"] = others_of(shown[source_id])
            result[source_id] = entry
        return entry

    for source_id in sorted(shown):
        source_entry(source_id)
    live = [row for row in rows.installations if not row["removed"]]
    for row in sorted(live, key=lambda r: (r["source"], r["name"])):
        source_entry(row["source"])["app_state_latest"].append(state_entry(row))
    if with_apps:
        by_name = installations_by_name(live)
        for row in sorted(rows.listings, key=lambda r: str(r["app_id"])):
            if row["latest_version"] is None:
                continue
            if not is_visible(row, shown, installation_of(row, by_name)):
                continue
            info = (infos or {}).get(row["listing_id"]) or {}
            result[row["source"]]["app_info_latest"].append(latest_summary(row, info))
    return dict(sorted(result.items()))


# --- full entries ---------------------------------------------------------------------------


def full_entry(row: Row, content: Mapping[str, Any] | None) -> dict[str, Any]:
    """chart-repo's ``app_data`` of the latest render, with the listing's current labels.

    ``content`` is the stored content of the rendered manifest (by ``latest_digest``).
    """
    labels = loads(row["labels"]) or []
    manifest = entry_with_labels(content or {}, labels)
    entry = expand_rendered(loads(row["rendered"]) or {}, manifest)
    for holder in (entry.get("raw_data"), (entry.get("app_info") or {}).get("app_entry")):
        if isinstance(holder, dict):
            holder[LABELS_FIELD] = list(labels)
    entry["type"] = LATEST_TYPE
    entry["timestamp"] = unix_seconds(row["updated_at"])
    entry["version"] = row["latest_version"]
    if not isinstance(entry.get("app_simple_info"), dict):
        # derived as chart-repo would; from the offered entry when the render holds none
        entry["app_simple_info"] = simple_info_of(entry) or simple_info_of(
            {"raw_data": manifest, "version": row["latest_version"]}
        )
    return entry


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
            found.append(full_entry(row, contents.get(row["latest_digest"])))
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
