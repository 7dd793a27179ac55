"""What a render result stores: what the renderer added to the offered entry.

chart-repo answers a render with the catalog entry copied twice (``raw_data`` and
``app_info.app_entry``) around what it actually produced. Neither copy is the offered entry
exactly: the renderer normalises it on the way (ids and name filled in, localized texts as
maps, a validation mark in ``metadata``). So a copy is not stored whole in the ``Rendered``
event: only the top-level fields where it differs from the offered manifest are kept, and
the paths it came from are noted, so that :func:`expand_rendered` puts the copy back, field
for field, when the full entry is read.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

#: the paths of the entry copies left out (each rebuilt from the manifest)
OMITTED = "entry_copies_omitted"
#: path -> how that copy differs from the manifest: ``{"set": {field: value}, "unset": [...]}``
CHANGES = "entry_copy_changes"
COPY_PATHS = ("raw_data", "app_info.app_entry")


def _differences(copied: Mapping[str, Any], manifest: Mapping[str, Any]) -> dict[str, Any]:
    changed = {k: v for k, v in copied.items() if k not in manifest or manifest[k] != v}
    removed = sorted(k for k in manifest if k not in copied)
    found: dict[str, Any] = {}
    if changed:
        found["set"] = changed
    if removed:
        found["unset"] = removed
    return found


def _shares_fields(copied: Mapping[str, Any], manifest: Mapping[str, Any]) -> bool:
    return any(k in manifest and manifest[k] == v for k, v in copied.items())


def _parent(tree: dict[str, Any], dotted: str) -> tuple[dict[str, Any], str] | None:
    keys = dotted.split(".")
    parent: Any = tree
    for key in keys[:-1]:
        parent = parent.get(key) if isinstance(parent, dict) else None
    return (parent, keys[-1]) if isinstance(parent, dict) else None


def compact_rendered(app_data: Mapping[str, Any], manifest: Mapping[str, Any]) -> dict[str, Any]:
    """``app_data`` with each entry copy reduced to how it differs from ``manifest`` (the
    input is not changed); a copy with nothing in common with it is kept whole."""
    compact = copy.deepcopy(dict(app_data))
    omitted: list[str] = []
    changes: dict[str, Any] = {}
    for dotted in COPY_PATHS:
        found = _parent(compact, dotted)
        if found is None:
            continue
        parent, key = found
        copied = parent.get(key)
        if not isinstance(copied, Mapping) or not _shares_fields(copied, manifest):
            continue
        difference = _differences(copied, manifest)
        del parent[key]
        omitted.append(dotted)
        if difference:
            changes[dotted] = difference
    if omitted:
        compact[OMITTED] = omitted
    if changes:
        compact[CHANGES] = changes
    return compact


def expand_rendered(rendered: Mapping[str, Any], manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The render in full: each omitted copy rebuilt from ``manifest`` and its differences.

    A render stored before the differences were kept omits only copies equal to the manifest.
    """
    full = copy.deepcopy(dict(rendered))
    changes = full.pop(CHANGES, {})
    for dotted in full.pop(OMITTED, []):
        parent = full
        keys = dotted.split(".")
        for key in keys[:-1]:
            parent = parent.setdefault(key, {})
        rebuilt = copy.deepcopy(dict(manifest))
        difference = changes.get(dotted, {})
        for key in difference.get("unset", []):
            rebuilt.pop(key, None)
        rebuilt.update(copy.deepcopy(difference.get("set", {})))
        parent[keys[-1]] = rebuilt
    return full
