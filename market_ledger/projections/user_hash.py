"""The per-user content hash that clients poll to know when to refetch.

A sha256 over a canonical, sorted encoding of what the user can see: the latest entries (their
version, manifest digest, rendered digest and labels), the installed states without volatile
progress and timestamps, and the extras digest of each visible source. Pending, failed and
parked offers do not change what the user sees until they render, so they are not hashed.

A row enters the hash through its *part*: the few fields visibility needs and its essentials
(what of it is hashed, decoded once). Parts depend on their row alone, so a projector may keep
them between batches and recompute a user's hash from the parts of the rows that changed and
those it kept (:mod:`market_ledger.projections.hash_rows`); the hash is the same either way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from market_ledger.domain.canonical import canonical_json
from market_ledger.projections.rows import Row, loads, text_digest
from market_ledger.projections.visibility import (
    installation_of,
    installations_by_name,
    is_visible,
    visible_sources,
)

#: a row as the hash sees it: what visibility reads, ``essentials``, what is hashed (its sort
#: key), and ``encoded``, their canonical JSON
Part = dict[str, Any]


def _part(row: Mapping[str, Any], fields: tuple[str, ...], essentials: list[Any]) -> Part:
    part = {field: row[field] for field in fields}
    part["essentials"] = essentials
    part["encoded"] = canonical_json(essentials)
    return part


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


def hashed(listing: Mapping[str, Any]) -> bool:
    """Whether a listing row counts at all: only rendered listings do."""
    return listing["latest_version"] is not None


def listing_part(row: Mapping[str, Any]) -> Part:
    """The part of a rendered listing row."""
    return _part(
        row,
        ("name", "source", "withdrawn", "delisted"),
        [
            row["source"],
            row["app_id"],
            row["latest_version"],
            row["latest_digest"],
            row["rendered_digest"],
            loads(row["labels"]),
            bool(row["delisted"]),
        ],
    )


def installation_part(row: Mapping[str, Any]) -> Part:
    """The part of an installation row."""
    return _part(
        row,
        ("name", "source", "state", "removed"),
        [
            row["source"],
            row["name"],
            row["state"],
            row["op_type"],
            row["app_version"],
            _entrance_essentials(loads(row["entrances"])),
        ],
    )


def hash_of_parts(
    listings: Iterable[Part], installations: Iterable[Part], shown_sources: Mapping[str, Row]
) -> str:
    """The hash of a user from the parts of their rendered listings and their installations
    (in any order), given the visible sources (:func:`visible_sources`).

    It is the digest of the canonical JSON of ``{"apps": [...], "installed": [...],
    "sources": [...]}``, each list sorted, written from the parts' encodings: the canonical
    encoding of a list is its items' encodings, in order, between brackets.
    """
    installed = [part for part in installations if not part["removed"]]
    by_name = installations_by_name(installed)
    apps = [
        part for part in listings if is_visible(part, shown_sources, installation_of(part, by_name))
    ]
    extras = sorted(
        [source_id, row["source_type"], row["extras_digest"]]
        for source_id, row in shown_sources.items()
    )
    return text_digest(
        f'{{"apps":{_joined(apps)},"installed":{_joined(installed)},'
        f'"sources":{canonical_json(extras)}}}'
    )


def _joined(parts: list[Part]) -> str:
    ordered = sorted(parts, key=lambda part: part["essentials"])
    return "[" + ",".join(part["encoded"] for part in ordered) + "]"


def user_hash(listings: Iterable[Row], installations: Iterable[Row], sources: Iterable[Row]) -> str:
    """The hash of a user from their listing and installation rows and every source row."""
    return hash_of_parts(
        (listing_part(row) for row in listings if hashed(row)),
        (installation_part(row) for row in installations),
        visible_sources(sources),
    )
