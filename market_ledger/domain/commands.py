"""What can be asked of the ledger.

A command is a request; the aggregate it targets decides, from its own history, whether it
produces events. Commands are plain attrs values, built by the pipeline, the NATS intake,
the HTTP API or the CLI.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import cached_property
from typing import Any
from uuid import UUID

import attrs

from market_ledger.domain import identity
from market_ledger.domain.manifest import Manifest


@attrs.frozen
class Command:
    @cached_property
    def aggregate_id(self) -> UUID:
        raise NotImplementedError

    def prerequisites(self) -> tuple[Command, ...]:
        """Commands handled just before this one, in the same transaction."""
        return ()


# --- users -----------------------------------------------------------------------------------


@attrs.frozen
class RegisterUser(Command):
    name: str
    role: str = "normal"
    zone: str = ""

    @cached_property
    def aggregate_id(self) -> UUID:
        return identity.user_id(self.name)


@attrs.frozen
class RemoveUser(Command):
    name: str

    @cached_property
    def aggregate_id(self) -> UUID:
        return identity.user_id(self.name)


@attrs.frozen
class MarkUserDirty(Command):
    """Recompute and re-announce the user's hash (an operator's request)."""

    name: str
    reason: str = "operator request"

    @cached_property
    def aggregate_id(self) -> UUID:
        return identity.user_id(self.name)


# --- market sources --------------------------------------------------------------------------


@attrs.frozen
class ConfigureSource(Command):
    source_id: str
    source_type: str
    base_url: str
    priority: int = 0
    active: bool = True

    @cached_property
    def aggregate_id(self) -> UUID:
        return identity.market_source_id(self.source_id)


@attrs.frozen
class RemoveSource(Command):
    source_id: str

    @cached_property
    def aggregate_id(self) -> UUID:
        return identity.market_source_id(self.source_id)


@attrs.frozen
class ObserveCatalog(Command):
    """A remote catalog was fetched and stored: remember its hash, version and size."""

    source_id: str
    remote_hash: str
    catalog_version: str
    app_count: int

    @cached_property
    def aggregate_id(self) -> UUID:
        return identity.market_source_id(self.source_id)


@attrs.frozen
class UpdateSourceExtras(Command):
    """Topics, recommends, pages, tags, tops and latest of a source."""

    source_id: str
    extras: Mapping[str, Any]

    @cached_property
    def aggregate_id(self) -> UUID:
        return identity.market_source_id(self.source_id)


# --- listings: one app of one source, for one user -------------------------------------------


@attrs.frozen
class ListingCommand(Command):
    user: str
    source: str
    app_id: str

    @cached_property
    def aggregate_id(self) -> UUID:
        return identity.listing_id(self.user, self.source, self.app_id)


@attrs.frozen(init=False)
class OfferApp(ListingCommand):
    """A source offers this catalog entry to this user (new, changed, or the same again)."""

    manifest: Manifest

    def __init__(self, user: str, source: str, manifest: Manifest) -> None:
        self.__attrs_init__(user=user, source=source, app_id=manifest.app_id, manifest=manifest)

    def prerequisites(self) -> tuple[Command, ...]:
        return (RecordManifest(self.manifest),)


@attrs.frozen
class RecordManifest(Command):
    """Store the content an offer names (once: recording it again produces nothing)."""

    manifest: Manifest

    @cached_property
    def aggregate_id(self) -> UUID:
        return identity.manifest_id(self.manifest.digest)


@attrs.frozen
class DelistApp(ListingCommand):
    reason: str = "missing from catalog"


@attrs.frozen
class RecordRender(ListingCommand):
    """The renderer produced this version; accepted only while it is the pending one."""

    version: str
    digest: str
    rendered: Mapping[str, Any]


@attrs.frozen
class RecordRenderFailure(ListingCommand):
    version: str
    digest: str
    step: str
    reason: str


@attrs.frozen
class RetryParked(ListingCommand):
    requested_by: str = "operator"


@attrs.frozen
class UpdateImageInfo(ListingCommand):
    image_name: str
    info: Mapping[str, Any]


@attrs.frozen
class WithdrawListing(ListingCommand):
    """The listing's source or user is gone."""

    reason: str


# --- installations: what app-service says is installed ----------------------------------------


@attrs.frozen
class ObserveInstallationState(Command):
    user: str
    name: str
    state: str
    observed_at: datetime
    source: str = ""
    op_type: str = ""
    progress: str = ""
    version: str = ""
    event_id: str = ""
    origin: str = "app-state"
    raw_app_name: str = ""
    title: str = ""
    entrances: tuple[Mapping[str, Any], ...] = ()
    shared_entrances: tuple[Mapping[str, Any], ...] = ()

    @cached_property
    def aggregate_id(self) -> UUID:
        return identity.installation_id(self.user, self.name)


@attrs.frozen
class RemoveInstallation(Command):
    user: str
    name: str
    observed_at: datetime
    origin: str = "status-correction"

    @cached_property
    def aggregate_id(self) -> UUID:
        return identity.installation_id(self.user, self.name)


# --- feed cursors ------------------------------------------------------------------------------


@attrs.frozen
class ConsumeFeed(Command):
    """The feed's changes up to ``up_to_id`` are consumed; never moves backwards."""

    feed: str
    up_to_id: int

    @cached_property
    def aggregate_id(self) -> UUID:
        return identity.feed_cursor_id(self.feed)
