"""One cycle: sync, hydrate, chart-repo feed, status correction, notify; in that order.

A phase that fails is reported and the cycle goes on with the next one: a market that is
down must not stop renders, and chart-repo being down must not stop status correction. The
cycle ends with the views caught up, then the notifications published.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from market_ledger.service.context import CycleContext
from market_ledger.service.feed import FeedPhase
from market_ledger.service.hydrate import HydratePhase
from market_ledger.service.ports import RemoteError
from market_ledger.service.status_correction import StatusCorrectionPhase
from market_ledger.service.sync import SyncPhase

log = logging.getLogger(__name__)


class Phase(Protocol):
    name: str

    async def run(self, ctx: CycleContext) -> dict[str, Any]: ...


class NotifyPhase:
    """Brings the views to the head of the log, then publishes what changed."""

    name = "notify"

    def __init__(self, publish: Callable[[], Awaitable[int]] | None = None) -> None:
        self.publish = publish

    async def run(self, ctx: CycleContext) -> dict[str, Any]:
        applied = await asyncio.to_thread(ctx.ledger.catch_up)
        head = await asyncio.to_thread(ctx.ledger.projector.head)
        position = await asyncio.to_thread(ctx.ledger.projector.position)
        ctx.metrics.log_position(head, max(head - position, 0))
        report: dict[str, Any] = {"projected": applied, "position": position}
        if self.publish is not None:
            report["published"] = await self.publish()
        return report


class Cycle:
    def __init__(self, phases: list[Phase]) -> None:
        self.phases = phases

    @classmethod
    def standard(
        cls,
        *,
        sync_interval: float,
        hydration_concurrency: int,
        publish: Callable[[], Awaitable[int]] | None = None,
    ) -> Cycle:
        return cls(
            [
                SyncPhase(sync_interval),
                HydratePhase(hydration_concurrency),
                FeedPhase(),
                StatusCorrectionPhase(),
                NotifyPhase(publish),
            ]
        )

    async def run(self, ctx: CycleContext) -> dict[str, Any]:
        started = time.perf_counter()
        summary: dict[str, Any] = {"phases": {}, "failed_phases": []}
        for phase in self.phases:
            if ctx.stop.is_set() and phase.name != "notify":
                summary["phases"][phase.name] = {"skipped": "stopping"}
                continue
            phase_started = time.perf_counter()
            try:
                # Each phase decides from the views: bring them up to what the last one wrote.
                await asyncio.to_thread(ctx.ledger.catch_up)
                report = await phase.run(ctx)
            except (RemoteError, OSError, ValueError) as error:
                log.warning("phase %s failed: %s", phase.name, error)
                report = {"failed": str(error)}
                summary["failed_phases"].append(phase.name)
            seconds = time.perf_counter() - phase_started
            ctx.metrics.phase_took(phase.name, seconds)
            report["seconds"] = round(seconds, 3)
            summary["phases"][phase.name] = report
        summary["seconds"] = round(time.perf_counter() - started, 3)
        ctx.metrics.cycle_ended("partial" if summary["failed_phases"] else "ok")
        return summary


def describe(summary: dict[str, Any]) -> str:
    """One line for the log: what each phase did."""
    phases = summary.get("phases", {})
    parts = []
    for source_id, report in phases.get("sync", {}).get("sources", {}).items():
        outcome = report.get("outcome", "?")
        if outcome == "synced":
            events = report.get("events", {})
            outcome += (
                f" ({report.get('apps', 0)} apps, {events.get('Offered', 0)} offered, "
                f"{events.get('Delisted', 0)} delisted)"
            )
        elif outcome in ("failed", "probe_failed"):
            outcome = f"{outcome.replace('_', ' ')}: {report.get('error', '')}"
        parts.append(f"{source_id} {outcome}")
    hydrate = phases.get("hydrate", {})
    if hydrate.get("due"):
        parts.append(
            f"rendered {hydrate.get('rendered', 0)}, failed {hydrate.get('failed', 0)} "
            f"of {hydrate['due']} due"
        )
    feed = phases.get("feed", {})
    if feed.get("consumed"):
        parts.append(f"feed {feed['from']}->{feed['to']}")
    corrections = phases.get("status_correction", {}).get("corrections")
    if corrections:
        parts.append(f"{corrections} status correction(s)")
    if summary.get("failed_phases"):
        parts.append("failed: " + ", ".join(summary["failed_phases"]))
    return f"{'; '.join(parts) or 'nothing to do'} ({summary.get('seconds', 0):.2f} s)"
