"""What a render result stores: what the renderer added to the offered entry.

chart-repo answers a render with the catalog entry copied twice (``raw_data`` and
``app_info.app_entry``) around what it actually produced. A copy equal to the offered
manifest is not stored again in the ``Rendered`` event; the paths it came from are noted so
that :func:`expand_rendered` puts the manifest back when the full entry is read.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

OMITTED = "entry_copies_omitted"


def compact_rendered(app_data: Mapping[str, Any], manifest: Mapping[str, Any]) -> dict[str, Any]:
    """``app_data`` without the entry copies equal to ``manifest`` (the input is not changed)."""
    compact = dict(app_data)
    omitted = []
    if compact.get("raw_data") == manifest:
        del compact["raw_data"]
        omitted.append("raw_data")
    app_info = compact.get("app_info")
    if isinstance(app_info, Mapping) and app_info.get("app_entry") == manifest:
        compact["app_info"] = {k: v for k, v in app_info.items() if k != "app_entry"}
        omitted.append("app_info.app_entry")
    if omitted:
        compact[OMITTED] = omitted
    return compact


def expand_rendered(rendered: Mapping[str, Any], manifest: Mapping[str, Any]) -> dict[str, Any]:
    full = copy.deepcopy(dict(rendered))
    for dotted in full.pop(OMITTED, []):
        parent = full
        keys = dotted.split(".")
        for key in keys[:-1]:
            parent = parent.setdefault(key, {})
        parent[keys[-1]] = copy.deepcopy(dict(manifest))
    return full
