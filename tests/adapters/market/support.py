"""What the market client tests share: a client with fast retries, and catalog entries."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from market_ledger.adapters.market.client import MarketSourceClient
from market_ledger.adapters.remote.client import RetrySettings

T = TypeVar("T")
VERSION = "1.12.3"
BASE = "https://market.test"
FAST = RetrySettings(attempts=3, base_delay=0.001)


def run(make: Callable[[], Awaitable[T]]) -> T:
    async def go() -> T:
        return await make()

    return asyncio.run(go())


def client(url: str = BASE, **overrides: Any) -> MarketSourceClient:
    settings: dict[str, Any] = {
        "retry": FAST,
        "detail_retry": FAST,
        "detail_gap": 0.0,
        "request_timeout": 2.0,
    }
    settings.update(overrides)
    return MarketSourceClient(url, **settings)


def app(app_id: str, version: str = "1.0.0", **fields: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": app_id, "appID": app_id, "name": app_id, "version": version}
    entry.update(fields)
    return entry
