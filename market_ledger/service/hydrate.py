"""Phase 2: render the listings that are due, through chart-repo, with a bounded worker pool.

Workers take the next listing as soon as they are free (no batch barriers), so one slow
render holds up one worker, not a whole batch. Results are written as they come, a few at a
time; each is decided by the listing itself, so a result for a version that is no longer the
pending one is refused there. Which renderer runs (chart-repo, or in process) is the
composition root's choice.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from market_ledger.domain.decider import Command
from market_ledger.domain.listing import RecordRender, RecordRenderFailure, Rendered, RenderFailed
from market_ledger.domain.manifest import entry_with_labels
from market_ledger.domain.rendering import compact_rendered
from market_ledger.projections import work_queries as q
from market_ledger.projections.rows import loads
from market_ledger.service.context import CycleContext
from market_ledger.service.ports import RenderSuccess, RenderWorker

log = logging.getLogger(__name__)

#: results written per transaction, at most
WRITE_GROUP = 64


class HydratePhase:
    name = "hydrate"

    def __init__(self, concurrency: int) -> None:
        if concurrency < 1:
            raise ValueError(f"hydration concurrency must be at least 1, got {concurrency}")
        self.concurrency = concurrency

    async def run(self, ctx: CycleContext) -> dict[str, Any]:
        work: list[q.RenderWork] = await ctx.read(q.due_renders, ctx.clock())
        if not work:
            return {"due": 0, "rendered": 0, "failed": 0, "refused": 0}
        queue: asyncio.Queue[q.RenderWork] = asyncio.Queue()
        for item in work:
            queue.put_nowait(item)
        results: asyncio.Queue[Command | None] = asyncio.Queue()
        counts = {"due": len(work), "rendered": 0, "failed": 0, "refused": 0}
        writer = asyncio.create_task(self._write(ctx, results, counts))
        workers = [
            asyncio.create_task(self._work(ctx, queue, results))
            for _ in range(min(self.concurrency, len(work)))
        ]
        try:
            await asyncio.gather(*workers)
        finally:
            await results.put(None)
            await writer
        counts["not_started"] = queue.qsize()
        return counts

    async def _work(
        self,
        ctx: CycleContext,
        queue: asyncio.Queue[q.RenderWork],
        results: asyncio.Queue[Command | None],
    ) -> None:
        # Each worker keeps its own session with the renderer (a connection, for chart-repo).
        async with ctx.remote.renderer.worker() as renderer:
            while not ctx.stop.is_set():
                try:
                    item = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                await results.put(await self._render(ctx, renderer, item))

    async def _render(
        self, ctx: CycleContext, renderer: RenderWorker, item: q.RenderWork
    ) -> Command:
        entry = entry_with_labels(loads(item.content), item.labels)
        result = await renderer.render(entry, item.source, item.user)
        if isinstance(result, RenderSuccess):
            ctx.metrics.render_ended("rendered")
            return RecordRender(
                item.user,
                item.source,
                item.app_id,
                item.version,
                item.digest,
                compact_rendered(result.app_data, entry),
            )
        ctx.metrics.render_ended("failed")
        log.info(
            "render of %s %s for %s failed (attempt %d): %s: %s",
            item.app_id,
            item.version,
            item.user,
            item.attempts + 1,
            result.step,
            result.reason,
        )
        return RecordRenderFailure(
            item.user,
            item.source,
            item.app_id,
            item.version,
            item.digest,
            result.step,
            result.reason,
        )

    async def _write(
        self,
        ctx: CycleContext,
        results: asyncio.Queue[Command | None],
        counts: dict[str, int],
    ) -> None:
        done = False
        while not done:
            group: list[Command] = []
            item = await results.get()
            while True:
                if item is None:
                    done = True
                    break
                group.append(item)
                if len(group) >= WRITE_GROUP or results.empty():
                    break
                item = results.get_nowait()
            if not group:
                continue
            outcome = await ctx.handle(group)
            rendered = {e.originator_id for e in outcome.events if isinstance(e, Rendered)}
            failed = {e.originator_id for e in outcome.events if isinstance(e, RenderFailed)}
            for command in group:
                if isinstance(command, RecordRender) and command.aggregate_id in rendered:
                    counts["rendered"] += 1
                elif isinstance(command, RecordRenderFailure) and command.aggregate_id in failed:
                    counts["failed"] += 1
                else:
                    counts["refused"] += 1
