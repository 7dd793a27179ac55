"""The rules of a catalog entry, in one place: its app key, its simple info, its full form.

A market source offers entries; chart-repo (or the in-process renderer) renders them into
``app_data``; the market API and the notifications read them back. Each of those steps reads
the same few facts from an entry, so each fact is read here, once:

- the app key: ``id``, else ``appID`` (unless ``"0"``), else ``name``. Matching by id in one
  place and by name in another produced duplicates and lost moves;
- the labels (``appLabels``), kept beside the content and put back when the entry is shown;
- the simple info a list view shows (``app_simple_info``);
- the full entry of a render: the stored render, the offered content put back, the
  listing's current labels, its version and the time of its last change.

Nothing here reads a clock, so equal input gives equal output.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from market_ledger.domain.rendering import expand_rendered

#: the fields the app id is read from, in order; ``name`` is the key when both are unset
APP_ID_FIELDS = ("id", "appID")
NAME_FIELD = "name"
#: an id of ``"0"`` means "no id" (catalogs write it for apps that have none)
UNSET_ID = "0"
LABELS_FIELD = "appLabels"
DELISTING_LABELS = frozenset({"suspend", "remove"})
PENDING_TYPE = "app-info-latest-pending"
LATEST_TYPE = "app-info-latest"
#: language preference for a localized text, then any non-empty value (in key order)
LANGUAGE_FALLBACK = ("en-US", "en", "zh-CN", "zh")
LOCALIZED_FIELDS = ("title", "description", "fullDescription", "upgradeDescription")

TextOf = Callable[[Mapping[str, Any], str], str]


def lenient_text(entry: Mapping[str, Any], field: str) -> str:
    """A field as text: strings and numbers, stripped; anything else is no text."""
    value = entry.get(field)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return ""
    return str(value).strip()


def app_id_field(entry: Mapping[str, Any], text: TextOf = lenient_text) -> str | None:
    """The field the entry's app id is read from, or None when it has no id."""
    for field in APP_ID_FIELDS:
        value = text(entry, field)
        if value and value != UNSET_ID:
            return field
    return None


def app_id_of(entry: Mapping[str, Any], text: TextOf = lenient_text) -> str:
    """The entry's id (``id``, else ``appID``), or ``""``."""
    field = app_id_field(entry, text)
    return "" if field is None else text(entry, field)


def app_key_of(entry: Mapping[str, Any], text: TextOf = lenient_text) -> str:
    """The canonical app key: ``id``, else ``appID`` (unless "0"), else ``name``."""
    return app_id_of(entry, text) or text(entry, NAME_FIELD)


def is_delisting(labels: tuple[str, ...] | list[str]) -> bool:
    """``suspend`` or ``remove``, in any case, take an app off the market."""
    return any(label.strip().lower() in DELISTING_LABELS for label in labels)


def entry_with_labels(
    content: Mapping[str, Any], labels: list[str] | tuple[str, ...]
) -> dict[str, Any]:
    """The catalog entry again, from its stored content and the listing's labels."""
    entry = dict(content)
    if labels:
        entry[LABELS_FIELD] = list(labels)
    return entry


# --- localized texts ---------------------------------------------------------------------------


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


# --- simple info -------------------------------------------------------------------------------


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


def _entries_of(data: Mapping[str, Any]) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """The two copies of the entry a pending or rendered ``app_data`` holds."""
    raw_value = data.get("raw_data")
    raw: Mapping[str, Any] = raw_value if isinstance(raw_value, Mapping) else {}
    app_info = data.get("app_info")
    entry_value = app_info.get("app_entry") if isinstance(app_info, Mapping) else None
    entry: Mapping[str, Any] = entry_value if isinstance(entry_value, Mapping) else {}
    return raw, entry


def simple_info_of(data: Mapping[str, Any]) -> dict[str, Any] | None:
    """``app_simple_info`` of a pending or rendered entry; ``None`` with neither id nor name."""
    raw, entry = _entries_of(data)
    app_id = app_id_of(raw) or app_id_of(entry)
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


# --- the full entry ----------------------------------------------------------------------------


def full_entry(
    rendered: Mapping[str, Any],
    content: Mapping[str, Any] | None,
    labels: list[str] | tuple[str, ...],
    *,
    version: str,
    timestamp: int,
) -> dict[str, Any]:
    """A render's ``app_data`` in full, as every reader shows it.

    ``content`` is the offered entry the render was made from (without labels): the render
    stores only what the renderer added, so the entry copies are put back from it. The
    listing's current ``labels`` replace the ones the render saw; ``timestamp`` (unix
    seconds) is when the listing last changed.
    """
    manifest = entry_with_labels(content or {}, labels)
    entry = expand_rendered(rendered, manifest)
    raw, app_entry = entry.get("raw_data"), (entry.get("app_info") or {}).get("app_entry")
    for holder in (raw, app_entry):
        if isinstance(holder, dict):
            holder[LABELS_FIELD] = list(labels)
    entry["type"] = LATEST_TYPE
    entry["timestamp"] = timestamp
    entry["version"] = version
    if not isinstance(entry.get("app_simple_info"), dict):
        # derived as chart-repo would; from the offered entry when the render holds none
        entry["app_simple_info"] = simple_info_of(entry) or simple_info_of(
            {"raw_data": manifest, "version": version}
        )
    return entry
