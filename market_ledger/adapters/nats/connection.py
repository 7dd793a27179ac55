"""One NATS client connection that never gives up.

The system this replaces stopped reconnecting after 60 attempts (about two minutes) and never
retried a failed first connect, so state events were silently gone after a NATS restart.
Here the first connect and every reconnect are retried without a limit; while NATS is away
the service keeps running, and callers see ``client`` as None (nothing is buffered behind
their back). The intake and the notifier may share one connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from datetime import UTC, datetime
from urllib.parse import urlsplit

import nats.errors
import nats.js.errors
from nats.aio.client import Client

from market_ledger.adapters.health import FAILING, OK, PartState, clean_reason
from market_ledger.adapters.metrics import NATS_CONNECTED

log = logging.getLogger(__name__)

#: how often a failing first connect is logged again (every N attempts)
LOG_EVERY_ATTEMPTS = 30

_OPEN: weakref.WeakSet[NatsConnection] = weakref.WeakSet()


def _update_gauge() -> None:
    """1 while every open connection is up; 0 while any is down (or none is open)."""
    opened = list(_OPEN)
    NATS_CONNECTED.set(1 if opened and all(c.connected for c in opened) else 0)


def display_url(url: str) -> str:
    """The URL without credentials, for logs."""
    parts = urlsplit(url if "://" in url else f"nats://{url}")
    return f"{parts.scheme}://{parts.hostname}:{parts.port or 4222}"


class NatsConnection:
    def __init__(
        self,
        url: str,
        *,
        name: str = "market-ledger",
        reconnect_wait: float = 2.0,
        connect_timeout: float = 2.0,
    ) -> None:
        self.url = url
        self.name = name
        self.reconnect_wait = reconnect_wait
        self.connect_timeout = connect_timeout
        self._client: Client | None = None
        self._task: asyncio.Task[Client] | None = None
        self._failures = 0
        self._closed = False
        #: since when the connection is up, or down (it starts down), and the last error
        self._since = datetime.now(UTC)
        self._last_error: str | None = None
        self._was_up = False

    # --- state ---------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.is_connected

    def health_state(self) -> PartState | None:
        """ok while connected; failing (since it went down, with the last error) while not;
        None once closed (a service that stopped using NATS says nothing about it)."""
        if self._closed:
            return None
        if self.connected:
            return PartState(OK, self._since)
        reason = f"not connected to {display_url(self.url)}"
        if self._last_error:
            reason += f": {self._last_error}"
        return PartState(FAILING, self._since, clean_reason(reason))

    def _went(self, *, up: bool, error: BaseException | None = None) -> None:
        if error is not None:
            self._last_error = f"{type(error).__name__}: {error}".rstrip(": ")
        if up:
            self._last_error = None
        if up != self._was_up:
            self._was_up = up
            self._since = datetime.now(UTC)

    @property
    def client(self) -> Client | None:
        """The client while it is connected, else None."""
        return self._client if self.connected else None

    # --- connecting ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start connecting in the background (no-op when connecting or connected)."""
        if self._closed:
            raise RuntimeError("the NATS connection is closed")
        if self._task is None or (self._task.done() and not self._usable()):
            _OPEN.add(self)
            self._task = asyncio.create_task(self._connect(), name=f"nats-connect-{self.name}")

    def _usable(self) -> bool:
        task = self._task
        if task is None or not task.done() or task.cancelled() or task.exception():
            return False
        return not task.result().is_closed

    async def connect(self, stop: asyncio.Event) -> Client | None:
        """Wait until connected (starting to connect if needed); None if ``stop`` is set first."""
        while not stop.is_set() and not self._closed:
            self.start()
            task = self._task
            assert task is not None
            stopping = asyncio.create_task(stop.wait())
            try:
                await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopping.cancel()
            if not task.done() or task.cancelled():
                return None
            error = task.exception()
            if error is None:
                return task.result()
            self._went(up=False, error=error)
            log.warning(
                "NATS: connecting to %s failed (%s: %s); trying again in %gs",
                display_url(self.url),
                type(error).__name__,
                error,
                self.reconnect_wait,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.reconnect_wait)
        return None

    async def _connect(self) -> Client:
        client = Client()
        self._failures = 0
        await client.connect(
            servers=[self.url],
            name=self.name,
            allow_reconnect=True,
            max_reconnect_attempts=-1,  # never give up, at first connect or later
            reconnect_time_wait=self.reconnect_wait,  # type: ignore[arg-type]
            connect_timeout=self.connect_timeout,  # type: ignore[arg-type]
            error_cb=self._on_error,
            disconnected_cb=self._on_disconnected,
            reconnected_cb=self._on_reconnected,
            closed_cb=self._on_closed,
        )
        self._client = client
        self._failures = 0
        self._went(up=True)
        log.info("NATS: connected to %s", display_url(self.url))
        _update_gauge()
        return client

    async def close(self) -> None:
        self._closed = True
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        client, self._client = self._client, None
        if client is not None and not client.is_closed:
            with contextlib.suppress(Exception):
                await client.close()
        _OPEN.discard(self)
        _update_gauge()

    # --- callbacks (they only log and keep the gauge) -----------------------------------------

    async def _on_error(self, error: Exception) -> None:
        self._went(up=self.connected, error=error)
        self._failures += 1
        if self._failures == 1 or self._failures % LOG_EVERY_ATTEMPTS == 0:
            log.warning(
                "NATS: %s: %s; retrying every %gs without limit (%d errors since last connected)",
                display_url(self.url),
                error or type(error).__name__,
                self.reconnect_wait,
                self._failures,
            )

    async def _on_disconnected(self) -> None:
        if self._client is not None and not self._closed:
            log.warning("NATS: disconnected from %s; reconnecting", display_url(self.url))
        self._went(up=False)
        _update_gauge()

    async def _on_reconnected(self) -> None:
        self._failures = 0
        self._went(up=True)
        log.info("NATS: reconnected to %s", display_url(self.url))
        _update_gauge()

    async def _on_closed(self) -> None:
        if not self._closed and self._client is not None:
            log.warning("NATS: connection to %s closed", display_url(self.url))
        self._went(up=False)
        _update_gauge()


#: answers that mean "this server has no JetStream" (as opposed to "ask again later")
_NO_JETSTREAM = (nats.errors.NoRespondersError, nats.js.errors.ServiceUnavailableError)


async def jetstream_available(client: Client, *, timeout: float = 2.0) -> bool:
    """Whether the server offers JetStream to this account.

    False only on a definite answer (no responder, or "JetStream not enabled"); a timeout or
    a lost connection raises, so that the caller asks again instead of settling for less.
    """
    try:
        await client.jetstream(timeout=timeout).account_info()
    except _NO_JETSTREAM:
        return False
    except nats.js.errors.APIError as error:
        if error.code == 503:
            return False
        raise
    return True
