"""A market source's catalog: the validated value objects and the parser of its document.

The document is what ``GET /api/v1/appstore/info`` answers, and what a ``file://``
source holds. Parsing follows the typed decode of the system this replaces: a field of the
wrong JSON type fails the whole catalog, with a reason naming the field. Two rules are
deliberately stricter: a missing ``data`` or ``data.apps``, and a catalog with no valid app, are
failures too, never an authoritative empty catalog (the replaced system wiped every user's
pending list on such answers).

Apps are keyed by the canonical app key of :mod:`market_ledger.domain.manifest` (``id``, else
``appID``, else
``name``). An entry that is not an object or that the domain refuses (no key, no version, labels
of the wrong type, a key longer than the views hold) is left out and reported in ``rejected``
with its reason; so is a second entry with the same app key.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import attrs

from market_ledger.adapters.remote.client import json_type
from market_ledger.domain.canonical import InvalidInstant, parse_instant
from market_ledger.domain.manifest import InvalidManifest, Manifest
from market_ledger.service.ports import RemoteError

log = logging.getLogger(__name__)

#: the catalog sections besides the apps, in the order the domain lists them
EXTRAS_FIELDS = ("topics", "topic_lists", "recommends", "pages", "tags", "tops", "latest")
OBJECT_SECTIONS = ("topics", "topic_lists", "recommends", "pages", "tags")

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


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


# --- the shape checks ---------------------------------------------------------------------------


class ShapeError(ValueError):
    """A field of the catalog document has the wrong type; the message names it."""


Check = Callable[[Any, str], None]


def _string(value: Any, where: str) -> None:
    if value is not None and not isinstance(value, str):
        raise ShapeError(f"{where} must be a string, got {json_type(value)}")


def _number(value: Any, where: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise ShapeError(f"{where} must be a number, got {json_type(value)}")


def _boolean(value: Any, where: str) -> None:
    if value is not None and not isinstance(value, bool):
        raise ShapeError(f"{where} must be a boolean, got {json_type(value)}")


def _map_of(check: Check) -> Check:
    def checked(value: Any, where: str) -> None:
        if value is None:
            return
        if not isinstance(value, dict):
            raise ShapeError(f"{where} must be an object, got {json_type(value)}")
        for key, item in value.items():
            check(item, f"{where}.{key}")

    return checked


def _fields(spec: Mapping[str, Check]) -> Check:
    def checked(value: Any, where: str) -> None:
        if value is None:
            return
        if not isinstance(value, dict):
            raise ShapeError(f"{where} must be an object, got {json_type(value)}")
        for field, check in spec.items():
            check(value.get(field), f"{where}.{field}")

    return checked


_localized = _map_of(_string)

# Timestamps inside the sections are only required to be strings: the notes do not establish
# that the replaced system decoded them as typed times, and a stricter rule would fail a whole
# catalog over a tag's date.
_TOPIC_DATA = _fields(
    {
        **{
            name: _string
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
        "isdelete": _boolean,
    }
)
_SECTION_CHECKS: dict[str, Check] = {
    "topics": _fields(
        {
            "_id": _string,
            "name": _string,
            "data": _map_of(_TOPIC_DATA),
            "source": _string,
            "createdAt": _string,
            "updated_at": _string,
        }
    ),
    "topic_lists": _fields(
        {
            "name": _string,
            "type": _string,
            "description": _string,
            "content": _string,
            "title": _localized,
            "source": _string,
            "createdAt": _string,
            "updated_at": _string,
        }
    ),
    "recommends": _fields(
        {
            "name": _string,
            "description": _string,
            "content": _string,
            "data": _fields({"title": _localized, "description": _localized}),
            "source": _string,
            "createdAt": _string,
            "updated_at": _string,
        }
    ),
    "pages": _fields(
        {"category": _string, "content": _string, "createdAt": _string, "updated_at": _string}
    ),
    "tags": _fields(
        {
            "_id": _string,
            "name": _string,
            "title": _localized,
            "icon": _string,
            "sort": _number,
            "source": _string,
            "createdAt": _string,
            "updated_at": _string,
        }
    ),
}
_TOP = _fields({"appId": _string, "rank": _number})


def _timestamp(value: Any, where: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _RFC3339.match(value.strip()):
        shown = repr(value) if isinstance(value, str) else json_type(value)
        raise ShapeError(f"{where} must be an RFC 3339 time, got {shown}")
    try:
        return parse_instant(value)
    except InvalidInstant as error:
        raise ShapeError(f"{where} must be a usable RFC 3339 time: {error}") from None


def _section(data: Mapping[str, Any], name: str) -> dict[str, Any]:
    raw = data.get(name)
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ShapeError(f"data.{name} must be an object, got {json_type(raw)}")
    check = _SECTION_CHECKS[name]
    section: dict[str, Any] = {}
    for key, item in raw.items():
        if item is None:
            continue
        if not isinstance(item, dict):
            raise ShapeError(f"data.{name}.{key} must be an object, got {json_type(item)}")
        check(item, f"data.{name}.{key}")
        section[key] = item
    return section


def _tops(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``tops`` is read from ``appId`` and served as ``appid``, as the replaced system did."""
    raw = data.get("tops")
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ShapeError(f"data.tops must be an array, got {json_type(raw)}")
    tops: list[dict[str, Any]] = []
    for index, item in enumerate(raw):
        where = f"data.tops[{index}]"
        if not isinstance(item, dict):
            raise ShapeError(f"{where} must be an object, got {json_type(item)}")
        _TOP(item, where)
        tops.append({"appid": item.get("appId") or "", "rank": item.get("rank") or 0})
    return tops


def _latest(data: Mapping[str, Any]) -> list[str]:
    raw = data.get("latest")
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ShapeError(f"data.latest must be an array, got {json_type(raw)}")
    for index, item in enumerate(raw):
        if not isinstance(item, str):
            raise ShapeError(f"data.latest[{index}] must be a string, got {json_type(item)}")
    return list(raw)


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
    if not isinstance(document, dict):
        raise ShapeError(f"the catalog must be an object, got {json_type(document)}")
    _string(document.get("version"), "version")
    _string(document.get("hash"), "hash")
    last_updated = _timestamp(document.get("last_updated"), "last_updated")
    data = document.get("data")
    if data is None:
        raise ShapeError("data is missing")
    if not isinstance(data, dict):
        raise ShapeError(f"data must be an object, got {json_type(data)}")
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
