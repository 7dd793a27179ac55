"""``make run``, the embedded default: its only user is an admin, again on a second run."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
STATUS = "/app-store/api/v2/ledger/status"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without its ledger, NATS or make settings, on a store of its own."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("NATS_", "LEDGER_", "USER_LIST", "MAKE", "MFLAGS"))
    }
    env.update(LEDGER_DATABASE_URL=f"sqlite:///{tmp_path}/ledger.db", **extra)
    return env


def ledger(*args: str, env: dict[str, str]) -> Any:
    done = subprocess.run(
        [sys.executable, "-m", "market_ledger", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout) if "--json" in args else done.stdout


def roles(env: dict[str, str]) -> dict[str, str]:
    return {row["name"]: row["role"] for row in ledger("user", "list", "--json", env=env)}


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to make and the service it started; wait until every one of them is gone."""
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)
    raise AssertionError("the service did not stop within 30 s of SIGTERM")


def status_with_make_run(env: dict[str, str], port: int, log: Path) -> int:
    """Start ``make run``; once it is ready, ask for the ledger's status as ``admin``."""
    process = subprocess.Popen(
        # the venv is the one running these tests: make must not reinstall it
        ["make", "-s", "-o", ".venv/bin/.installed-run", "run"],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:  # ready: the views hold what was written before serve started
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"never ready:\n{log.read_text()[-3000:]}"
            try:
                if httpx.get(f"{base}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        return httpx.get(f"{base}{STATUS}", headers={"X-Bfl-User": "admin"}, timeout=5).status_code
    finally:
        stop_group(process)


def test_given_make_run_when_admin_asks_for_the_status_then_it_is_allowed_also_on_a_second_run(
    tmp_path: Path,
) -> None:
    port = free_port()
    env = clean_env(tmp_path, LEDGER_HTTP=f"127.0.0.1:{port}")
    assert status_with_make_run(env, port, tmp_path / "first.log") == 200
    assert status_with_make_run(env, port, tmp_path / "second.log") == 200
    assert roles(env) == {"admin": "admin"}


def test_given_an_admin_named_in_user_list_when_the_program_starts_then_the_admin_keeps_the_role(
    tmp_path: Path,
) -> None:
    env = clean_env(tmp_path)
    ledger("user", "add", "admin", "--role", "admin", env=env)
    ledger("sync", "--once", env={**env, "USER_LIST": "admin,bob"})
    assert roles(env) == {"admin": "admin", "bob": "normal"}
