"""MarketSource: where catalogs come from (a remote market, or a local folder of uploads)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, assert_never
from uuid import UUID

import attrs

from market_ledger.domain import identity
from market_ledger.domain.canonical import digest_of
from market_ledger.domain.decider import (
    Command,
    CommandRejected,
    Decider,
    DecisionContext,
    members,
)
from market_ledger.domain.events import LedgerEvent, Stamper
from market_ledger.domain.redaction import has_credentials, redact_url

SOURCE_TYPES = ("remote", "local")
#: the parts of a source's catalog besides its apps
EXTRAS_FIELDS = ("topics", "topic_lists", "recommends", "pages", "tags", "tops", "latest")


@dataclass(frozen=True)
class SourceEvent(LedgerEvent):
    source_id: str


@dataclass(frozen=True)
class SourceConfigured(SourceEvent):
    TOPIC = "market_source.Configured.v1"
    HISTORY_NAME = "source_configured"
    source_type: str
    base_url: str
    priority: int
    active: bool


@dataclass(frozen=True)
class SourceRemoved(SourceEvent):
    TOPIC = "market_source.Removed.v1"
    HISTORY_NAME = "source_removed"


@dataclass(frozen=True)
class CatalogObserved(SourceEvent):
    TOPIC = "market_source.CatalogObserved.v1"
    HISTORY_NAME = "catalog_observed"
    remote_hash: str
    catalog_version: str
    app_count: int


@dataclass(frozen=True)
class ExtrasUpdated(SourceEvent):
    TOPIC = "market_source.ExtrasUpdated.v1"
    HISTORY_NAME = "extras_updated"
    extras: dict[str, Any]
    digest: str


AnySourceEvent = SourceConfigured | SourceRemoved | CatalogObserved | ExtrasUpdated


@attrs.frozen
class MarketSourceState:
    id: UUID
    version: int
    source_id: str
    source_type: str
    base_url: str
    priority: int
    active: bool
    removed: bool = False
    remote_hash: str = ""
    catalog_version: str = ""
    app_count: int = 0
    extras_digest: str = ""


# --- commands --------------------------------------------------------------------------------


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


MarketSourceCommand = ConfigureSource | RemoveSource | ObserveCatalog | UpdateSourceExtras


def evolve(state: MarketSourceState | None, event: AnySourceEvent) -> MarketSourceState:
    if isinstance(event, SourceConfigured):
        base = state or MarketSourceState(
            id=event.originator_id,
            version=0,
            source_id=event.source_id,
            source_type=event.source_type,
            base_url=event.base_url,
            priority=event.priority,
            active=event.active,
        )
        return attrs.evolve(
            base,
            version=event.originator_version,
            source_type=event.source_type,
            base_url=event.base_url,
            priority=event.priority,
            active=event.active,
            removed=False,
        )
    if state is None:
        raise ValueError(f"{type(event).__name__} before the source was configured")
    version = event.originator_version
    if isinstance(event, SourceRemoved):
        # Forget what was observed, so a source added again is fetched afresh.
        return attrs.evolve(state, version=version, removed=True, remote_hash="", extras_digest="")
    if isinstance(event, CatalogObserved):
        return attrs.evolve(
            state,
            version=version,
            remote_hash=event.remote_hash,
            catalog_version=event.catalog_version,
            app_count=event.app_count,
        )
    if isinstance(event, ExtrasUpdated):
        return attrs.evolve(state, version=version, extras_digest=event.digest)
    assert_never(event)


def _validate(command: ConfigureSource) -> None:
    if not command.source_id.strip():
        raise CommandRejected("a source needs a non-empty id")
    if command.source_type not in SOURCE_TYPES:
        raise CommandRejected(
            f"source {command.source_id!r}: type must be one of {', '.join(SOURCE_TYPES)}, "
            f"got {command.source_type!r}"
        )
    if not command.base_url.strip():
        raise CommandRejected(f"source {command.source_id!r}: the url is empty")
    if has_credentials(command.base_url):
        # The log keeps every event forever and is read by every view: a secret in it could
        # never be taken back. The credentials live beside the store, per source.
        raise CommandRejected(
            f"source {command.source_id!r}: the url {redact_url(command.base_url)} carries "
            "credentials, which are never stored in the log; configure the url without them "
            "and give them in the source's credentials file"
        )


def normalise_extras(extras: Any) -> dict[str, Any]:
    """Keep the known extras fields; lists of objects are sorted so fetch order never matters."""
    normalised: dict[str, Any] = {}
    for field in EXTRAS_FIELDS:
        value = extras.get(field)
        if value is None:
            continue
        if isinstance(value, list) and field != "latest":
            value = sorted(value, key=digest_of)
        normalised[field] = value
    return normalised


def decide(
    command: MarketSourceCommand, state: MarketSourceState | None, context: DecisionContext
) -> list[AnySourceEvent]:
    stamp = Stamper(command.aggregate_id, state.version if state else 0, context.at)
    if isinstance(command, ConfigureSource):
        _validate(command)
        wanted = (command.source_type, command.base_url, command.priority, command.active)
        if (
            state is not None
            and not state.removed
            and (state.source_type, state.base_url, state.priority, state.active) == wanted
        ):
            return []
        return [
            stamp(
                SourceConfigured,
                source_id=command.source_id,
                source_type=command.source_type,
                base_url=command.base_url,
                priority=command.priority,
                active=command.active,
            )
        ]
    source_id = command.source_id
    if state is None or state.removed:
        raise CommandRejected(f"unknown source {source_id!r}")
    if isinstance(command, RemoveSource):
        return [stamp(SourceRemoved, source_id=source_id)]
    if isinstance(command, ObserveCatalog):
        observed = (command.remote_hash, command.catalog_version, command.app_count)
        if observed == (state.remote_hash, state.catalog_version, state.app_count):
            return []
        return [
            stamp(
                CatalogObserved,
                source_id=source_id,
                remote_hash=command.remote_hash,
                catalog_version=command.catalog_version,
                app_count=command.app_count,
            )
        ]
    if isinstance(command, UpdateSourceExtras):
        extras = normalise_extras(command.extras)
        digest = digest_of(extras)
        if digest == state.extras_digest:
            return []
        return [stamp(ExtrasUpdated, source_id=source_id, extras=extras, digest=digest)]
    assert_never(command)


MARKET_SOURCE: Decider[MarketSourceState, MarketSourceCommand, AnySourceEvent] = Decider(
    commands=members(MarketSourceCommand), decide=decide, evolve=evolve
)
