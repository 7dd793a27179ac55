"""``market-ledger serve`` as a process: the embedded default, NATS in and out, clean stop."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import nats

from tests.fixtures import EXAMPLE_CATALOG
from tests.support.nats_server import nats_for_test, state_message, user_message


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ledger_command(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "market_ledger", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


class Service:
    """``serve`` in a child process, with its log in a file."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.log = log
        self.process = subprocess.Popen(
            [sys.executable, "-m", "market_ledger", "serve", "--http", f"127.0.0.1:{self.port}"],
            env=env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
        )

    def get(self, path: str, user: str = "admin") -> httpx.Response:
        return httpx.get(
            f"http://127.0.0.1:{self.port}{path}", headers={"X-Bfl-User": user}, timeout=5
        )

    def wait_for(self, check: Any, what: str, timeout: float = 30.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()
            try:
                result = check()
            except httpx.HTTPError:
                result = None
            if result:
                return result
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}:\n{self.log.read_text()[-3000:]}")

    def catalog_apps(self, user: str = "admin") -> dict[str, dict[str, Any]]:
        answer = self.get("/app-store/api/v2/ledger/catalog", user)
        if answer.status_code != 200:
            return {}
        apps = answer.json()["data"]["sources"].get("market.olares", {"apps": []})["apps"]
        return {a["app_id"]: a for a in apps}

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)


def base_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NATS_", "LEDGER_"))}
    env.update(
        LEDGER_DATABASE_URL=f"sqlite:///{tmp_path}/ledger.db",
        USER_LIST="admin",
        PIPELINE_INTERVAL="1",
    )
    ledger_command(
        "source",
        "add",
        "market.olares",
        "--type",
        "remote",
        "--url",
        f"file://{EXAMPLE_CATALOG}",
        env=env,
    )
    return env


def test_the_embedded_default_syncs_renders_serves_and_stops_cleanly(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    service = Service(env, tmp_path / "serve.log")
    try:
        apps = service.wait_for(
            lambda: (
                lambda a: (
                    a if len(a) == 24 and all(x["status"] == "latest" for x in a.values()) else None
                )
            )(service.catalog_apps()),
            "the example catalog rendered",
        )
        assert apps["affine"]["latest_version"]
        ready = service.get("/readyz").json()
        assert ready["data"]["ready"] is True
    finally:
        code = service.stop()
    log = service.log.read_text()
    assert code == 0, log
    assert "NATS is off" in log
    assert "stopped after" in log


def test_serve_takes_nats_events_in_and_publishes_notifications(tmp_path: Path) -> None:
    with nats_for_test(tmp_path, own=True) as nats_env:
        env = base_env(tmp_path)
        env.update(
            NATS_URL=nats_env.url,
            NATS_SUBJECT_SYSTEM_APP_STATE=nats_env.names.app_state,
            NATS_SUBJECT_SYSTEM_USER_STATE=nats_env.names.users,
            NATS_SUBJECT_SYSTEM_MARKET_STATE=nats_env.names.market,
        )
        service = Service(env, tmp_path / "serve.log")
        received: list[dict[str, Any]] = []

        async def scenario() -> None:
            client = await nats.connect(nats_env.url)

            async def collect(message: Any) -> None:
                received.append({"subject": message.subject, **json.loads(message.data)})

            await client.subscribe(f"{nats_env.names.market}.>", cb=collect)
            try:
                await asyncio.to_thread(
                    service.wait_for, lambda: len(service.catalog_apps()) == 24, "the catalog"
                )
                await asyncio.to_thread(
                    service.wait_for,
                    lambda: "taking in" in service.log.read_text(),
                    "the NATS intake",
                )
                subject = nats_env.names.app_state.replace("*", "admin")
                now = datetime.now(UTC)
                await client.publish(subject, state_message("admin", "affine", "running", now))
                await client.publish(nats_env.names.users, user_message("user_created", "bob", now))
                await client.flush()
                await asyncio.to_thread(
                    service.wait_for,
                    lambda: service.catalog_apps()["affine"]["installed_state"] == "running",
                    "the installed state",
                )
                await asyncio.to_thread(
                    service.wait_for,
                    lambda: service.get("/app-store/api/v2/market/hash", "bob").status_code == 200,
                    "bob registered",
                )
                await asyncio.to_thread(
                    service.wait_for,
                    lambda: any(m.get("notify_type") == "app_state_change" for m in received),
                    "an app_state_change notification",
                )
            finally:
                await client.close()

        try:
            asyncio.run(scenario())
        finally:
            code = service.stop()
        assert code == 0, service.log.read_text()
    change = next(m for m in received if m.get("notify_type") == "app_state_change")
    assert change["subject"] == f"{nats_env.names.market}.admin"
    assert change["app_name"] == "affine" and change["user"] == "admin"
    assert any(m.get("notify_type") == "market_hash_changed" for m in received)
