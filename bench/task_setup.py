"""What the task benchmark runs against, one fresh set per run: a store, a nats-server, the
fake app-service in a process of its own, and ``market-ledger serve`` as a child process.

:mod:`bench.task_bench` drives them. The catalog is the example catalog's apps, widened with
numbered variants when more are needed, written as a ``file://`` source.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import httpx
import psycopg

from tests.fixtures import EXAMPLE_CATALOG
from tests.support.fakes.app_service import FakeAppService
from tests.support.nats_server import NatsServer

SOURCE = "market.olares"
#: the subjects of one run (each run has its own nats-server, so fixed names do)
APP_STATE_PREFIX = "bench.application"
MARKET_SUBJECT = "bench.market"
USERS_SUBJECT = "bench.users"
#: how long the fake app-service may take to start
START_TIMEOUT = 30.0
#: how long the service may take to start and render every user's catalog
READY_TIMEOUT = 180.0


def user_names(count: int) -> list[str]:
    return [f"user{n:02d}" for n in range(count)]


def write_catalog(path: Path, count: int) -> list[tuple[str, str]]:
    """A catalog document of ``count`` apps at ``path``; answers (name, version) of each."""
    document = json.loads(EXAMPLE_CATALOG.read_text(encoding="utf-8"))
    base = [document["data"]["apps"][key] for key in sorted(document["data"]["apps"])]
    apps: dict[str, dict[str, Any]] = {}
    for n in range(count):
        entry = dict(base[n % len(base)])
        if n >= len(base):
            suffix = f"-{n // len(base)}"
            for key in ("id", "appID", "name", "dir"):
                entry[key] = f"{entry[key]}{suffix}"
        apps[entry["name"]] = entry
    document["data"] = {
        "apps": apps,
        **{key: {} for key in ("topics", "topic_lists", "recommends", "pages", "tags")},
        "tops": [],
        "latest": [],
    }
    path.write_text(json.dumps(document), encoding="utf-8")
    return [(entry["name"], entry["version"]) for entry in apps.values()]


@contextlib.contextmanager
def fresh_store(work: Path, postgres: str | None) -> Iterator[str]:
    """The database URL of an empty store: a SQLite file, or a new PostgreSQL schema."""
    if not postgres:
        yield f"sqlite:///{work / 'ledger.db'}"
        return
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{postgres}{'&' if '?' in postgres else '?'}schema={schema}"
    finally:
        with psycopg.connect(postgres, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


# --- the fake app-service, in a process of its own (as app-service is) ----------------------


def _fake_process(
    nats_url: str, timing: tuple[float, float], hang_app: str | None, pipe: Any, stop: Any
) -> None:
    latency, step_delay = timing
    fake = FakeAppService(
        nats_url=nats_url, subject_prefix=APP_STATE_PREFIX, latency=latency, step_delay=step_delay
    )
    if hang_app:
        fake.hang(app=hang_app, action="install")
    fake.start()
    try:
        pipe.send(fake.host_port)
        stop.wait()
        counts = {
            "accepted": len(fake.operations),
            "calls": fake.count("install"),
            "publish_errors": len(fake.lifecycles.errors),
        }
    finally:
        fake.stop()  # a hanging call is answered 503 now
    pipe.send(counts)


class FakeAppServiceProcess:
    def __init__(
        self, nats_url: str, latency: float, step_delay: float, hang_app: str | None
    ) -> None:
        context = multiprocessing.get_context("spawn")
        self._receive, send = context.Pipe(duplex=False)
        self._stop = context.Event()
        self._process = context.Process(
            target=_fake_process,
            args=(nats_url, (latency, step_delay), hang_app, send, self._stop),
            daemon=True,
        )
        self._process.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._receive.poll(0.1):
            if not self._process.is_alive() or time.monotonic() > deadline:
                self._process.kill()
                raise SystemExit(f"the fake app-service did not start ({self._process.exitcode})")
        host_port: str = self._receive.recv()
        self.host, port = host_port.rsplit(":", 1)
        self.port = int(port)

    def stop(self) -> dict[str, int]:
        """Stop the fake; answers how many calls it had and how many it accepted."""
        self._stop.set()
        counts: dict[str, int] = self._receive.recv() if self._receive.poll(15) else {}
        self._process.join(15)
        return counts


# --- the service -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process and its waited-for children so far (Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(int(value) for value in fields[11:15]) / ticks


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


@attrs.frozen
class ServiceConfig:
    database_url: str
    users: list[str]
    catalog: Path
    nats_url: str
    app_service: tuple[str, int]
    #: LEDGER_TASK_CONCURRENCY; None leaves the service's default
    concurrency: int | None


class Service:
    """``market-ledger serve`` in a child process, its log in ``work/serve.log``."""

    def __init__(self, config: ServiceConfig, work: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("NATS_", "LEDGER_"))}
        env.update(
            LEDGER_DATABASE_URL=config.database_url,
            USER_LIST=",".join(config.users),
            # the first cycle renders the catalog; no other cycle runs in the measured window
            PIPELINE_INTERVAL="3600",
            NATS_URL=config.nats_url,
            NATS_SUBJECT_SYSTEM_APP_STATE=f"{APP_STATE_PREFIX}.*",
            NATS_SUBJECT_SYSTEM_USER_STATE=USERS_SUBJECT,
            NATS_SUBJECT_SYSTEM_MARKET_STATE=MARKET_SUBJECT,
            APP_SERVICE_SERVICE_HOST=config.app_service[0],
            APP_SERVICE_SERVICE_PORT=str(config.app_service[1]),
        )
        if config.concurrency is not None:
            env["LEDGER_TASK_CONCURRENCY"] = str(config.concurrency)
        ledger = [sys.executable, "-m", "market_ledger"]
        add_source = [*ledger, "source", "add", SOURCE, "--type", "remote"]
        subprocess.run(
            [*add_source, "--url", config.catalog.as_uri()],
            env=env,
            cwd=work,
            check=True,
            capture_output=True,
        )
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log = work / "serve.log"
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [*ledger, "serve", "--http", f"127.0.0.1:{self.port}"],
                env=env,
                cwd=work,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, users: list[str], apps: int) -> None:
        """Until every user's catalog has its ``apps`` apps rendered and NATS is taken in."""
        deadline = time.monotonic() + READY_TIMEOUT
        waiting = list(users)
        with httpx.Client(base_url=self.base_url, timeout=10) as client:
            while waiting or "taking in" not in self.log.read_text():
                if self.process.poll() is not None or time.monotonic() > deadline:
                    tail = self.log.read_text()[-3000:]
                    raise SystemExit(f"the service did not get ready:\n{tail}")
                if waiting and self._rendered(client, waiting[0], apps):
                    waiting.pop(0)
                    continue
                time.sleep(0.2)

    @staticmethod
    def _rendered(client: httpx.Client, user: str, apps: int) -> bool:
        try:
            answer = client.get("/app-store/api/v2/ledger/catalog", headers={"X-Bfl-User": user})
        except httpx.HTTPError:
            return False
        if answer.status_code != 200:
            return False
        listed = answer.json()["data"]["sources"].get(SOURCE, {"apps": []})["apps"]
        return len(listed) == apps and all(a["status"] == "latest" for a in listed)

    def cpu_seconds(self) -> tuple[float, float]:
        """CPU time so far of the service's process, and of its children (the projector)."""
        children = children_of(self.process.pid)
        return cpu_seconds(self.process.pid), sum(cpu_seconds(pid) for pid in children)

    def stop(self) -> tuple[int, list[str]]:
        """Stop it; answers its exit status and the log lines that say something failed."""
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(10)
        lines = self.log.read_text(errors="replace").splitlines()
        bad = [line for line in lines if " ERROR " in line or "Traceback" in line]
        return code, bad


@contextlib.contextmanager
def nats_server(work: Path) -> Iterator[str]:
    server = NatsServer(work / "nats")
    server.start()
    try:
        yield server.url
    finally:
        server.stop()
