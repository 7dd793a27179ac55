"""The httpx client a remote-service client uses: given, owned for a ``with`` block, or per call."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Self

import httpx

from market_ledger.adapters.remote.client import client_for_call


class HttpClientHolder:
    """Base of the service clients.

    Pass ``client=`` to share one ``httpx.AsyncClient`` (the caller closes it); or use the
    service client as ``async with``, which opens one client for the block; otherwise each call
    opens and closes its own, which is slower but always safe (e.g. one ``asyncio.run`` per
    call in a test).
    """

    def __init__(self, client: httpx.AsyncClient | None = None) -> None:
        self._shared = client
        self._owned: httpx.AsyncClient | None = None

    async def __aenter__(self) -> Self:
        if self._shared is None and self._owned is None:
            self._owned = httpx.AsyncClient(follow_redirects=True)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the client this object opened (never a shared one)."""
        owned, self._owned = self._owned, None
        if owned is not None:
            await owned.aclose()

    @asynccontextmanager
    async def _http(self) -> AsyncIterator[httpx.AsyncClient]:
        current = self._shared if self._shared is not None else self._owned
        async with client_for_call(current) as client:
            yield client
