"""Several ``market-ledger serve`` processes on one PostgreSQL schema and one nats-server.

:class:`Instances` starts them (each with its own instance id, HTTP port and log file), kills,
pauses and restarts them, reads who holds which role from their ``/readyz`` and reads the
event log straight from the shared schema, so a test can count what was appended.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg

from tests.fixtures import EXAMPLE_CATALOG
from tests.support.nats_server import Nats
from tests.support.serve_process import Service, clean_env, ledger_command

API = "/app-store/api/v2"
USER = "admin"
SOURCE = "market.olares"
ROLES = ("cycle", "projector", "notifier", "tasks")
T = TypeVar("T")


@contextmanager
def fresh_schema(postgres_url: str) -> Iterator[str]:
    """A schema of its own for one test, dropped afterwards; its database URL."""
    schema = f"m_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{postgres_url}?schema={schema}"
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def cluster_env(database_url: str, nats: Nats, workdir: Path, **overrides: str) -> dict[str, str]:
    """The environment all instances share: the store, NATS names, short leases and cycles,
    and a copy of the example catalog (``workdir/catalog.json``) as the one source."""
    catalog = workdir / "catalog.json"
    shutil.copy(EXAMPLE_CATALOG, catalog)
    env = clean_env(
        LEDGER_DATABASE_URL=database_url,
        USER_LIST=USER,
        PIPELINE_INTERVAL="0.5",
        SYNCER_SYNC_INTERVAL="0",
        NATS_URL=nats.url,
        NATS_SUBJECT_SYSTEM_APP_STATE=nats.names.app_state,
        NATS_SUBJECT_SYSTEM_USER_STATE=nats.names.users,
        NATS_SUBJECT_SYSTEM_MARKET_STATE=nats.names.market,
        NATS_INTAKE_STREAM=nats.names.stream,
        NATS_INTAKE_DURABLE=nats.names.durable,
        LEDGER_LEASE_TTL="2",
        LEDGER_LEASE_RETRY="0.2",
        LEDGER_TASK_SWEEP_INTERVAL="0.2",
    )
    env.update(overrides)
    ledger_command(
        "source", "add", SOURCE, "--type", "remote", "--url", f"file://{catalog}", env=env
    )  # fmt: skip
    return env


def wait_until(check: Callable[[], T | None], what: str, timeout: float = 30.0) -> T:
    """The first truthy answer of ``check`` (an HTTP error counts as none yet)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
        except (httpx.HTTPError, ValueError, KeyError):
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Instance:
    """One ``serve`` process; started again under the same instance id after a kill."""

    def __init__(self, name: str, env: dict[str, str], workdir: Path) -> None:
        self.name = name
        self.env = {**env, "LEDGER_INSTANCE_ID": name}
        self.workdir = workdir
        self.runs = 0
        self.service: Service | None = None

    def start(self) -> Instance:
        self.runs += 1
        self.service = Service(self.env, self.workdir / f"{self.name}-{self.runs}.log")
        return self

    @property
    def running(self) -> bool:
        return self.service is not None and self.service.process.poll() is None

    @property
    def pid(self) -> int:
        assert self.service is not None
        return self.service.process.pid

    def logs(self) -> str:
        return "".join(
            (self.workdir / f"{self.name}-{n}.log").read_text() for n in range(1, self.runs + 1)
        )

    def get(self, path: str, user: str = USER) -> httpx.Response:
        assert self.service is not None
        return self.service.get(path, user)

    def ready(self) -> dict[str, Any]:
        data: dict[str, Any] = self.get("/readyz").json()["data"]
        return data

    def roles(self) -> dict[str, str | None]:
        """Who holds each role, as this instance's ``/readyz`` shows it."""
        shown = self.ready().get("roles", {})
        return {role: (shown.get(role) or {}).get("holder") for role in ROLES}

    def market_hash(self, user: str = USER) -> str | None:
        answer = self.get(f"{API}/market/hash", user)
        return str(answer.json()["data"]["hash"]) if answer.status_code == 200 else None

    def latest_version(self, app: str) -> str | None:
        answer = self.get(f"{API}/ledger/catalog")
        if answer.status_code != 200:
            return None
        for entry in answer.json()["data"]["sources"].get(SOURCE, {"apps": []})["apps"]:
            if entry["app_id"] == app and entry["status"] == "latest":
                return str(entry["latest_version"])
        return None

    def signal(self, signum: int) -> None:
        assert self.service is not None
        os.kill(self.pid, signum)

    def kill(self) -> None:
        """kill -9, and reap it."""
        assert self.service is not None
        self.service.process.kill()
        self.service.process.wait(10)

    def stop(self) -> int | None:
        if self.service is None:
            return None
        if self.service.process.poll() is None:
            os.kill(self.pid, signal.SIGCONT)  # a paused one must wake to stop
        return self.service.stop()


class Instances:
    """Three (or ``count``) instances of one service."""

    def __init__(self, env: dict[str, str], workdir: Path, count: int = 3) -> None:
        self.env = env
        self.database_url = env["LEDGER_DATABASE_URL"]
        #: the catalog file the one source reads (see :func:`cluster_env`)
        self.catalog = workdir / "catalog.json"
        self.members = [Instance(f"inst-{n}", env, workdir) for n in range(1, count + 1)]

    def start(self) -> Instances:
        for member in self.members:
            member.start()
        for member in self.members:
            # three instances and their first cycle share two cores: starting takes a while
            try:
                wait_until(lambda m=member: m.ready().get("roles"), f"{member.name} answering", 120)
            except AssertionError as error:
                raise AssertionError(f"{error}; its log ends:\n{member.logs()[-3000:]}") from None
        self.wait_roles_held()
        return self

    def live(self) -> list[Instance]:
        return [m for m in self.members if m.running]

    def by_name(self, name: str) -> Instance:
        return next(m for m in self.members if m.name == name)

    def holders(self) -> dict[str, str | None]:
        """Who holds each role, as the database records it now (live leases only)."""
        with self.connect() as conn:
            rows = conn.execute(
                "SELECT role, holder FROM role_leases"
                " WHERE expires_at > extract(epoch FROM clock_timestamp())"
            ).fetchall()
        held = dict(rows)
        return {role: held.get(role) for role in ROLES}

    def wait_roles_held(self, timeout: float = 30.0) -> dict[str, str]:
        def all_held() -> dict[str, str] | None:
            held = self.holders()
            alive = {m.name for m in self.live()}
            if all(held[r] in alive for r in ROLES):
                return {r: str(held[r]) for r in ROLES}
            return None

        return wait_until(all_held, "every role held by a running instance", timeout)

    def wait_taken_over(self, role: str, old: str, timeout: float = 30.0) -> str:
        """The new holder of ``role``, once a running instance other than ``old`` holds it."""

        def other() -> str | None:
            holder = self.holders()[role]
            alive = {m.name for m in self.live()}
            return holder if holder is not None and holder != old and holder in alive else None

        return wait_until(other, f"{role} taken from {old}", timeout)

    def same_hash(self, timeout: float = 30.0) -> str:
        """The market hash every running instance answers, once they agree."""

        def agreed() -> str | None:
            hashes = {m.market_hash() for m in self.live()}
            return hashes.pop() if len(hashes) == 1 and None not in hashes else None

        return wait_until(agreed, "every instance answering the same hash", timeout)

    def connect(self) -> psycopg.Connection[Any]:
        base, _, schema = self.database_url.partition("?schema=")
        conn = psycopg.connect(base, autocommit=True)
        conn.execute(f'SET search_path TO "{schema}"')
        return conn

    def events(self, topic_prefix: str = "") -> list[tuple[int, str, dict[str, Any]]]:
        """The log's events (position, topic, state) whose topic starts with the prefix."""
        with self.connect() as conn:
            rows = conn.execute(
                "SELECT notification_id, topic, convert_from(state, 'UTF8')"
                " FROM marketledger_events WHERE topic LIKE %s ORDER BY notification_id",
                (f"{topic_prefix}%",),
            ).fetchall()
        return [(int(p), str(t), json.loads(s)) for p, t, s in rows]

    def head(self) -> int:
        with self.connect() as conn:
            row = conn.execute("SELECT max(notification_id) FROM marketledger_events").fetchone()
        return int(row[0] or 0) if row else 0

    def projected(self) -> int:
        with self.connect() as conn:
            row = conn.execute("SELECT max(position) FROM projector_position").fetchone()
        return int(row[0] or 0) if row else 0

    def close(self) -> list[int | None]:
        return [m.stop() for m in self.members]

    def logs(self) -> str:
        return "\n".join(f"=== {m.name}\n{m.logs()}" for m in self.members)
