"""Phase 1's decisions as a pure function: a fetched catalog -> the commands to emit.

Whether an offer or a delisting would change a listing is the domain's to say: each command
is decided against the listing as the views last saw it, and only those that would produce
events are sent. That spares the handler thousands of commands that change nothing on a
catalog with one new app, while the handler still decides each one on the stream itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from market_ledger.domain import listing
from market_ledger.domain.decider import Command, DecisionContext
from market_ledger.domain.listing import DelistApp, ListingCommand, ListingState, OfferApp
from market_ledger.domain.manifest import Manifest

MISSING = "missing from catalog"
#: the events decided here are only counted, never stored, so their moment does not matter
_PLANNING = DecisionContext(at=datetime(2000, 1, 1, tzinfo=UTC))


def changes_something(command: ListingCommand, current: ListingState | None) -> bool:
    """Whether the domain would record anything for ``command`` on the listing ``current``."""
    return bool(listing.decide(command, current, _PLANNING))


def plan_catalog(
    source_id: str,
    manifests: Mapping[str, Manifest],
    users: Iterable[str],
    offered: Mapping[tuple[str, str], ListingState],
) -> list[Command]:
    """Offers of every changed entry to every user, and delistings of what disappeared."""
    commands: list[Command] = []
    users = list(users)
    for user in users:
        for app_id, manifest in sorted(manifests.items()):
            offer = OfferApp(user, source_id, manifest)
            if changes_something(offer, offered.get((user, app_id))):
                commands.append(offer)
    known_users = set(users)
    for (user, app_id), state in sorted(offered.items()):
        if user in known_users and app_id not in manifests:
            delist = DelistApp(user, source_id, app_id, MISSING)
            if changes_something(delist, state):
                commands.append(delist)
    return commands
