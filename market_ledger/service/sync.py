"""Phase 1: sync each active market source.

A source is fetched when its hash probe says it changed, when the sync interval has passed,
or when the set of sources or users changed; otherwise it is left alone. A probe that gets
no hash is reported as ``probe_failed`` (and logged as a warning), never as unchanged. A
fetch that fails (unreachable, empty, undecodable, wrongly shaped) changes nothing and is
reported. A good fetch becomes offers, delistings, extras and the observed hash, all in one
transaction, so the hash is remembered only together with the catalog it stands for.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import attrs

from market_ledger.domain.decider import Command
from market_ledger.domain.listing import WithdrawListing
from market_ledger.domain.market_source import ObserveCatalog, UpdateSourceExtras
from market_ledger.projections import work_queries as q
from market_ledger.service.context import CycleContext
from market_ledger.service.ports import RemoteError
from market_ledger.service.remote_values import MarketSnapshot
from market_ledger.service.sync_plan import plan_catalog

log = logging.getLogger(__name__)

#: how long one source may take before it is abandoned for this cycle (10 min, as before)
SOURCE_BUDGET_SECONDS = 600.0
#: what a probe without an answer is reported as (the reader says no more than "no hash")
PROBE_FAILED = "the hash probe failed (unreachable, an error, or no usable hash)"


@attrs.define
class SourceSyncState:
    """What the phase remembers between cycles, in memory (a restart simply fetches)."""

    last_full_sync: float | None = None
    config_key: tuple[Any, ...] | None = None
    #: source id -> the hash endpoint's answer at its last good fetch
    endpoint_hashes: dict[str, str] = attrs.field(factory=dict)


class SyncPhase:
    name = "sync"

    def __init__(self, interval_seconds: float) -> None:
        self.interval = interval_seconds
        self.state = SourceSyncState()

    async def run(self, ctx: CycleContext) -> dict[str, Any]:
        sources = [s for s in await ctx.read(q.live_sources) if s["active"]]
        remote = [s for s in sources if s["source_type"] == "remote"]
        users = await ctx.read(q.registered_users)
        withdrawn = await self._withdraw_orphans(ctx)
        config_key = (tuple((s["source_id"], s["base_url"]) for s in remote), tuple(users))
        now = time.monotonic()
        forced_by = None
        if self.state.config_key != config_key:
            forced_by = "sources or users changed" if self.state.config_key else "first cycle"
        elif self.state.last_full_sync is None or now - self.state.last_full_sync >= self.interval:
            forced_by = "sync interval"
        self.state.config_key = config_key
        if forced_by:
            self.state.last_full_sync = now
        version = await ctx.remote.os_version() if remote else ""
        report: dict[str, Any] = {"forced_by": forced_by, "sources": {}, "withdrawn": withdrawn}
        for source in remote:
            if ctx.stop.is_set():
                break
            source_id = source["source_id"]
            try:
                outcome = await asyncio.wait_for(
                    self._sync_source(ctx, source, users, version, forced=forced_by is not None),
                    SOURCE_BUDGET_SECONDS,
                )
            except (RemoteError, ValueError, TimeoutError) as error:
                reason = str(error) or type(error).__name__
                log.warning("sync of source %s failed, nothing changed: %s", source_id, reason)
                ctx.metrics.source_synced(source_id, "failed")
                outcome = {"outcome": "failed", "error": reason}
            else:
                ctx.metrics.source_synced(source_id, outcome["outcome"])
            report["sources"][source_id] = outcome
        return report

    async def _sync_source(
        self,
        ctx: CycleContext,
        source: dict[str, Any],
        users: list[str],
        version: str,
        *,
        forced: bool,
    ) -> dict[str, Any]:
        source_id = source["source_id"]
        reader = ctx.remote.reader_for(source["base_url"], source_id)
        probed = None
        if not forced:
            probed = await reader.probe_hash(version)
            if probed is None:
                # Not "unchanged": nobody knows whether it changed, and the operator must
                # see that before the sync interval forces the next fetch.
                log.warning(
                    "source %s: %s; fetched again when the sync interval has passed",
                    source_id,
                    PROBE_FAILED,
                )
                return {"outcome": "probe_failed", "error": PROBE_FAILED}
            known = {source["remote_hash"], self.state.endpoint_hashes.get(source_id)}
            if probed in known:
                return {"outcome": "unchanged"}
        snapshot = await reader.fetch_snapshot(version)
        return await self._store(ctx, source_id, snapshot, users, version)

    async def _store(
        self,
        ctx: CycleContext,
        source_id: str,
        snapshot: MarketSnapshot,
        users: list[str],
        version: str,
    ) -> dict[str, Any]:
        offered = await ctx.read(q.offered_states, source_id)
        commands: list[Command] = plan_catalog(source_id, snapshot.manifests(), users, offered)
        commands.append(UpdateSourceExtras(source_id, snapshot.extras))
        if snapshot.complete:
            commands.append(
                ObserveCatalog(
                    source_id,
                    snapshot.remote_hash,
                    snapshot.catalog_version or version,
                    snapshot.app_count,
                )
            )
            if snapshot.endpoint_hash:
                self.state.endpoint_hashes[source_id] = snapshot.endpoint_hash
        else:
            # Keep the old hash, so that the next cycle fetches the missing details again.
            log.warning(
                "source %s: %d app(s) without details, fetching again next cycle: %s",
                source_id,
                len(snapshot.detail_failures),
                ", ".join(sorted(snapshot.detail_failures)[:5]),
            )
        outcome = await ctx.handle(commands)
        for rejection in outcome.rejections:
            log.warning("source %s: %s", source_id, rejection.reason)
        kinds: dict[str, int] = {}
        for event in outcome.events:
            name = type(event).__name__
            kinds[name] = kinds.get(name, 0) + 1
        return {
            "outcome": "synced",
            "apps": snapshot.app_count,
            "rejected_entries": dict(snapshot.rejected),
            "missing_details": sorted(snapshot.detail_failures),
            "events": kinds,
        }

    async def _withdraw_orphans(self, ctx: CycleContext) -> int:
        orphans = await ctx.read(q.orphaned_listings)
        commands = [WithdrawListing(u, s, a, why) for u, s, a, why in orphans]
        outcome = await ctx.handle(commands)
        return len(outcome.events)
