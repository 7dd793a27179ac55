"""``market-ledger serve`` as a child process, and the CLI run beside it.

:class:`Service` starts ``serve`` on a free loopback port with its log in a file, answers
HTTP calls as a given user, and waits for a condition while checking the process still runs.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(**values: str) -> dict[str, str]:
    """This process's environment without any NATS_ or LEDGER_ setting, plus ``values``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NATS_", "LEDGER_"))}
    env.update(values)
    return env


def ledger_command(
    *args: str, env: Mapping[str, str], check: bool = True
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "market_ledger", *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=60,
        check=check,
    )


class Service:
    """``serve`` in a child process, with its log in a file."""

    def __init__(self, env: Mapping[str, str], log: Path) -> None:
        self.port = free_port()
        self.log = log
        self.process = subprocess.Popen(
            [sys.executable, "-m", "market_ledger", "serve", "--http", f"127.0.0.1:{self.port}"],
            env=dict(env),
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(
        self,
        method: str,
        path: str,
        user: str = "admin",
        *,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        cookies: Mapping[str, str] | None = None,
        timeout: float = 10.0,
    ) -> httpx.Response:
        sent = {"X-Bfl-User": user, **(headers or {})}
        with httpx.Client(base_url=self.base_url, cookies=dict(cookies or {})) as client:
            return client.request(method, path, json=body, headers=sent, timeout=timeout)

    def get(self, path: str, user: str = "admin") -> httpx.Response:
        return self.request("GET", path, user, timeout=5)

    def wait_for(self, check: Callable[[], T | None], what: str, timeout: float = 30.0) -> T:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()
            try:
                result = check()
            except httpx.HTTPError:
                result = None
            if result:
                return result
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}:\n{self.log.read_text()[-3000:]}")

    def catalog_apps(self, user: str = "admin") -> dict[str, dict[str, Any]]:
        answer = self.get("/app-store/api/v2/ledger/catalog", user)
        if answer.status_code != 200:
            return {}
        apps = answer.json()["data"]["sources"].get("market.olares", {"apps": []})["apps"]
        return {a["app_id"]: a for a in apps}

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)
