"""The projector child as the service runs it: woken on commit, reporting its state, and the
readiness answer built from the state of each part."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from market_ledger.adapters.config import Settings
from market_ledger.adapters.health import HealthBoard
from market_ledger.adapters.http_api.server import create_app
from market_ledger.bootstrap import Ledger, bootstrap
from market_ledger.domain.user import RegisterUser
from market_ledger.projector_process import ProjectorProcess, ProjectorSupervisor
from market_ledger.watched_handler import WatchedHandler
from tests.e2e.test_serve_faults import refuse_writes
from tests.support.http_live import LiveServer


def wait_until(check: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


@contextmanager
def sqlite_ledger(tmp_path: Path) -> Iterator[Ledger]:
    ledger = bootstrap(Settings(database_url=f"sqlite:///{tmp_path / 'ledger.db'}"))
    try:
        yield ledger
    finally:
        ledger.close()


@contextmanager
def supervised(ledger: Ledger, board: HealthBoard, **kwargs: Any) -> Iterator[ProjectorSupervisor]:
    """A supervisor running on an event loop of its own, in a thread (as in ``serve``, the
    child is started from the thread that lives as long as the supervisor)."""
    supervisor = ProjectorSupervisor(ProjectorProcess(ledger.settings, **kwargs), board)
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    thread = threading.Thread(target=lambda: loop.run_until_complete(supervisor.run(stop)))
    thread.start()
    try:
        wait_until(lambda: supervisor.process.alive(), "the projector child")
        yield supervisor
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        loop.close()


def test_given_an_idle_projector_child_when_a_write_commits_then_it_is_woken_not_polled(
    tmp_path: Path,
) -> None:
    board = HealthBoard()
    with sqlite_ledger(tmp_path) as ledger:
        # Polling once a minute: only a wake can bring the views up within seconds.
        with supervised(ledger, board, idle_poll=60.0) as supervisor:
            wait_until(lambda: board.state("projector"), "the child's first report")
            handler = WatchedHandler(
                ledger.handler, board, on_commit=lambda _position: supervisor.wake()
            )
            for name in ("alice", "bob", "carol"):
                written = handler.handle(RegisterUser(name))
                assert written.position is not None
                wait_until(
                    lambda p=written.position: ledger.projector.position() >= p,
                    f"the views at {name}'s registration",
                    timeout=5.0,
                )
        state = board.state("store_writes")
        assert state is not None and state.ok


def test_given_a_projector_child_failing_every_batch_then_its_part_says_why_until_it_recovers(
    tmp_path: Path,
) -> None:
    board = HealthBoard()
    with sqlite_ledger(tmp_path) as ledger, supervised(ledger, board) as supervisor:
        wait_until(lambda: board.state("projector"), "the child's first report")
        with sqlite3.connect(tmp_path / "ledger.db", timeout=10) as db:
            db.execute("ALTER TABLE users RENAME TO users_away")
        ledger.handler.handle(RegisterUser("alice"))
        supervisor.wake()
        failing = wait_until(
            lambda: (lambda s: s if s is not None and not s.ok else None)(board.state("projector")),
            "the projector reported failing",
        )
        assert "no such table" in (failing.reason or ""), failing
        with sqlite3.connect(tmp_path / "ledger.db", timeout=10) as db:
            db.execute("ALTER TABLE users_away RENAME TO users")
        wait_until(lambda: board.state("projector").ok, "the projector ok again")  # type: ignore[union-attr]


def test_given_writes_that_fail_then_the_store_writes_part_fails_with_the_error(
    tmp_path: Path,
) -> None:
    board = HealthBoard()
    with sqlite_ledger(tmp_path) as ledger:
        handler = WatchedHandler(ledger.handler, board)
        handler.handle(RegisterUser("alice"))
        assert board.state("store_writes").ok  # type: ignore[union-attr]
        with sqlite3.connect(tmp_path / "ledger.db", timeout=10) as db:
            refuse_writes(db)
        try:
            handler.handle(RegisterUser("bob"))
        except Exception as error:
            assert "nowhere" in str(error)
        else:
            raise AssertionError("the write did not fail")
        state = board.state("store_writes")
        assert state is not None and not state.ok and "nowhere" in (state.reason or "")


def test_given_a_failing_part_then_readyz_answers_503_listing_the_parts_and_the_reason(
    tmp_path: Path,
) -> None:
    board = HealthBoard()
    board.ok("cycle")
    board.failing("nats", "not connected to nats://127.0.0.1:4222: refused by nats://u:secret@h")
    with sqlite_ledger(tmp_path) as ledger:
        server = LiveServer(create_app(ledger, health=board))
        base = server.start()
        try:
            failing = httpx.get(f"{base}/readyz")
            board.ok("nats")
            ready = httpx.get(f"{base}/readyz")
        finally:
            server.stop()
    assert failing.status_code == 503
    data = failing.json()["data"]
    assert data["ready"] is False
    assert data["reason"].startswith("nats failing since ")
    assert "refused by nats://***@h" in data["reason"] and "secret" not in failing.text
    assert data["parts"]["cycle"]["state"] == "ok"
    assert data["parts"]["nats"]["state"] == "failing"
    assert ready.status_code == 200
    assert ready.json()["data"]["parts"]["nats"]["state"] == "ok"
