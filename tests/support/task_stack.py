"""The whole task path on real servers: a nats-server, a FakeAppService publishing app states
on it, and ``market-ledger serve`` as a child process reading them, seeded with the example
catalog and the users ``admin`` (an admin), ``alice`` and ``bob``.

:class:`TaskStack` speaks to the service as the market's front end does (the task routes with
the user's token in a cookie) and reads what the user is told on the market subject of each
user, ``os.market.<user>`` in production (:class:`MarketInbox`).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import attrs
import httpx
import nats
from nats.aio.msg import Msg

from tests.fixtures import EXAMPLE_CATALOG
from tests.support.app_service_calls import subject_prefix
from tests.support.fakes import FakeAppService
from tests.support.nats_server import Nats, consumed, nats_for_test
from tests.support.serve_process import Service, clean_env, ledger_command

SOURCE = "market.olares"
#: the token alice's browser sends; it must never be written anywhere
TOKEN = "alice-token-5f9c1e7d2b"
BOB_TOKEN = "bob-token-0a4e8c6f13"
TOKENS = {"alice": TOKEN, "bob": BOB_TOKEN, "admin": "admin-token-77d3b2a9e1"}
MARKET = "/app-store/api/v2"
LEDGER = f"{MARKET}/ledger"
REPO_HOST, REPO_PORT = "chart-repo.test", "82"
#: the versions of the example catalog's apps
VERSIONS: dict[str, str] = {
    name: app["version"]
    for name, app in json.loads(EXAMPLE_CATALOG.read_text())["data"]["apps"].items()
}


class MarketInbox:
    """The messages published on ``<subject>.>``, collected on a loop of their own."""

    def __init__(self, url: str, subject: str) -> None:
        self._lock = threading.Lock()
        self._messages: list[tuple[str, dict[str, Any]]] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._client = self._run(self._subscribe(url, f"{subject}.>"))

    async def _subscribe(self, url: str, subject: str) -> Any:
        client = await nats.connect(url)
        await client.subscribe(subject, cb=self._receive)
        await client.flush()
        return client

    async def _receive(self, message: Msg) -> None:
        with self._lock:
            self._messages.append((message.subject, json.loads(message.data)))

    def _run(self, work: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(10)

    @property
    def messages(self) -> list[tuple[str, dict[str, Any]]]:
        with self._lock:
            return list(self._messages)

    def points(self, task_id: str) -> list[tuple[str, dict[str, Any]]]:
        """(subject, message) of each task point about ``task_id``, in order."""
        return [
            (subject, message)
            for subject, message in self.messages
            if message.get("extensions", {}).get("task_id") == task_id
        ]

    def point_names(self, task_id: str) -> list[str]:
        return [message["point"] for _, message in self.points(task_id)]

    def close(self) -> None:
        self._run(self._client.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()


@attrs.define
class TaskStack:
    tmp: Path
    nats: Nats
    fake: FakeAppService
    env: dict[str, str]
    service: Service
    inbox: MarketInbox

    # --- the task routes ------------------------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        user: str = "alice",
        body: Any = None,
        *,
        token: str | None = None,
    ) -> httpx.Response:
        """A task route as the front end calls it: the user's token in the cookie."""
        cookie = {"auth_token": token or TOKENS[user]}
        return self.service.request(method, path, user, body=body, cookies=cookie, timeout=30)

    def install(
        self, app: str, user: str = "alice", *, version: str | None = None, **body: Any
    ) -> httpx.Response:
        request = {"source": SOURCE, "app_name": app, "version": version or VERSIONS[app]}
        return self.call("POST", f"{MARKET}/apps/{app}/install", user, {**request, **body})

    def clone(self, app: str, title: str, user: str = "alice", **body: Any) -> httpx.Response:
        request = {"source": SOURCE, "app_name": app, "title": title, **body}
        return self.call("POST", f"{MARKET}/apps/{app}/clone", user, request)

    def upgrade(self, app: str, user: str = "alice", **body: Any) -> httpx.Response:
        request = {"source": SOURCE, "app_name": app, "version": VERSIONS[app], **body}
        return self.call("PUT", f"{MARKET}/apps/{app}/upgrade", user, request)

    def uninstall(self, app: str, user: str = "alice", **body: Any) -> httpx.Response:
        return self.call("DELETE", f"{MARKET}/apps/{app}", user, body or None)

    def cancel(self, app: str, user: str = "alice", **body: Any) -> httpx.Response:
        return self.call("DELETE", f"{MARKET}/apps/{app}/install", user, body or None)

    # --- what the service says ------------------------------------------------------------

    def task(self, task_id: str, user: str = "alice") -> httpx.Response:
        return self.service.get(f"{LEDGER}/tasks/{task_id}", user)

    def task_json(self, task_id: str, user: str = "alice") -> dict[str, Any] | None:
        answer = self.task(task_id, user)
        if answer.status_code != 200:
            return None
        data: dict[str, Any] = answer.json()["data"]
        return data

    def wait_status(
        self, task_id: str, status: str, outcome: str | None = None, user: str = "alice"
    ) -> dict[str, Any]:
        """The task once its wire status (and outcome, if given) are these."""

        def reached() -> dict[str, Any] | None:
            found = self.task_json(task_id, user)
            if found is None or found["status"] != status:
                return None
            return found if outcome is None or found["outcome"] == outcome else None

        return self.service.wait_for(reached, f"task {task_id} {status}/{outcome}")

    def wait_points(self, task_id: str, count: int) -> list[str]:
        return self.service.wait_for(
            lambda: (lambda names: names if len(names) >= count else None)(
                self.inbox.point_names(task_id)
            ),
            f"{count} notice(s) of task {task_id}",
        )

    def intake_idle(self) -> bool:
        """Whether the service has taken in (and acknowledged) every app state published."""

        async def look() -> bool:
            client = await nats.connect(self.nats.url)
            try:
                return await consumed(client, self.nats.names)
            finally:
                await client.close()

        return asyncio.run(look())

    def history(self, app: str, user: str = "alice") -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = self.cli_json("history", "--user", user, "--app", app)
        return entries

    def cli(self, *args: str, check: bool = True) -> str:
        return ledger_command(*args, env=self.env, check=check).stdout

    def cli_json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "--json"))

    def last_installed(self, app: str, user: str = "alice") -> dict[str, Any] | None:
        """The ``last_installed`` view's row of the user's app, read from the SQLite file."""
        with closing(sqlite3.connect(self.tmp / "ledger.db", timeout=10)) as db:
            db.row_factory = sqlite3.Row
            found = db.execute(
                "SELECT * FROM last_installed WHERE user_name = ? AND app_name = ?", (user, app)
            ).fetchone()
        return None if found is None else dict(found)

    def installed(self, app: str, user: str = "alice") -> bool:
        """Whether the service shows the user's app as installed."""
        return f"{user}/{app}" in app_states(self.service, user)

    def published_states(self, app: str) -> list[str]:
        """The states the fake published for ``app``, in order."""
        return [m["state"] for _, m in self.fake.published if m["name"] == app]

    def wait_published(self, app: str, state: str) -> None:
        self.service.wait_for(
            lambda: state in self.published_states(app), f"{app} {state} published"
        )

    def operations_of(self, app: str, kind: str | None = None) -> list[Any]:
        return [
            o for o in self.fake.operations if o.app == app and (kind is None or o.kind == kind)
        ]

    def calls_to(self, app: str, action: str) -> list[Any]:
        path = f"/app-service/v1/apps/{app}/{action}"
        return [r for r in self.fake.requests if r.path == path]


def task_id_of(answer: httpx.Response) -> str:
    assert answer.status_code == 200, answer.text
    task_id: str = answer.json()["data"]["task_id"]
    return task_id


def stack_env(tmp: Path, nats: Nats, fake: FakeAppService, **settings: str) -> dict[str, str]:
    env = clean_env(
        LEDGER_DATABASE_URL=f"sqlite:///{tmp}/ledger.db",
        PIPELINE_INTERVAL="0.5",
        APP_SERVICE_SERVICE_HOST=fake.host,
        APP_SERVICE_SERVICE_PORT=str(fake.port),
        REPO_URL_HOST=REPO_HOST,
        REPO_URL_PORT=REPO_PORT,
        NATS_URL=nats.url,
        NATS_SUBJECT_SYSTEM_APP_STATE=nats.names.app_state,
        NATS_SUBJECT_SYSTEM_USER_STATE=nats.names.users,
        NATS_SUBJECT_SYSTEM_MARKET_STATE=nats.names.market,
        NATS_INTAKE_STREAM=nats.names.stream,
        NATS_INTAKE_DURABLE=nats.names.durable,
        LEDGER_TASK_HTTP_TIMEOUT="10",
    )
    env.update(settings)
    return env


def seed(env: Mapping[str, str]) -> None:
    """The example catalog as the market source; admin, alice and bob registered."""
    ledger_command(
        "source", "add", SOURCE, "--type", "remote", "--url", f"file://{EXAMPLE_CATALOG}", env=env
    )
    ledger_command("user", "add", "admin", "--role", "admin", env=env)
    ledger_command("user", "add", "alice", env=env)
    ledger_command("user", "add", "bob", env=env)


def app_states(service: Service, user: str = "alice") -> dict[str, Any]:
    answer = service.get(f"{MARKET}/runtime/state", user)
    states: dict[str, Any] = answer.json()["data"]["app_states"] if answer.is_success else {}
    return states


def wait_ready(service: Service, preinstalled: Iterable[str] = ()) -> None:
    """Every user's catalog rendered, alice's ``preinstalled`` apps recorded, and the NATS
    intake taking messages in."""
    for user in ("alice", "bob"):
        service.wait_for(
            lambda u=user: (
                len(service.catalog_apps(u)) == len(VERSIONS)  # type: ignore[misc]
                and all(a["status"] == "latest" for a in service.catalog_apps(u).values())
            ),
            f"{user}'s catalog rendered",
        )
    wanted = {f"alice/{app}" for app in preinstalled}
    service.wait_for(lambda: wanted <= set(app_states(service)), "the installations recorded")
    service.wait_for(lambda: "taking in" in service.log.read_text(), "the NATS intake")


@contextmanager
def task_stack(
    tmp: Path, *, preinstalled: Mapping[str, str] | None = None, **settings: str
) -> Iterator[TaskStack]:
    """The stack, running; ``preinstalled`` (app -> state): alice's apps app-service lists
    before the service starts (status correction records them as installations)."""
    with nats_for_test(tmp) as nats_env:
        fake = FakeAppService(
            nats_url=nats_env.url, subject_prefix=subject_prefix(nats_env), step_delay=0.05
        )
        with fake:
            for app, state in (preinstalled or {}).items():
                fake.install("alice", app, state=state, source=SOURCE)
            env = stack_env(tmp, nats_env, fake, **settings)
            seed(env)
            inbox = MarketInbox(nats_env.url, nats_env.names.market)
            service = Service(env, tmp / "serve.log")
            try:
                wait_ready(service, preinstalled or {})
                yield TaskStack(tmp, nats_env, fake, env, service, inbox)
            finally:
                fake.release()
                code = service.stop()
                inbox.close()
            assert code == 0, service.log.read_text()[-3000:]
