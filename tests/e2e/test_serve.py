"""``market-ledger serve`` as a process: the embedded default, NATS in and out, clean stop."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats

from tests.fixtures import EXAMPLE_CATALOG
from tests.support.nats_server import nats_for_test, state_message, user_message
from tests.support.serve_process import Service, clean_env, free_port, ledger_command


def base_env(tmp_path: Path) -> dict[str, str]:
    env = clean_env(
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


def test_a_second_serve_on_one_sqlite_store_refuses_to_start_and_the_cli_keeps_working(
    tmp_path: Path,
) -> None:
    env = base_env(tmp_path)
    first = Service(env, tmp_path / "first.log")
    try:
        first.wait_for(lambda: first.get("/readyz").status_code == 200, "the first serve")
        roles = first.get("/readyz").json()["data"]["roles"]
        assert {role["holder"] for role in roles.values()} - {None} != set()
        second = subprocess.run(
            [sys.executable, "-m", "market_ledger", "serve", "--http", f"127.0.0.1:{free_port()}"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1
        assert "SQLite serves one instance" in second.stdout + second.stderr
        status = json.loads(ledger_command("status", "--json", env=env).stdout)
        assert set(status["roles"]) == {"cycle", "projector", "notifier", "tasks"}
    finally:
        assert first.stop() == 0, first.log.read_text()
