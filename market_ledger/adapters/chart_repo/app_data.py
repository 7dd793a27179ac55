"""The wire shapes of an app on its way through chart-repo.

- :func:`pending_entry_of` builds the pending wrapper posted to ``dcr/sync-app`` from a catalog
  entry, its ids read by the domain's rule (:mod:`market_ledger.domain.catalog_entry`);
- :func:`incomplete_reason` is the "hydration complete" predicate, plus one rule of this
  project: a render without ``raw_data`` is incomplete (the replaced system turned such renders
  into pending entries it could neither render nor remove);
- ``app_simple_info`` is derived by the domain's :func:`simple_info_of`.

Deliberate differences from the replaced builder: a ``title`` given as a language map is kept
(it was ignored), and ``createTime``/``updateTime`` keep the catalog's numbers (they were
replaced by the sync time). Nothing here reads the clock, so equal input gives equal output.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from market_ledger.domain.catalog_entry import (
    APP_ID_FIELDS,
    LATEST_TYPE,
    LOCALIZED_FIELDS,
    PENDING_TYPE,
    app_id_of,
    localized_map,
    localized_text,
    simple_info_of,
)

__all__ = [
    "LATEST_TYPE",
    "PENDING_TYPE",
    "incomplete_reason",
    "is_hydration_complete",
    "localized_text",
    "normalised_entry",
    "pending_entry_of",
    "simple_info_of",
]


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _primary_id(entry: Mapping[str, Any]) -> str:
    """The domain's app id; chart-repo's own ``app_id`` field when the entry has neither."""
    return app_id_of(entry) or _text(entry.get("app_id"))


def normalised_entry(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A catalog entry as ``raw_data``: ids and name filled in, localized texts as maps."""
    primary_id = _primary_id(entry)
    primary_name = _text(entry.get("name")) or _text(entry.get("title"))
    if not primary_id and not primary_name:
        raise ValueError("a catalog entry needs an id, appID, app_id, name or title")
    primary_id = primary_id or primary_name
    primary_name = primary_name or primary_id
    raw = dict(entry)  # only top-level fields are replaced below, never changed in place
    for field in APP_ID_FIELDS:
        if not _text(raw.get(field)):
            raw[field] = primary_id
    if not _text(raw.get("name")):
        raw["name"] = primary_name
    for field in LOCALIZED_FIELDS:
        if field in raw:
            as_map = localized_map(raw[field])
            if as_map is None:
                del raw[field]
            else:
                raw[field] = as_map
    if not raw.get("title"):
        raw["title"] = {"en-US": primary_name}
    metadata = raw.get("metadata")
    raw["metadata"] = {
        **(metadata if isinstance(metadata, Mapping) else {}),
        "validation_status": "validated",
    }
    return raw


def pending_entry_of(entry: Mapping[str, Any], *, timestamp: int = 0) -> dict[str, Any]:
    """The pending wrapper chart-repo renders from (``app_info_latest_pending_data``)."""
    raw = normalised_entry(entry)
    return {
        "type": PENDING_TYPE,
        "timestamp": timestamp,
        "version": _text(raw.get("version")),
        "raw_data": raw,
        "raw_package": "",
        "values": [],
        "app_info": {"app_entry": dict(raw), "image_analysis": None},
        "rendered_package": "",
    }


def incomplete_reason(app_data: Mapping[str, Any]) -> str | None:
    """Why a rendered ``app_data`` is not complete, or ``None`` when it is."""
    if not isinstance(app_data.get("raw_data"), Mapping):
        return "raw_data is missing"
    for field in ("raw_package", "rendered_package"):
        value = app_data.get(field)
        if not isinstance(value, str) or not value:
            return f"{field} is empty"
    app_info = app_data.get("app_info")
    if not isinstance(app_info, Mapping):
        return "app_info is missing"
    analysis = app_info.get("image_analysis")
    if not isinstance(analysis, Mapping):
        return "app_info.image_analysis is missing"
    images = analysis.get("images")
    if images is not None and not isinstance(images, Mapping):
        return "app_info.image_analysis.images is not an object"
    total = analysis.get("total_images")
    counted = isinstance(total, int | float) and not isinstance(total, bool) and total > 0
    if not counted and images is None:
        return "app_info.image_analysis has no images and total_images is 0"
    return None


def is_hydration_complete(app_data: Mapping[str, Any]) -> bool:
    return incomplete_reason(app_data) is None
