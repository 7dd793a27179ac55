"""The in-process renderer as the service's renderer, for a ledger without chart-repo."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from market_ledger.adapters.local.renderer import render_in_process
from market_ledger.service.ports import RenderFailure, RenderResult, RenderSuccess, RenderWorker

#: the failure step a render that raised is reported with
IN_PROCESS_STEP = "InProcessRender"


class InProcessRenderer:
    """Renders in this process; a broken entry fails its render, not the cycle."""

    @asynccontextmanager
    async def worker(self) -> AsyncIterator[RenderWorker]:
        yield self

    async def render(self, entry: Mapping[str, Any], source: str, user: str) -> RenderResult:
        try:
            return RenderSuccess(render_in_process(entry, source, user))
        except Exception as error:
            return RenderFailure(IN_PROCESS_STEP, f"{type(error).__name__}: {error}")
