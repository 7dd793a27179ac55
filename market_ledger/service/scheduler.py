"""Runs a cycle every ``PIPELINE_INTERVAL`` seconds; a cycle never overlaps the next.

The next cycle starts one interval after the previous one started, or at once if that one
took longer (a late tick is not stacked up). On stop, the running cycle finishes what is in
flight, starts nothing new, and the loop returns.

With a health board, a cycle that fails as a whole (not a phase reporting a remote's
failure, which the summary carries) marks the part ``cycle`` failing until one completes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from market_ledger.service.context import CycleContext
from market_ledger.service.cycle import Cycle
from market_ledger.service.ports import PartHealth
from market_ledger.service.reasons import error_reason

log = logging.getLogger(__name__)

PART = "cycle"


class Scheduler:
    def __init__(
        self,
        cycle: Cycle,
        context: CycleContext,
        interval: float,
        on_summary: Callable[[dict[str, Any]], None] | None = None,
        health: PartHealth | None = None,
    ) -> None:
        self.cycle = cycle
        self.context = context
        self.interval = interval
        self.on_summary = on_summary
        self.health = health
        self.cycles = 0

    async def run(self) -> None:
        stop = self.context.stop
        while not stop.is_set():
            started = time.monotonic()
            try:
                summary = await self.cycle.run(self.context)
            except Exception as error:
                log.exception("cycle %d failed; the next one runs as planned", self.cycles + 1)
                if self.health is not None:
                    self.health.failing(
                        PART, f"cycle {self.cycles + 1} failed: {error_reason(error)}"
                    )
            else:
                self.cycles += 1
                if self.health is not None:
                    self.health.ok(PART)
                if self.on_summary:
                    self.on_summary(summary)
            wait = self.interval - (time.monotonic() - started)
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait)
