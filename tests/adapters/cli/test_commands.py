"""The ``market-ledger`` command, on a real store: its outputs are a public contract."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from market_ledger.domain.market_source import ConfigureSource
from tests.conftest import StoreFactory
from tests.support.builders import fail, offer, render


def test_users_and_sources_are_added_listed_and_removed(run: Any) -> None:
    assert (
        "registered" in run("user", "add", "alice", "--role", "admin", "--zone", "a.olares").output
    )
    assert (
        "unchanged" in run("user", "add", "alice", "--role", "admin", "--zone", "a.olares").output
    )
    run(
        "source",
        "add",
        "market.olares",
        "--type",
        "remote",
        "--url",
        "https://m",
        "--priority",
        "9",
    )
    users = json.loads(run("user", "list", "--json").output)
    assert [(u["name"], u["role"], u["zone"]) for u in users] == [("alice", "admin", "a.olares")]
    sources = json.loads(run("source", "list", "--json").output)
    assert [(s["id"], s["type"], s["priority"]) for s in sources] == [
        ("market.olares", "remote", 9)
    ]
    run("source", "remove", "market.olares")
    assert json.loads(run("source", "list", "--json").output) == []
    run("user", "remove", "alice")
    assert json.loads(run("user", "list", "--json").output) == []


def test_bad_input_gets_a_clear_error_and_exit_code(run: Any) -> None:
    assert "unknown user 'ghost'" in run("user", "remove", "ghost", code=1).output
    assert "unknown user 'ghost'" in run("catalog", "--user", "ghost", code=1).output
    assert (
        "Invalid value for '--type'"
        in run("source", "add", "x", "--type", "ftp", "--url", "u", code=2).output
    )
    assert (
        "'firefox' is not parked"
        in run("retry", "--user", "ghost", "--app", "firefox", code=1).output
    )


def test_catalog_hash_history_status_and_retry_read_what_was_written(
    run: Any, store: StoreFactory
) -> None:
    run("user", "add", "alice")
    run("source", "add", "market.olares", "--type", "remote", "--url", "https://m")
    ledger = store.open()
    v1 = offer()
    ledger.handler.handle(v1, *(fail(v1) for _ in range(10)))
    catalog = json.loads(run("catalog", "--user", "alice", "--json").output)
    app = catalog["sources"]["market.olares"]["apps"][0]
    assert (app["app_id"], app["status"]) == ("firefox", "parked")
    assert run("hash", "--user", "alice").output.strip() == catalog["hash"]
    status = json.loads(run("status", "--json").output)
    assert status["listings"]["parked"] == 1 and status["projector_lag"] == 0
    run("retry", "--user", "alice", "--app", "firefox")
    ledger.handler.execute(render(v1))
    history = json.loads(run("history", "--user", "alice", "--app", "firefox", "--json").output)
    events = [e["event"] for e in history]
    assert events[0] == "offered" and events[-3:] == ["parked", "retry_requested", "rendered"]
    assert all({"position", "at", "event"} <= set(e) for e in history)
    assert "firefox" in run("catalog", "--user", "alice").output


def test_rebuild_reports_its_rate_and_verify_exits_1_on_a_difference(
    run: Any, store: StoreFactory
) -> None:
    run("user", "add", "alice")
    ledger = store.open()
    ledger.handler.execute(ConfigureSource("market.olares", "remote", "https://m"))
    assert "events/s" in run("rebuild").output
    assert "rows identical" in run("rebuild", "--verify").output
    ledger.catch_up()
    with ledger.writer.begin() as conn:
        conn.execute(ledger.tables.users.update().values(role="tampered"))
    result = run("rebuild", "--verify", code=1)
    assert "users alice: role: live='tampered' rebuilt='normal'" in result.output


def test_the_installed_command_runs(tmp_path: Path) -> None:
    env = {**os.environ, "LEDGER_DATABASE_URL": f"sqlite:///{tmp_path}/ledger.db"}
    command = [sys.executable, "-m", "market_ledger", "user", "add", "alice"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "user alice: registered" in done.stdout
