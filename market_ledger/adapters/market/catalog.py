"""A market source's catalog: the validated value objects and the parser of its document.

The document is what ``GET /api/v1/appstore/info`` answers, and what a ``file://``
source holds. Parsing follows the typed decode of the system this replaces: a field of the
wrong JSON type fails the whole catalog, with a reason naming the field. Two rules are
deliberately stricter: a missing ``data`` or ``data.apps``, and a catalog with no valid app, are
failures too, never an authoritative empty catalog (the replaced system wiped every user's
pending list on such answers).

Apps are keyed by the canonical app key of :mod:`market_ledger.domain.manifest` (``id``, else
``appID``, else ``name``). An entry that is not an object or that the domain refuses (no key, no
version, labels of the wrong type, a key longer than the views hold) is left out and reported in
``rejected`` with its reason; so is a second entry with the same app key. An entry is kept as
given, unknown fields included. The checks are those of :mod:`market_ledger.adapters.remote.shapes`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from market_ledger.adapters.remote.shapes import (
    Check,
    ShapeError,
    as_array,
    as_object,
    as_string,
    boolean,
    fields,
    instant,
    json_type,
    map_of,
    number,
    string,
)
from market_ledger.domain.manifest import InvalidManifest, Manifest
from market_ledger.service.ports import RemoteError

log = logging.getLogger(__name__)

#: the catalog sections besides the apps, in the order the domain lists them
EXTRAS_FIELDS = ("topics", "topic_lists", "recommends", "pages", "tags", "tops", "latest")
OBJECT_SECTIONS = ("topics", "topic_lists", "recommends", "pages", "tags")


@attrs.frozen
class Catalog:
    """One fetched catalog: its apps, its extras, and what the remote says about it."""

    apps: Mapping[str, Mapping[str, Any]]
    extras: Mapping[str, Any]
    remote_hash: str
    catalog_version: str
    last_updated: datetime | None = None
    #: catalog key -> why the entry was left out
    rejected: Mapping[str, str] = attrs.field(factory=dict)
    #: app keys whose entry ``id`` equals its catalog key: the ones details are asked for
    detail_ids: tuple[str, ...] = ()


@attrs.frozen
class DetailReport:
    """The outcome of the detail requests: what came back, and what did not, and why."""

    apps: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)
    #: ids the remote said it does not know
    not_found: tuple[str, ...] = ()
    #: app id -> why its detail is missing (batch failed after its attempts, bad entry, ...)
    failures: Mapping[str, str] = attrs.field(factory=dict)

    @property
    def complete(self) -> bool:
        return not self.failures


# --- the shapes of the sections -----------------------------------------------------------------


_localized = map_of(string)

# Timestamps inside the sections are only required to be strings: the notes do not establish
# that the replaced system decoded them as typed times, and a stricter rule would fail a whole
# catalog over a tag's date.
_TOPIC_DATA = fields(
    {
        **{
            name: string
            for name in (
                "group",
                "title",
                "des",
                "iconimg",
                "detailimg",
                "richtext",
                "mobileDetailImg",
                "mobileRichtext",
                "backgroundColor",
                "apps",
            )
        },
        "isdelete": boolean,
    }
)
_SECTION_CHECKS: dict[str, Check] = {
    "topics": fields(
        {
            "_id": string,
            "name": string,
            "data": map_of(_TOPIC_DATA),
            "source": string,
            "createdAt": string,
            "updated_at": string,
        }
    ),
    "topic_lists": fields(
        {
            "name": string,
            "type": string,
            "description": string,
            "content": string,
            "title": _localized,
            "source": string,
            "createdAt": string,
            "updated_at": string,
        }
    ),
    "recommends": fields(
        {
            "name": string,
            "description": string,
            "content": string,
            "data": fields({"title": _localized, "description": _localized}),
            "source": string,
            "createdAt": string,
            "updated_at": string,
        }
    ),
    "pages": fields(
        {"category": string, "content": string, "createdAt": string, "updated_at": string}
    ),
    "tags": fields(
        {
            "_id": string,
            "name": string,
            "title": _localized,
            "icon": string,
            "sort": number,
            "source": string,
            "createdAt": string,
            "updated_at": string,
        }
    ),
}
_TOP = fields({"appId": string, "rank": number})


def _section(data: Mapping[str, Any], name: str) -> dict[str, Any]:
    raw = data.get(name)
    if raw is None:
        return {}
    check = _SECTION_CHECKS[name]
    section: dict[str, Any] = {}
    for key, item in as_object(raw, f"data.{name}").items():
        if item is None:
            continue
        check(as_object(item, f"data.{name}.{key}"), f"data.{name}.{key}")
        section[key] = item
    return section


def _tops(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``tops`` is read from ``appId`` and served as ``appid``, as the replaced system did."""
    raw = data.get("tops")
    if raw is None:
        return []
    tops: list[dict[str, Any]] = []
    for index, item in enumerate(as_array(raw, "data.tops")):
        where = f"data.tops[{index}]"
        _TOP(as_object(item, where), where)
        tops.append({"appid": item.get("appId") or "", "rank": item.get("rank") or 0})
    return tops


def _latest(data: Mapping[str, Any]) -> list[str]:
    raw = data.get("latest")
    if raw is None:
        return []
    items = as_array(raw, "data.latest")
    return [as_string(item, f"data.latest[{index}]") for index, item in enumerate(items)]


def parse_extras(data: Mapping[str, Any]) -> dict[str, Any]:
    """The seven extras sections, each present (an absent section is an empty one)."""
    extras: dict[str, Any] = {name: _section(data, name) for name in OBJECT_SECTIONS}
    extras["tops"] = _tops(data)
    extras["latest"] = _latest(data)
    return {name: extras[name] for name in EXTRAS_FIELDS}


def _apps(
    raw_apps: Mapping[str, Any],
) -> tuple[dict[str, dict[str, Any]], dict[str, str], list[str]]:
    apps: dict[str, dict[str, Any]] = {}
    first_key: dict[str, str] = {}
    rejected: dict[str, str] = {}
    detail_ids: list[str] = []
    for key in sorted(raw_apps):
        entry = raw_apps[key]
        if not isinstance(entry, dict):
            rejected[key] = f"entry must be an object, got {json_type(entry)}"
            continue
        try:
            manifest = Manifest.from_entry(entry)
        except InvalidManifest as error:
            rejected[key] = str(error)
            continue
        if manifest.app_id in apps:
            first = first_key[manifest.app_id]
            rejected[key] = f"duplicate app key {manifest.app_id!r} (already under {first!r})"
            continue
        apps[manifest.app_id] = dict(entry)
        first_key[manifest.app_id] = key
        if entry.get("id") == key:
            detail_ids.append(key)
    return apps, rejected, detail_ids


def parse_catalog_document(document: Any, service: str, url: str) -> Catalog:
    """Validate a catalog document; any problem with the whole is a :class:`RemoteError`."""
    try:
        return _parse(document)
    except ShapeError as error:
        raise RemoteError(service, url, f"wrong shape: {error}") from error
    except _EmptyCatalog as error:
        raise RemoteError(service, url, str(error)) from error


class _EmptyCatalog(ValueError):
    pass


def _parse(document: Any) -> Catalog:
    as_object(document, "the catalog")
    string(document.get("version"), "version")
    string(document.get("hash"), "hash")
    last_updated = instant(document.get("last_updated"), "last_updated", strict=True)
    data = document.get("data")
    if data is None:
        raise ShapeError("data is missing")
    as_object(data, "data")
    raw_apps = data.get("apps")
    if raw_apps is None:
        raise ShapeError("data.apps is missing")
    if not isinstance(raw_apps, dict):
        raise ShapeError(f"data.apps must be an object keyed by app id, got {json_type(raw_apps)}")
    if not raw_apps:
        raise _EmptyCatalog("the catalog has no apps (data.apps is empty)")
    extras = parse_extras(data)
    apps, rejected, detail_ids = _apps(raw_apps)
    for key, reason in rejected.items():
        log.warning("catalog entry %r left out: %s", key, reason)
    if not apps:
        first = next(iter(rejected.items()))
        raise _EmptyCatalog(
            f"none of the {len(raw_apps)} catalog entries is valid "
            f"(first: {first[0]!r}: {first[1]})"
        )
    return Catalog(
        apps=apps,
        extras=extras,
        remote_hash=document.get("hash") or "",
        catalog_version=document.get("version") or "",
        last_updated=last_updated,
        rejected=rejected,
        detail_ids=tuple(detail_ids),
    )
