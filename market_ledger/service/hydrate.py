"""Phase 2: render the listings that are due, through chart-repo, with a bounded worker pool.

Workers take the next listing as soon as they are free (no batch barriers), so one slow
render holds up one worker, not a whole batch. Results are written as they come, a few at a
time; each is decided by the listing itself, so a result for a version that is no longer the
pending one is refused there. With no chart-repo configured, listings are rendered in
process (the embedded default over ``file://`` sources).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
import ssl
from typing import Any

import httpx

from market_ledger.adapters.chart_repo.app_data import pending_entry_of
from market_ledger.adapters.chart_repo.client import (
    ChartRepoClient,
    Rendered,
    RenderFailed,
    RenderResult,
)
from market_ledger.adapters.local.renderer import render_in_process
from market_ledger.adapters.metrics import RENDERS
from market_ledger.domain.decider import Command
from market_ledger.domain.listing import RecordRender, RecordRenderFailure
from market_ledger.domain.manifest import entry_with_labels
from market_ledger.domain.rendering import compact_rendered
from market_ledger.projections import work_queries as q
from market_ledger.projections.rows import loads
from market_ledger.service.context import CycleContext

log = logging.getLogger(__name__)


@functools.cache
def _tls() -> ssl.SSLContext:
    """Loading the trusted certificates takes tens of ms: once per process is enough."""
    return httpx.create_ssl_context()


def worker_connection() -> httpx.AsyncClient:
    """One keep-alive connection, without Nagle's delay (see market_ledger.runtime)."""
    transport = httpx.AsyncHTTPTransport(
        verify=_tls(),
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
    )
    return httpx.AsyncClient(transport=transport)


IN_PROCESS_STEP = "InProcessRender"
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
        # Each worker keeps its own connection: a shared pool checks every connection it
        # holds on every request, which costs more CPU than the render call itself.
        async with worker_connection() as http:
            chart_repo = ctx.remote.chart_repo.bound_to(http) if ctx.remote.chart_repo else None
            while not ctx.stop.is_set():
                try:
                    item = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                await results.put(await self._render(chart_repo, item))

    async def _render(self, chart_repo: ChartRepoClient | None, item: q.RenderWork) -> Command:
        entry = entry_with_labels(loads(item.content), item.labels)
        result: RenderResult
        if chart_repo is None:
            try:
                result = Rendered(render_in_process(entry, item.source, item.user))
            except Exception as error:  # a broken entry fails its render, not the cycle
                result = RenderFailed(IN_PROCESS_STEP, f"{type(error).__name__}: {error}")
        else:
            result = await chart_repo.sync_app(pending_entry_of(entry), item.source, item.user)
        if isinstance(result, Rendered):
            RENDERS.labels("rendered").inc()
            return RecordRender(
                item.user,
                item.source,
                item.app_id,
                item.version,
                item.digest,
                compact_rendered(result.app_data, entry),
            )
        RENDERS.labels("failed").inc()
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
            written = {(type(e).__name__, e.originator_id) for e in outcome.events}
            for command in group:
                kind = "Rendered" if isinstance(command, RecordRender) else "RenderFailed"
                if (kind, command.aggregate_id) in written:
                    counts["rendered" if kind == "Rendered" else "failed"] += 1
                else:
                    counts["refused"] += 1
