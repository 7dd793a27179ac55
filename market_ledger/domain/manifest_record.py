"""ManifestRecord: the content of a catalog entry, stored once and named by its digest.

Every user is offered the same catalog; the system this replaced kept a copy of every entry
for every user. An offer names its content by digest, and the content is recorded the first
time any offer names it. Recording it again produces nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import assert_never
from uuid import UUID

import attrs

from market_ledger.domain import identity
from market_ledger.domain.decider import Command, Decider, DecisionContext, members
from market_ledger.domain.events import LedgerEvent, Stamper
from market_ledger.domain.manifest import Manifest


@dataclass(frozen=True)
class ManifestEvent(LedgerEvent):
    digest: str


@dataclass(frozen=True)
class ManifestRecorded(ManifestEvent):
    TOPIC = "manifest.Recorded.v1"
    HISTORY_NAME = "manifest_recorded"
    app_id: str
    #: the entry without its labels, as canonical JSON text (one string: cheap to read back)
    content: str


AnyManifestEvent = ManifestRecorded


@attrs.frozen
class ManifestRecordState:
    id: UUID
    version: int
    digest: str


# --- commands --------------------------------------------------------------------------------


@attrs.frozen
class RecordManifest(Command):
    """Store the content an offer names (once: recording it again produces nothing)."""

    manifest: Manifest

    @cached_property
    def aggregate_id(self) -> UUID:
        return identity.manifest_id(self.manifest.digest)


ManifestRecordCommand = RecordManifest


def evolve(state: ManifestRecordState | None, event: AnyManifestEvent) -> ManifestRecordState:
    if isinstance(event, ManifestRecorded):
        return ManifestRecordState(
            id=event.originator_id, version=event.originator_version, digest=event.digest
        )
    assert_never(event)


def decide(
    command: ManifestRecordCommand, state: ManifestRecordState | None, context: DecisionContext
) -> list[AnyManifestEvent]:
    if state is not None:
        return []
    manifest = command.manifest
    stamp = Stamper(command.aggregate_id, 0, context.at)
    return [
        stamp(
            ManifestRecorded,
            digest=manifest.digest,
            app_id=manifest.app_id,
            content=manifest.content,
        )
    ]


MANIFEST_RECORD: Decider[ManifestRecordState, ManifestRecordCommand, AnyManifestEvent] = Decider(
    commands=members(ManifestRecordCommand), decide=decide, evolve=evolve, write_once=True
)
