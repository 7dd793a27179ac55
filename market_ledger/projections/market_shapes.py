"""The market's read shapes, one builder each, for the market API and the notifications alike.

- ``app_info_latest``: the rendered latest entries a user can see, reduced to ``{type,
  timestamp, version, app_simple_info}``, with the listing's current labels as
  ``app_simple_info.app_labels``; in full (``/apps``, notifications) by
  :func:`market_ledger.domain.catalog_entry.full_entry`;
- ``app_state_latest``: an installed app's state, in the app-service state shape, from a view
  row or from the event itself (a notification describes the event it announces, not the
  views' state, which may have moved on);
- ``others``: the source's extras (topics, topic lists, recommends, pages, tops, latest, tags)
  with the remote catalog's hash and version.

A client reads the catalog once and then follows the notifications, so both are built here:
times are RFC 3339 in UTC with the fraction's trailing zeros trimmed (as Go writes times),
``timestamp`` is the time of the listing's last change in unix seconds.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

import attrs

from market_ledger.domain.canonical import format_instant, parse_instant
from market_ledger.domain.catalog_entry import LATEST_TYPE, full_entry
from market_ledger.domain.installation import StateObserved
from market_ledger.projections.queries import UserRows
from market_ledger.projections.rows import Row, loads
from market_ledger.projections.visibility import (
    installation_of,
    installations_by_name,
    is_installed,
    is_visible,
    visible_sources,
)

STATE_TYPE = "app-state-latest"
#: the type the replaced system gave a source it created on the fly (e.g. ``""``)
DEFAULT_SOURCE_TYPE = "remote"
EXTRAS_FIELDS = ("topics", "topic_lists", "recommends", "pages", "tops", "latest", "tags")


@lru_cache(maxsize=4096)  # the rows of one batch share their instant
def unix_seconds(instant: str) -> int:
    return int(parse_instant(instant).timestamp())


@lru_cache(maxsize=4096)
def go_time(instant: str) -> str:
    """A stored instant (fixed six fraction digits) as Go writes a time: zeros trimmed."""
    head, dot, fraction = instant.removesuffix("Z").partition(".")
    fraction = fraction.rstrip("0")
    return f"{head}.{fraction}Z" if dot and fraction else f"{head}Z"


# --- installed states --------------------------------------------------------------------------


def entrance_status(entrance: Mapping[str, Any]) -> dict[str, Any]:
    """An entrance in app-service's shape; its id is the first label of its URL when the
    state gave none."""
    url = str(entrance.get("url") or "")
    return {
        "id": str(entrance.get("id") or (url.split(".", 1)[0] if url else "")),
        "name": str(entrance.get("name") or ""),
        "state": str(entrance.get("state") or ""),
        "statusTime": str(entrance.get("statusTime") or ""),
        "reason": str(entrance.get("reason") or ""),
        "url": url,
        "invisible": bool(entrance.get("invisible", False)),
    }


@attrs.frozen
class InstalledState:
    """What ``app_state_latest`` says of one installed app."""

    name: str
    raw_app_name: str
    title: str
    state: str
    progress: str
    op_type: str
    version: str
    #: as stored (``format_instant``)
    observed_at: str
    entrances: Sequence[Mapping[str, Any]]
    shared_entrances: Sequence[Mapping[str, Any]]

    @classmethod
    def of_row(cls, row: Row) -> InstalledState:
        return cls(
            name=row["name"],
            raw_app_name=row["raw_app_name"],
            title=row["title"],
            state=row["state"],
            progress=row["progress"],
            op_type=row["op_type"],
            version=row["app_version"],
            observed_at=row["observed_at"],
            entrances=loads(row["entrances"]) or [],
            shared_entrances=loads(row["shared_entrances"]) or [],
        )

    @classmethod
    def of_event(cls, event: StateObserved) -> InstalledState:
        return cls(
            name=event.name,
            raw_app_name=event.raw_app_name,
            title=event.title,
            state=event.state,
            progress=event.progress,
            op_type=event.op_type,
            version=event.app_version,
            observed_at=format_instant(event.observed_at),
            entrances=event.entrances,
            shared_entrances=event.shared_entrances,
        )

    @property
    def listed_as(self) -> str:
        """The name or app id of the listing this installation is of."""
        return self.raw_app_name or self.name


def state_entry(installed: InstalledState, latest_version: str | None) -> dict[str, Any]:
    """An installation in the ``app_state_latest`` shape; without an installed version, the
    version of the app's latest entry (``latest_version``, see :func:`listing_of_installed`)."""
    observed = go_time(installed.observed_at)
    status: dict[str, Any] = {
        "name": installed.name,
        "rawAppName": installed.raw_app_name,
        "title": installed.title,
        "state": installed.state,
        "updateTime": observed,
        "statusTime": observed,
        "lastTransitionTime": observed,
        "progress": installed.progress,
        "opType": installed.op_type,
        "entranceStatuses": [entrance_status(e) for e in installed.entrances],
    }
    if installed.shared_entrances:
        status["sharedEntrances"] = [dict(e) for e in installed.shared_entrances]
    return {
        "type": STATE_TYPE,
        "version": installed.version or latest_version or "",
        "status": status,
    }


ListingIndex = dict[tuple[str, str], list[Row]]


def index_latest_listings(listings: Iterable[Row]) -> ListingIndex:
    """(source, app id or name) -> the rendered, not withdrawn listings known by it."""
    index: ListingIndex = {}
    for row in listings:
        if row["withdrawn"] or row["latest_version"] is None:
            continue
        for key in {row["app_id"], row["name"]}:
            index.setdefault((row["source"], key), []).append(row)
    return index


def listing_of_installed(index: ListingIndex, source: str, name: str) -> Row | None:
    """The rendered listing an installation named ``name`` (an app id or a name) is of: the
    one of that app id, else the first by app id of that name."""
    rows = sorted(index.get((source, name), ()), key=lambda r: (r["app_id"] != name, r["app_id"]))
    return rows[0] if rows else None


# --- latest entries ----------------------------------------------------------------------------


def latest_summary(row: Row, simple_info: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "type": LATEST_TYPE,
        "timestamp": unix_seconds(row["updated_at"]),
        "version": row["latest_version"],
        "app_simple_info": {**simple_info, "app_labels": loads(row["labels"]) or []},
    }


def full_entry_of(row: Row, content: Mapping[str, Any] | None) -> dict[str, Any]:
    """The full latest entry of a listing row (``content``: of its ``latest_digest``)."""
    return full_entry(
        loads(row["rendered"]) or {},
        content,
        loads(row["labels"]) or [],
        version=row["latest_version"],
        timestamp=unix_seconds(row["updated_at"]),
    )


def rendered_entry(
    rendered: str, content: Mapping[str, Any] | None, row: Row, version: str, at: datetime
) -> dict[str, Any]:
    """The full entry of a render event, with the listing's labels, stamped with the event."""
    return full_entry(
        loads(rendered) or {},
        content,
        loads(row["labels"]) or [],
        version=version,
        timestamp=int(at.timestamp()),
    )


def stored_simple_info(rendered_text: str | None) -> dict[str, Any] | None:
    """The ``app_simple_info`` chart-repo returned with the render, if it did."""
    rendered = loads(rendered_text)
    if isinstance(rendered, dict):
        info = rendered.get("app_simple_info")
        if isinstance(info, dict):
            return info
    return None


# --- sources -----------------------------------------------------------------------------------


def others_of(source: Row) -> dict[str, Any]:
    extras = loads(source["extras"]) or {}
    others: dict[str, Any] = {"hash": source["remote_hash"], "version": source["catalog_version"]}
    for field in EXTRAS_FIELDS:
        value = extras.get(field)
        others[field] = value if value is not None else []
    return others


def live_installations(installations: Iterable[Row]) -> list[Row]:
    """The installations the market data lists: those not removed."""
    return [row for row in installations if not row["removed"]]


def latest_entries(
    listings: Iterable[Row],
    shown: Mapping[str, Row],
    live: Sequence[Row],
    infos: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Per visible source, the latest entries of the rendered listings the user can see, by
    app id (``shown``: the visible sources; ``live``: the user's installations not removed,
    which keep a delisted app visible; ``infos``: listing id -> simple info of its render)."""
    by_name = installations_by_name(live)
    found: dict[str, list[dict[str, Any]]] = {}
    for row in sorted(listings, key=lambda r: str(r["app_id"])):
        if row["latest_version"] is None:
            continue
        if not is_visible(row, shown, installation_of(row, by_name)):
            continue
        info = (infos or {}).get(row["listing_id"]) or {}
        found.setdefault(row["source"], []).append(latest_summary(row, info))
    return found


def visibility_inputs(shown: Mapping[str, Row], live: Sequence[Row]) -> Hashable:
    """What :func:`latest_entries` takes from the sources and installations to decide which
    listings are visible: while it stays equal, so do the entries of unchanged listings."""
    installed = sorted((row["name"], row["source"], is_installed(row)) for row in live)
    return tuple(sorted(shown)), tuple(installed)


def market_sources(
    rows: UserRows,
    *,
    with_apps: bool,
    infos: Mapping[str, Mapping[str, Any]] | None = None,
    index: ListingIndex | None = None,
    latest: Mapping[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """Per source: type and installed states; with ``with_apps`` also the latest entries
    (``infos``: listing id -> simple info of its latest render) and the extras.

    Every visible source is listed; a source that is not (removed, inactive, or the ``""``
    of apps whose source is unknown) is listed only for the installed states it holds.
    ``index`` (:func:`index_latest_listings`) and ``latest`` (per source, the
    ``app_info_latest`` of :func:`latest_entries`, possibly encoded already) may come
    from a cache, built from the same listing rows; ``rows.listings`` is then not read.
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
    live = live_installations(rows.installations)
    if index is None:
        index = index_latest_listings(rows.listings)
    for row in sorted(live, key=lambda r: (r["source"], r["name"])):
        installed = InstalledState.of_row(row)
        listing = listing_of_installed(index, row["source"], installed.listed_as)
        version = None if listing is None else listing["latest_version"]
        source_entry(row["source"])["app_state_latest"].append(state_entry(installed, version))
    if with_apps:
        if latest is None:
            latest = latest_entries(rows.listings, shown, live, infos)
        for source_id, entries in latest.items():
            result[source_id]["app_info_latest"] = entries
    return dict(sorted(result.items()))
