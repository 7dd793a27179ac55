"""NATS traffic on a thread of its own: app-state messages published at a steady pace, and
every market notification collected with its headers.

The test's main thread kills and restarts processes meanwhile; both sides keep going across
a nats-server restart (the client reconnects).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
from nats.aio.client import Client
from nats.aio.msg import Msg

from tests.support.nats_server import Nats, connect, state_message

STATES = ("downloading", "installing", "initializing", "running")


@attrs.frozen
class Notice:
    subject: str
    payload: dict[str, Any]
    msg_id: str | None

    @property
    def body(self) -> str:
        return json.dumps(self.payload, sort_keys=True)


@attrs.frozen
class Published:
    event_id: str
    app: str
    state: str


class Traffic:
    """Publishes app-state messages for ``apps`` of ``user`` (one every ``every`` seconds
    while :meth:`publishing` is on) and collects ``<market>.>`` notifications."""

    def __init__(self, nats: Nats, user: str, apps: list[str], every: float = 0.05) -> None:
        self.nats = nats
        self.user = user
        self.apps = apps
        self.every = every
        self.notices: list[Notice] = []
        self.published: list[Published] = []
        self.publish_on = threading.Event()
        self.failures: list[str] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._clock = datetime.now(UTC)

    def notices_now(self) -> list[Notice]:
        with self._lock:
            return list(self.notices)

    def published_now(self) -> list[Published]:
        with self._lock:
            return list(self.published)

    @contextmanager
    def running(self) -> Iterator[Traffic]:
        self._thread.start()
        if not self._ready.wait(10):
            raise AssertionError("the NATS traffic thread did not connect")
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join(15)

    @contextmanager
    def publishing(self) -> Iterator[None]:
        self.publish_on.set()
        try:
            yield
        finally:
            self.publish_on.clear()
            time.sleep(3 * self.every)  # the last one sent

    async def _run(self) -> None:
        client = await connect(self.nats.url)

        async def receive(message: Msg) -> None:
            headers = message.headers or {}
            notice = Notice(message.subject, json.loads(message.data), headers.get("Nats-Msg-Id"))
            with self._lock:
                self.notices.append(notice)

        try:
            await client.subscribe(f"{self.nats.names.market}.>", cb=receive)
            await client.flush()
            self._ready.set()
            while not self._stop.is_set():
                if self.publish_on.is_set():
                    await self._publish_one(client)
                await asyncio.sleep(self.every)
        finally:
            await client.close()

    async def _publish_one(self, client: Client) -> None:
        n = len(self.published)
        app = self.apps[n % len(self.apps)]
        state = STATES[(n // len(self.apps)) % len(STATES)]
        at = self._clock + timedelta(milliseconds=10 * n)
        event_id = f"multi-{n}"
        message = state_message(self.user, app, state, at, event_id=event_id)
        subject = self.nats.names.app_state_of(self.user)
        try:  # sent again, the same, next round when unacknowledged: the stream dedupes it
            await client.jetstream().publish(
                subject, message, timeout=2, headers={"Nats-Msg-Id": event_id}
            )
        except Exception as error:
            self.failures.append(f"{event_id}: {type(error).__name__}")
            return
        with self._lock:
            self.published.append(Published(event_id, app, state))
