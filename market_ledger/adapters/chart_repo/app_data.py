"""The wire shapes of an app on its way through chart-repo (C §0, §2, §3a).

- :func:`pending_entry_of` builds the pending wrapper posted to ``dcr/sync-app`` from a catalog
  entry (B §5.2, §5.3);
- :func:`incomplete_reason` is the "hydration complete" predicate of C §2, plus one rule of this
  project: a render without ``raw_data`` is incomplete (the replaced system turned such renders
  into pending entries it could neither render nor remove);
- :func:`simple_info_of` derives ``app_simple_info`` by the rules of C §3a.2.

Deliberate differences from the replaced builder: a ``title`` given as a language map is kept
(it was ignored), and ``createTime``/``updateTime`` keep the catalog's numbers (they were
replaced by the sync time). Nothing here reads the clock, so equal input gives equal output.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PENDING_TYPE = "app-info-latest-pending"
LATEST_TYPE = "app-info-latest"
#: language preference for a localized text, then any non-empty value (in key order)
LANGUAGE_FALLBACK = ("en-US", "en", "zh-CN", "zh")
LOCALIZED_FIELDS = ("title", "description", "fullDescription", "upgradeDescription")


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def localized_map(value: Any) -> dict[str, str] | None:
    """A localized text as a language map: a string is English, a map keeps its strings."""
    if isinstance(value, str):
        return {"en-US": value}
    if isinstance(value, Mapping):
        return {str(lang): text for lang, text in value.items() if isinstance(text, str)}
    return None


def localized_text(value: Any) -> str:
    """One text from a localized value: en-US, en, zh-CN, zh, then any non-empty one."""
    if isinstance(value, str):
        return value.strip()
    if not isinstance(value, Mapping):
        return ""
    for lang in LANGUAGE_FALLBACK:
        text = _text(value.get(lang))
        if text:
            return text
    for lang in sorted(value, key=str):
        text = _text(value[lang])
        if text:
            return text
    return ""


def _primary_id(entry: Mapping[str, Any]) -> str:
    for field in ("id", "appID", "app_id"):
        value = _text(entry.get(field))
        if value and (field == "id" or value != "0"):
            return value
    return ""


def normalised_entry(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A catalog entry as ``raw_data``: ids and name filled in, localized texts as maps."""
    primary_id = _primary_id(entry)
    primary_name = _text(entry.get("name")) or _text(entry.get("title"))
    if not primary_id and not primary_name:
        raise ValueError("a catalog entry needs an id, appID, app_id, name or title")
    primary_id = primary_id or primary_name
    primary_name = primary_name or primary_id
    raw = dict(entry)  # only top-level fields are replaced below, never changed in place
    for field in ("id", "appID"):
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


def _first_text(*values: Any) -> str:
    for value in values:
        text = _text(value)
        if text:
            return text
    return ""


def _first_list(*values: Any) -> list[Any]:
    for value in values:
        if isinstance(value, list) and value:
            return list(value)
    return []


def simple_info_of(data: Mapping[str, Any]) -> dict[str, Any] | None:
    """``app_simple_info`` of a pending or rendered entry; ``None`` with neither id nor name."""
    raw_value = data.get("raw_data")
    raw: Mapping[str, Any] = raw_value if isinstance(raw_value, Mapping) else {}
    app_info = data.get("app_info")
    entry_value = app_info.get("app_entry") if isinstance(app_info, Mapping) else None
    entry: Mapping[str, Any] = entry_value if isinstance(entry_value, Mapping) else {}
    app_id = _first_text(raw.get("appID"), raw.get("id"), entry.get("appID"), entry.get("id"))
    app_name = (
        _text(raw.get("name"))
        or localized_text(raw.get("title"))
        or _text(entry.get("name"))
        or localized_text(entry.get("title"))
    )
    if not app_id and not app_name:
        return None

    def language_map(field: str) -> dict[str, str]:
        for source in (raw, entry):
            as_map = localized_map(source.get(field))
            if as_map:
                return as_map
        return {}

    return {
        "app_id": app_id,
        "app_name": app_name,
        "app_icon": _first_text(raw.get("icon"), entry.get("icon")),
        "app_description": language_map("description"),
        "app_version": _first_text(raw.get("version"), entry.get("version"), data.get("version")),
        "app_title": language_map("title"),
        "categories": _first_list(raw.get("categories"), entry.get("categories")),
        "support_arch": _first_list(raw.get("supportArch"), entry.get("supportArch")),
    }
