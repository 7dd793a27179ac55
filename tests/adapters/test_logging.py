"""The log: quiet when nothing happens, JSON for production, progress that stays readable."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import pty
import subprocess
import sys
from collections.abc import Iterator

import pytest

from market_ledger.adapters.logging_setup import QUIET_LOGGERS, configure_logging
from market_ledger.bootstrap import Ledger, remote_systems
from market_ledger.domain.market_source import ConfigureSource
from market_ledger.domain.user import RegisterUser
from market_ledger.runtime import _log_summary, standard_cycle
from market_ledger.service.context import CycleContext
from market_ledger.service.handler import utc_now
from tests.conftest import StoreFactory
from tests.fixtures import EXAMPLE_CATALOG


@pytest.fixture
def root_logging() -> Iterator[None]:
    """configure_logging changes the process's loggers: put them back afterwards."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    levels = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def example_ledger(store: StoreFactory) -> Ledger:
    ledger = store.open()
    ledger.handler.handle(
        RegisterUser("alice"),
        ConfigureSource("market.olares", "remote", EXAMPLE_CATALOG.as_uri()),
    )
    return ledger


def test_given_a_cycle_with_nothing_to_do_then_its_line_is_debug_and_a_busy_one_info(
    sqlite_store: StoreFactory, caplog: pytest.LogCaptureFixture
) -> None:
    ledger = example_ledger(sqlite_store)

    async def two_cycles() -> tuple[dict[str, object], dict[str, object]]:
        cycle = standard_cycle(ledger)
        context = CycleContext(ledger, remote_systems(ledger.settings), utc_now)
        return await cycle.run(context), await cycle.run(context)

    busy, idle = asyncio.run(two_cycles())
    caplog.set_level(logging.DEBUG, logger="market_ledger")
    _log_summary(busy)
    _log_summary(idle)
    lines = [(r.levelno, r.getMessage()) for r in caplog.records if r.msg == "cycle: %s"]
    assert [level for level, _ in lines] == [logging.INFO, logging.DEBUG]
    assert "synced (24 apps" in lines[0][1] and "market.olares unchanged" in lines[1][1]


def test_given_the_json_format_then_each_line_is_one_object_with_the_exception_text(
    root_logging: None,
) -> None:
    out = io.StringIO()
    configure_logging({"LEDGER_LOG_FORMAT": "json"}, stream=out)
    log = logging.getLogger("market_ledger.test")
    log.info("hello %s", "there")
    try:
        raise RuntimeError("at https://u:pw-1@h/?token=t-1")
    except RuntimeError:
        log.exception("it failed")
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert set(first) == {"time", "level", "logger", "message"}
    assert (first["level"], first["logger"], first["message"]) == (
        "INFO",
        "market_ledger.test",
        "hello there",
    )
    assert second["level"] == "ERROR" and "RuntimeError" in second["exception"]
    assert "pw-1" not in second["exception"] and "t-1" not in second["exception"]


def test_given_the_json_format_when_a_command_runs_then_stderr_is_json_lines(
    sqlite_store: StoreFactory,
) -> None:
    example_ledger(sqlite_store).close()
    env = {
        **os.environ,
        **sqlite_store.env(),
        "LEDGER_LOG_FORMAT": "json",
        "LEDGER_LOG_LEVEL": "DEBUG",
    }
    done = subprocess.run(
        [sys.executable, "-m", "market_ledger", "sync", "--once"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines
    for line in lines:
        assert {"time", "level", "logger", "message"} <= set(json.loads(line))


def rebuild_env(store: StoreFactory) -> dict[str, str]:
    example_ledger(store).close()
    return {**os.environ, **store.env(), "LEDGER_LOG_LEVEL": "INFO"}


def test_given_stderr_is_not_a_terminal_when_rebuilding_then_progress_is_log_lines(
    sqlite_store: StoreFactory,
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "market_ledger", "rebuild"],
        env=rebuild_env(sqlite_store),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "rebuild: 2 of 2 events (100 %)" in done.stderr
    assert "\r" not in done.stderr


def test_given_stderr_is_a_terminal_when_rebuilding_then_no_log_line_is_written_mid_bar(
    sqlite_store: StoreFactory,
) -> None:
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "market_ledger", "rebuild"],
        env=rebuild_env(sqlite_store),
        stdout=subprocess.DEVNULL,
        stderr=follower,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the other end closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert process.wait(60) == 0
    written = b"".join(chunks).decode()
    assert "rebuilding" in written  # the bar was drawn
    logged = [line for line in written.splitlines() if " INFO " in line]
    assert any("rebuild: swapped in" in line for line in logged)
    assert all("rebuilding" not in line for line in logged), written
