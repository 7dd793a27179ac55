"""What a user can see: the one rule shared by the catalog view and the user hash.

A listing is visible when it is not withdrawn, its source is configured and active, and it
is not delisted, unless the user has it installed: an installed app stays visible with its
label. Deciding this in the view, not in the listing, means an uninstall after a delisting
hides the app without another event.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from market_ledger.projections.rows import Row

UNINSTALLED = "uninstalled"


def is_installed(installation: Mapping[str, Any] | None) -> bool:
    return (
        installation is not None
        and not installation["removed"]
        and installation["state"] != UNINSTALLED
    )


def installations_by_name(rows: Iterable[Row]) -> dict[str, list[Row]]:
    by_name: dict[str, list[Row]] = {}
    for row in rows:
        if not row["removed"]:
            by_name.setdefault(row["name"], []).append(row)
    return by_name


def installation_of(listing: Mapping[str, Any], by_name: Mapping[str, list[Row]]) -> Row | None:
    """The installation of the listing's app from the listing's source.

    An installation whose source is unknown (``""``: system apps, middlewares) matches the
    app of that name in any source.
    """
    candidates = by_name.get(listing["name"], ())
    for row in candidates:
        if row["source"] == listing["source"]:
            return row
    for row in candidates:
        if row["source"] == "":
            return row
    return None


def visible_sources(sources: Iterable[Row]) -> dict[str, Row]:
    return {row["source_id"]: row for row in sources if not row["removed"] and row["active"]}


def is_visible(
    listing: Mapping[str, Any],
    sources: Mapping[str, Row],
    installation: Mapping[str, Any] | None,
) -> bool:
    if listing["withdrawn"] or listing["source"] not in sources:
        return False
    return not listing["delisted"] or is_installed(installation)
