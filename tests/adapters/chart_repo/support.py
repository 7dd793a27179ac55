"""What the chart-repo client tests share: the user, fast retries, and running one call."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from market_ledger.adapters.remote.client import RetrySettings

T = TypeVar("T")
USER = "alice"
SOURCE = "market.olares"
FAST = RetrySettings(attempts=2, base_delay=0.001)


def run(make: Callable[[], Awaitable[T]]) -> T:
    async def go() -> T:
        return await make()

    return asyncio.run(go())
