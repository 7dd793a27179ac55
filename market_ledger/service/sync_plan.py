"""Phase 1's decisions as a pure function: a fetched catalog -> the commands to emit.

The domain would refuse repeated offers anyway; comparing with the views first only spares
it thousands of commands that change nothing on a catalog with one new app.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from market_ledger.domain.decider import Command
from market_ledger.domain.listing import DelistApp, OfferApp
from market_ledger.domain.manifest import Manifest
from market_ledger.projections.work_queries import OfferedState

MISSING = "missing from catalog"


def offer_changes_something(manifest: Manifest, current: OfferedState | None) -> bool:
    if current is None or current.withdrawn:
        return True
    if (manifest.version, manifest.digest, manifest.labels) != (
        current.version,
        current.digest,
        current.labels,
    ):
        return True
    return current.delisted and not manifest.delisting  # it is back: relist it


def plan_catalog(
    source_id: str,
    manifests: Mapping[str, Manifest],
    users: Iterable[str],
    offered: Mapping[tuple[str, str], OfferedState],
) -> list[Command]:
    """Offers of every changed entry to every user, and delistings of what disappeared."""
    commands: list[Command] = []
    for user in users:
        for app_id, manifest in sorted(manifests.items()):
            if offer_changes_something(manifest, offered.get((user, app_id))):
                commands.append(OfferApp(user, source_id, manifest))
    known_users = set(users)
    for (user, app_id), state in sorted(offered.items()):
        if (
            user in known_users
            and app_id not in manifests
            and not state.delisted
            and not state.withdrawn
        ):
            commands.append(DelistApp(user, source_id, app_id, MISSING))
    return commands
