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

ENTRY_PATHS = (("raw_data",), ("app_info", "app_entry"))
OMITTED = "entry_copies_omitted"


def compact_rendered(app_data: Mapping[str, Any], manifest: Mapping[str, Any]) -> dict[str, Any]:
    compact = copy.deepcopy(dict(app_data))
    omitted = []
    for path in ENTRY_PATHS:
        parent: Any = compact
        for key in path[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else None
        if isinstance(parent, dict) and parent.get(path[-1]) == manifest:
            del parent[path[-1]]
            omitted.append(".".join(path))
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
