"""Phase 2: render the listings that are due, through chart-repo, with a bounded worker pool.

Workers take the next listing as soon as they are free (no batch barriers), so one slow
render holds up one worker, not a whole batch. Results are written in groups while the
workers go on: every :data:`WRITE_GATHER_SECONDS`, or at once when a group is full or the
workers are done. A transaction costs more than the results in it (the streams' preload, the
commit, a wake of the projector): written as they came, one or two at a time, the results of
a first cycle took 1,400 transactions and a quarter of the process's CPU. Each result is
decided by the listing itself, so one for a version that is no longer the pending one is
refused there. Which renderer runs (chart-repo, or in process) is the composition root's
choice.
"""

from __future__ import annotations

import asyncio
import contextlib
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
#: how long results wait for others to be written with (unless a group is full first)
WRITE_GATHER_SECONDS = 0.05


class HydratePhase:
    name = "hydrate"

    def __init__(self, concurrency: int, gather_seconds: float = WRITE_GATHER_SECONDS) -> None:
        if concurrency < 1:
            raise ValueError(f"hydration concurrency must be at least 1, got {concurrency}")
        self.concurrency = concurrency
        self.gather_seconds = gather_seconds

    async def run(self, ctx: CycleContext) -> dict[str, Any]:
        work: list[q.RenderWork] = await ctx.read(q.due_renders, ctx.clock())
        if not work:
            return {"due": 0, "rendered": 0, "failed": 0, "refused": 0}
        queue: asyncio.Queue[q.RenderWork] = asyncio.Queue()
        for item in work:
            queue.put_nowait(item)
        results = _Results()
        counts = {"due": len(work), "rendered": 0, "failed": 0, "refused": 0}
        writer = asyncio.create_task(self._write(ctx, results, counts))
        workers = [
            asyncio.create_task(self._work(ctx, queue, results))
            for _ in range(min(self.concurrency, len(work)))
        ]
        try:
            await asyncio.gather(*workers)
        finally:
            results.finish()
            await writer
        counts["not_started"] = queue.qsize()
        return counts

    async def _work(
        self, ctx: CycleContext, queue: asyncio.Queue[q.RenderWork], results: _Results
    ) -> None:
        # Each worker keeps its own session with the renderer (a connection, for chart-repo).
        async with ctx.remote.renderer.worker() as renderer:
            while not ctx.stop.is_set():
                try:
                    item = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                results.add(await self._render(ctx, renderer, item))

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

    async def _write(self, ctx: CycleContext, results: _Results, counts: dict[str, int]) -> None:
        while True:
            await results.gathered(self.gather_seconds)
            group = results.take(WRITE_GROUP)
            if not group:
                if results.finished:
                    return
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


class _Results:
    """The workers' results on their way to the writer, and when it should take them."""

    def __init__(self) -> None:
        self.waiting: list[Command] = []
        self.finished = False
        self._now = asyncio.Event()

    def add(self, command: Command) -> None:
        self.waiting.append(command)
        if len(self.waiting) >= WRITE_GROUP:
            self._now.set()

    def finish(self) -> None:
        """The workers are done: what is left is written without waiting."""
        self.finished = True
        self._now.set()

    async def gathered(self, seconds: float) -> None:
        """Return after ``seconds``, or at once when a group is full or the workers are done."""
        if self.finished or len(self.waiting) >= WRITE_GROUP:
            return
        self._now.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._now.wait(), seconds)

    def take(self, most: int) -> list[Command]:
        group, self.waiting = self.waiting[:most], self.waiting[most:]
        return group
