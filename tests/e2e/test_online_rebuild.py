"""``rebuild`` from another process while ``serve`` keeps taking NATS messages in and
answering HTTP reads, on SQLite and on PostgreSQL.

No read fails (not even one that meets the switch of the tables), no message is lost, and
the switched-in views equal a rebuild. A rebuild killed at any of its steps leaves the
serving views as they were, ``status`` shows the half-built generation, and the next
rebuild discards it; a rebuild started while another runs is refused.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from market_ledger.adapters.cli.rebuild_command import KILL_AT, PAUSE_AT
from market_ledger.projections.database import create_view_engine
from tests.conftest import NO_POSTGRES, POSTGRES_URL
from tests.fixtures import EXAMPLE_CATALOG
from tests.support.http_readers import Readers
from tests.support.instances import API, SOURCE, USER, cluster_env, fresh_schema, wait_until
from tests.support.nats_server import Nats, nats_for_test
from tests.support.nats_traffic import Traffic
from tests.support.serve_process import Service, clean_env, ledger_command

STREAMED_APPS = ["affine", "anythingllm"]
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param(
        "postgres",
        id="postgres",
        marks=[pytest.mark.postgres, pytest.mark.skipif(not POSTGRES_URL, reason=NO_POSTGRES)],
    ),
]


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/ledger.db"
        return
    with fresh_schema(POSTGRES_URL) as url:
        yield url


@pytest.fixture
def nats(tmp_path: Path) -> Iterator[Nats]:
    with nats_for_test(tmp_path) as server:
        yield server


def logged_event_ids(database_url: str) -> set[str]:
    """The ``event_id`` of every installation event in the store's log."""
    base, _, schema = database_url.partition("?schema=")
    engine = create_view_engine(base, schema=schema or None)
    table = "stored_events" if engine.dialect.name == "sqlite" else "marketledger_events"
    try:
        with engine.connect() as conn:
            states = conn.execute(
                sa.text(f"SELECT state FROM {table} WHERE topic LIKE 'installation.%'")
            ).scalars()
            return {json.loads(bytes(s)).get("event_id") for s in states}
    finally:
        engine.dispose()


def json_of(*args: str, env: dict[str, str]) -> Any:
    return json.loads(ledger_command(*args, env=env).stdout)


def test_given_serve_under_nats_and_http_load_when_another_process_rebuilds_then_no_read_fails_no_message_is_lost_and_the_views_verify(  # noqa: E501
    database_url: str, nats: Nats, tmp_path: Path
) -> None:
    # given serve with the example catalog, app-state messages streaming in, readers reading
    env = cluster_env(database_url, nats, tmp_path)
    for short in ("LEDGER_LEASE_TTL", "LEDGER_LEASE_RETRY"):  # one instance: the usual leases
        env.pop(short)
    ledger_command("user", "add", USER, "--role", "admin", env=env)  # reads the ledger's status
    service = Service(env, tmp_path / "serve.log")
    traffic = Traffic(nats, USER, STREAMED_APPS, every=0.02)
    readers = Readers(service.base_url, USER)
    rebuilds: list[tuple[float, float]] = []
    try:
        service.wait_for(lambda: len(service.catalog_apps()) == 24, "the catalog rendered")
        service.wait_for(lambda: "taking in" in service.log.read_text(), "the NATS intake")
        with traffic.running(), readers.running():
            with traffic.publishing():
                # when rebuilds run from another process, some held at a step so that the
                # readers meet the switch while it holds the tables
                for pause in ("", "switching:1", "hashed:0.5", "switching:1", ""):
                    started = time.monotonic()
                    done = ledger_command("rebuild", env={**env, PAUSE_AT: pause}, check=False)
                    rebuilds.append((started, time.monotonic()))
                    assert done.returncode == 0, done.stdout + done.stderr
            published = traffic.published_now()
            wait_until(
                lambda: {p.event_id for p in published} <= logged_event_ids(database_url),
                "every published message in the log",
                60,
            )
            wait_until(
                lambda: service.get(f"{API}/ledger/status").json()["data"]["projector_lag"] == 0,
                "the views caught up",
                60,
            )
            verified = ledger_command("rebuild", "--verify", env=env, check=False)
        # then no read failed, and reads went on during every rebuild
        assert readers.failed() == [], readers.failed()[:5]
        for start, end in rebuilds:
            assert readers.answered_between(start, end), "no read during a rebuild"
        # and no message was lost: each app shows the last state published for it
        assert published and traffic.failures == []
        last = {p.app: p.state for p in published}
        apps = service.catalog_apps()
        assert {app: apps[app]["installed_state"] for app in last} == last
        # and the switched-in views equal a rebuild
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert service.process.poll() is None
    finally:
        code = service.stop()
    log = service.log.read_text()
    assert code == 0, log[-3000:]
    assert "Traceback" not in log, log[-3000:]


def synced_env(database_url: str) -> dict[str, str]:
    """A store with the example catalog synced once for the admin user; its environment."""
    env = clean_env(LEDGER_DATABASE_URL=database_url, USER_LIST=USER)
    ledger_command(
        "source", "add", SOURCE, "--type", "remote", "--url", f"file://{EXAMPLE_CATALOG}", env=env
    )  # fmt: skip
    ledger_command("sync", "--once", env=env)
    return env


@pytest.mark.parametrize("step", ["filling", "hashed", "switching", "switched"])
def test_given_a_synced_store_when_a_rebuild_is_killed_at_a_step_then_the_serving_views_are_untouched_and_the_next_rebuild_succeeds(  # noqa: E501
    database_url: str, step: str
) -> None:
    # given a synced store and what it shows
    env = synced_env(database_url)
    before = json_of("catalog", "--user", USER, "--json", env=env)
    # when a rebuild is killed at the step
    killed = ledger_command("rebuild", env={**env, KILL_AT: step}, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    assert f"rebuild: step {step}" in killed.stderr
    # then status shows what it left: a half-built generation, unless it had switched
    shown = wait_until(
        lambda: (lambda s: s if not s["rebuild"]["running"] else None)(
            json_of("status", "--json", env=env)
        ),
        "the killed rebuild's lock let go",
    )
    assert shown["rebuild"]["building"] is (step != "switched")
    if step != "switched":
        assert 0 < shown["rebuild"]["position"] <= shown["rebuild"]["target"]
        assert shown["rebuild"]["target"] == shown["log_head"]
    # and the serving views answer as before and equal a rebuild, which discards the rest
    assert json_of("catalog", "--user", USER, "--json", env=env) == before
    verified = ledger_command("rebuild", "--verify", env=env, check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert json_of("status", "--json", env=env)["rebuild"]["building"] is False
    # and the next rebuild succeeds
    rebuilt = ledger_command("rebuild", env=env, check=False)
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert json_of("catalog", "--user", USER, "--json", env=env) == before
    assert ledger_command("rebuild", "--verify", env=env, check=False).returncode == 0


def test_given_a_rebuild_running_when_another_starts_then_it_is_refused_and_status_shows_the_first(
    database_url: str, tmp_path: Path
) -> None:
    # given a rebuild held after hashing
    env = synced_env(database_url)
    log = tmp_path / "first-rebuild.log"
    with log.open("w") as output:
        first = subprocess.Popen(
            [sys.executable, "-m", "market_ledger", "rebuild"],
            env={**env, PAUSE_AT: "hashed:5"},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(lambda: "rebuild: step hashed" in log.read_text(), "the first rebuild hashed")
        # when status is asked and a second rebuild starts
        shown = json_of("status", "--json", env=env)["rebuild"]
        second = ledger_command("rebuild", env=env, check=False)
        # then status shows the running rebuild's generation, and the second is refused
        assert shown["building"] is True and shown["running"] is True
        assert shown["position"] == shown["target"] > 0
        assert second.returncode == 1
        assert "another rebuild is running" in second.stderr
        # and the first goes on to switch its views in
        assert first.wait(60) == 0, log.read_text()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert ledger_command("rebuild", "--verify", env=env, check=False).returncode == 0
