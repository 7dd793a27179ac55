"""The per-user content hash that clients poll to know when to refetch.

A sha256 over a canonical, sorted encoding of what the user can see: the latest entries (their
version, manifest digest, rendered digest and labels), the installed states without volatile
progress and timestamps, and the extras digest of each visible source. Pending, failed and
parked offers do not change what the user sees until they render, so they are not hashed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from market_ledger.domain.canonical import digest_of
from market_ledger.projections.rows import Row, loads
from market_ledger.projections.visibility import (
    installation_of,
    installations_by_name,
    is_visible,
    visible_sources,
)


def _entrance_essentials(entrances: list[dict[str, Any]]) -> list[list[Any]]:
    return sorted(
        [
            str(e.get("name", "")),
            str(e.get("state", "")),
            str(e.get("url", "")),
            bool(e.get("invisible", False)),
        ]
        for e in entrances
    )


def user_hash(listings: Iterable[Row], installations: Iterable[Row], sources: Iterable[Row]) -> str:
    shown_sources = visible_sources(sources)
    installation_rows = [row for row in installations if not row["removed"]]
    by_name = installations_by_name(installation_rows)
    apps = sorted(
        [
            row["source"],
            row["app_id"],
            row["latest_version"],
            row["latest_digest"],
            row["rendered_digest"],
            loads(row["labels"]),
            bool(row["delisted"]),
        ]
        for row in listings
        if row["latest_version"] is not None
        and is_visible(row, shown_sources, installation_of(row, by_name))
    )
    installed = sorted(
        [
            row["source"],
            row["name"],
            row["state"],
            row["op_type"],
            row["app_version"],
            _entrance_essentials(loads(row["entrances"])),
        ]
        for row in installation_rows
    )
    extras = sorted(
        [source_id, row["source_type"], row["extras_digest"]]
        for source_id, row in shown_sources.items()
    )
    return digest_of({"apps": apps, "installed": installed, "sources": extras})
