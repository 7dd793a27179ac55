"""``market-ledger serve`` as a child process that a test stops (SIGTERM or SIGKILL) and starts
again on the same store, with the market's notices read back from the nats-server.

Each start writes its own log file, so what one run said is never mixed with the next; the
test reads all of them when it looks for a secret.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx

from tests.support.nats_server import Nats, connect

API = "/app-store/api/v2"
USER = "admin"
SOURCE = "market.olares"
#: a user's token: it may reach app-service once per task and nothing else, ever
TOKEN = "eyJhbGciOiJIUzI1NiJ9.restart-token.sig"
START_TIMEOUT = 60.0
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ledger_command(
    *args: str, env: dict[str, str], check: bool = True
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "market_ledger", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=check,
    )


def serve_env(workdir: Path, nats: Nats, app_service: str, **overrides: str) -> dict[str, str]:
    """The environment of ``serve`` with the example catalog as its one source, tasks sent to
    the fake app-service at ``app_service`` (host:port) and NATS on the test's own names."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NATS_", "LEDGER_"))}
    host, _, port = app_service.rpartition(":")
    env.update(
        LEDGER_DATABASE_URL=f"sqlite:///{workdir}/ledger.db",
        USER_LIST=USER,
        PIPELINE_INTERVAL="1",
        APP_SERVICE_SERVICE_HOST=host,
        APP_SERVICE_SERVICE_PORT=port,
        REPO_URL_HOST="chart-repo.test",
        NATS_URL=nats.url,
        NATS_SUBJECT_SYSTEM_APP_STATE=nats.names.app_state,
        NATS_SUBJECT_SYSTEM_USER_STATE=nats.names.users,
        NATS_SUBJECT_SYSTEM_MARKET_STATE=nats.names.market,
        NATS_INTAKE_STREAM=nats.names.stream,
        NATS_INTAKE_DURABLE=nats.names.durable,
        LEDGER_TASK_SWEEP_INTERVAL="0.2",
        LEDGER_TASK_SYNC_WAIT="0",
    )
    env.update(overrides)
    return env


def wait_until(check: Callable[[], T | None], what: str, timeout: float = 30.0) -> T:
    """The first truthy answer of ``check`` (an HTTP error counts as none yet)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
        except httpx.HTTPError:
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class ServeProcess:
    """One store, served by one child process after another."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.env = env
        self.workdir = workdir
        self.runs = 0
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.workdir / f"serve-{self.runs}.log"

    def logs(self) -> str:
        """What every run so far wrote."""
        return "".join(
            (self.workdir / f"serve-{n}.log").read_text() for n in range(1, self.runs + 1)
        )

    def start(self) -> ServeProcess:
        """Start a run and wait until it takes requests (what the last run left open is
        settled by then)."""
        assert self.process is None, "a run is going"
        self.runs += 1
        self.port = free_port()
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "market_ledger",
                    "serve",
                    "--http",
                    f"127.0.0.1:{self.port}",
                ],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.wait_for(lambda: "HTTP API on" in self.log.read_text(), "the HTTP API", START_TIMEOUT)
        return self

    def stop(self, signum: int = signal.SIGTERM) -> int:
        """Stop the run with ``signum``; its exit status."""
        assert self.process is not None, "no run is going"
        process, self.process = self.process, None
        process.send_signal(signum)
        try:
            return process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
            raise AssertionError(
                f"serve did not stop on {signum}:\n{self.log.read_text()}"
            ) from None

    def close(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None

    def wait_for(self, check: Callable[[], T | None], what: str, timeout: float = 30.0) -> T:
        def alive_check() -> T | None:
            assert self.process is not None and self.process.poll() is None, self.log.read_text()
            return check()

        try:
            return wait_until(alive_check, what, timeout)
        except AssertionError as error:
            raise AssertionError(f"{error}:\n{self.log.read_text()[-4000:]}") from None

    # --- HTTP -------------------------------------------------------------------------------

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{API}{path}"

    def request(self, method: str, path: str, body: Any = None) -> httpx.Response:
        headers = {"X-Bfl-User": USER, "X-Authorization": TOKEN}
        return httpx.request(method, self.url(path), json=body, headers=headers, timeout=10)

    def install(self, app: str, version: str) -> str:
        """Ask for ``app``'s install; the task id answered."""
        answer = self.request("POST", f"/apps/{app}/install", _install_body(app, version))
        assert answer.status_code == 200, answer.text
        task_id: str = answer.json()["data"]["task_id"]
        return task_id

    def cancel(self, app: str) -> str:
        answer = self.request("DELETE", f"/apps/{app}/install")
        assert answer.status_code == 200, answer.text
        task_id: str = answer.json()["data"]["task_id"]
        return task_id

    def task(self, task_id: str) -> dict[str, Any] | None:
        answer = httpx.get(
            self.url(f"/ledger/tasks/{task_id}"), headers={"X-Bfl-User": USER}, timeout=10
        )
        if answer.status_code == 404:
            return None
        answer.raise_for_status()
        found: dict[str, Any] = answer.json()["data"]
        return found

    def wait_task(self, task_id: str, check: Callable[[dict[str, Any]], bool], what: str) -> Any:
        """The task once ``check`` holds for it."""

        def found() -> dict[str, Any] | None:
            task = self.task(task_id)
            return task if task is not None and check(task) else None

        return self.wait_for(found, f"task {task_id} {what}")

    def catalog_version(self, app: str) -> str:
        """``app``'s latest version, once the catalog is rendered for the user."""

        def version() -> str | None:
            answer = httpx.get(
                self.url("/ledger/catalog"), headers={"X-Bfl-User": USER}, timeout=10
            )
            if answer.status_code != 200:
                return None
            sources = answer.json()["data"]["sources"]
            for entry in sources.get(SOURCE, {"apps": []})["apps"]:
                if entry["app_id"] == app and entry["status"] == "latest":
                    return str(entry["latest_version"])
            return None

        return self.wait_for(version, f"{app} rendered")

    def history(self, app: str) -> list[str]:
        """The names of the task events in ``app``'s history, in order."""
        done = ledger_command("history", "--user", USER, "--app", app, "--json", env=self.env)
        return [e["event"] for e in json.loads(done.stdout) if e["event"].startswith("task_")]


def _install_body(app: str, version: str) -> dict[str, Any]:
    return {"source": SOURCE, "app_name": app, "version": version}


class Notices:
    """The market's notices (``<market subject>.>``), collected on a thread of their own."""

    def __init__(self, nats: Nats) -> None:
        self.nats = nats
        self._lock = threading.Lock()
        self._messages: list[dict[str, Any]] = []
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, name="notices", daemon=True)

    def points(self, task_id: str) -> list[str]:
        """The points published about ``task_id``, each once, in the order they were first
        published (a notice is sent at least once: one sent just before a kill may be sent
        again by the next run)."""
        with self._lock:
            points = [
                str(m["point"])
                for m in self._messages
                if m.get("extensions", {}).get("task_id") == task_id
            ]
        return list(dict.fromkeys(points))

    def of(self, task_id: str, point: str) -> dict[str, Any] | None:
        with self._lock:
            for message in self._messages:
                about = message.get("extensions", {}).get("task_id")
                if about == task_id and message.get("point") == point:
                    return message
        return None

    def _run(self) -> None:
        asyncio.run(self._collect())

    async def _collect(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        client = await connect(self.nats.url)

        async def receive(message: Any) -> None:
            with self._lock:
                self._messages.append(json.loads(message.data))

        try:
            await client.subscribe(f"{self.nats.names.market}.>", cb=receive)
            await client.flush()
            self._ready.set()
            await self._stop.wait()
        finally:
            await client.close()

    @contextmanager
    def collecting(self) -> Iterator[Notices]:
        self._thread.start()
        if not self._ready.wait(10):
            raise AssertionError("the notice subscription did not start")
        try:
            yield self
        finally:
            assert self._loop is not None and self._stop is not None
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(10)
