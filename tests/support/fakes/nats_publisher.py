"""Publishing to a real nats-server from plain threads: nats-py on a private asyncio loop.

The loop runs in a daemon thread of its own, so that a fake serving HTTP on other threads can
publish whatever the test's own loop is doing. :meth:`NatsPublisher.publish` blocks until the
server has the message (a flush), so messages published one after another from one thread
arrive in that order, and a failure raises :class:`PublishFailed` in the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import nats
from nats.aio.client import Client

T = TypeVar("T")


class PublishFailed(Exception):
    """A message could not be published (or the connection could not be made)."""


class NatsPublisher:
    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        self.url = url
        self.timeout = timeout
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"nats-publisher:{url}", daemon=True
        )
        self._client: Client | None = None

    def start(self) -> None:
        """Connect; raises :class:`PublishFailed` when the server cannot be reached."""
        self._thread.start()
        try:
            self._client = self._run(
                nats.connect(
                    self.url,
                    connect_timeout=self.timeout,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.1,
                    error_cb=_ignore,
                )
            )
        except Exception as error:
            self._stop_loop()
            raise PublishFailed(f"cannot connect to {self.url}: {error!r}") from error

    def publish(self, subject: str, message: dict[str, Any]) -> None:
        client = self._client
        if client is None:
            raise PublishFailed(f"not connected: cannot publish on {subject}")
        data = json.dumps(message).encode("utf-8")
        try:
            self._run(_publish(client, subject, data, self.timeout))
        except Exception as error:
            raise PublishFailed(f"publish on {subject} failed: {error!r}") from error

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._thread.is_alive():
            # closing a connection the server already dropped may fail: nothing is lost
            with contextlib.suppress(Exception):
                self._run(client.close())
        self._stop_loop()

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(self.timeout + 1)
        except BaseException:
            future.cancel()
            raise

    def _stop_loop(self) -> None:
        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(_cancel_the_rest(), self._loop).result(5)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        if not self._thread.is_alive() and not self._loop.is_closed():
            self._loop.close()


async def _publish(client: Client, subject: str, data: bytes, timeout: float) -> None:
    # While reconnecting, nats-py would buffer the message and its flush return at once:
    # a message that may never arrive must fail here instead.
    if not client.is_connected:
        raise ConnectionError("not connected to nats-server")
    await client.publish(subject, data)
    await client.flush(timeout=timeout)


async def _cancel_the_rest() -> None:
    """End what a timed-out call left running (a connect still trying), before the loop."""
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _ignore(error: Exception) -> None:
    """Connection trouble shows where it matters: in the publish that it makes fail."""
