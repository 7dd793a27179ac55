"""How a catalog summary and its detail entry become one catalog entry.

Chosen on purpose (the system this replaces copied a fixed list of detail keys and lost the
rest):

- the detail is the fuller record, so its values win, and every detail key is kept, including
  ``apiVersion``, ``ports``, ``tailscale``, ``envs``, ``subCharts`` and keys this project does
  not know yet;
- ``title``, ``description``, ``fullDescription`` and ``upgradeDescription`` come from the
  summary when the summary has them, as the replaced system did (the market curates these texts in
  the catalog); the detail only fills them in when the summary has none;
- an empty detail value (``null``, ``""``, ``[]``, ``{}``) never erases a summary value:
  a detail ``appLabels: []`` keeps the summary's ``["suspend"]``; ``false`` and ``0`` are real
  values and do win;
- keys only the summary has are kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SUMMARY_OWNED_FIELDS = frozenset({"title", "description", "fullDescription", "upgradeDescription"})


def is_empty(value: object) -> bool:
    """``null``, ``""``, ``[]`` or ``{}``; ``false`` and ``0`` are values."""
    if value is None:
        return True
    if isinstance(value, str | list | dict):
        return len(value) == 0
    return False


def merge_detail(summary: Mapping[str, Any], detail: Mapping[str, Any]) -> dict[str, Any]:
    """The entry to offer: ``detail`` over ``summary`` by the rules in this module's docstring."""
    merged = dict(summary)
    for key, value in detail.items():
        summary_has = summary.get(key) is not None
        if key in SUMMARY_OWNED_FIELDS and summary_has:
            continue
        if is_empty(value) and summary_has:
            continue
        merged[key] = value
    return merged
