"""Deploying a changed projection: views an older projection version built are built anew
by the projector role's holder, in a child process, beside the serving generation, and
switched in; current views are left alone; a build stopped or killed leaves the serving
generation as it was and is tried again.

An older version is what the store records: the tests write the version an older release
would have recorded, so the code under test is the code that ships.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from market_ledger.adapters.cli.rebuild_command import KILL_AT, PAUSE_AT
from market_ledger.bootstrap import Ledger
from market_ledger.projections.views_version import NAME, VIEWS_VERSION
from market_ledger.views_upgrade import ViewsUpgrade
from tests.conftest import NO_POSTGRES, POSTGRES_URL, StoreFactory
from tests.support.http_readers import Readers
from tests.support.instances import API, USER, Instances, cluster_env, fresh_schema, wait_until
from tests.support.nats_server import Nats, nats_for_test
from tests.support.older_views import built_by, catalog_of, offered, status_of
from tests.support.serve_process import Service, ledger_command

OLDER = VIEWS_VERSION - 1
BUILT = f"views version {VIEWS_VERSION} built from"


def upgrade_for(ledger: Ledger) -> ViewsUpgrade:
    return ViewsUpgrade(ledger.settings, ledger.schema, retry_first=0.2, retry_max=0.2)


def test_given_views_of_an_older_version_when_the_projector_role_runs_then_this_codes_version_is_built_and_switched_in(  # noqa: E501
    store: StoreFactory,
) -> None:
    # given views an older projection built
    ledger = store.open()
    offered(ledger, ["a", "b", "c"])
    built_by(ledger, OLDER)
    before = catalog_of(ledger)
    upgrade = upgrade_for(ledger)

    # when the projector role's upgrade runs
    asyncio.run(asyncio.wait_for(upgrade.run(ledger, asyncio.Event()), 120))

    # then one build ran and the serving views are this code's, with the same catalog
    shown = status_of(ledger)
    assert upgrade.builds == 1
    assert shown["views_version"] == {"serving": VIEWS_VERSION, "code": VIEWS_VERSION}
    assert shown["rebuild"]["building"] is False
    assert catalog_of(ledger) == before


@pytest.mark.parametrize("recorded", [VIEWS_VERSION, VIEWS_VERSION + 1])
def test_given_views_of_this_version_or_a_newer_one_then_no_build_is_started(
    sqlite_store: StoreFactory, recorded: int, caplog: pytest.LogCaptureFixture
) -> None:
    # given views this code's projection (or a newer release's) built
    ledger = sqlite_store.open()
    offered(ledger, ["a"])
    built_by(ledger, recorded)
    upgrade = upgrade_for(ledger)

    # when the upgrade runs
    with caplog.at_level(logging.INFO, logger="market_ledger.views"):
        asyncio.run(asyncio.wait_for(upgrade.run(ledger, asyncio.Event()), 30))

    # then it starts no build and leaves the views as they are, saying why for newer ones
    assert upgrade.builds == 0
    assert status_of(ledger)["views_version"]["serving"] == recorded
    said_newer = any("newer than this code's" in r.getMessage() for r in caplog.records)
    assert said_newer is (recorded > VIEWS_VERSION)


def test_given_a_build_under_way_when_the_role_is_given_up_then_the_serving_views_are_untouched_and_a_later_holder_builds(  # noqa: E501
    sqlite_store: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a build that stops once its fresh tables are filled
    ledger = sqlite_store.open()
    offered(ledger, ["a", "b"])
    built_by(ledger, OLDER)
    before = catalog_of(ledger)
    monkeypatch.setenv(PAUSE_AT, "hashed:60")
    upgrade = upgrade_for(ledger)

    async def give_up_while_building() -> dict[str, Any]:
        stop = asyncio.Event()
        running = asyncio.create_task(upgrade.run(ledger, stop))
        shown = await asyncio.to_thread(
            wait_until,
            lambda: (lambda s: s if s["rebuild"]["position"] else None)(status_of(ledger)),
            "the build filling its fresh tables",
            60,
        )
        stop.set()  # when the projector role is given up
        await asyncio.wait_for(running, 30)
        return shown

    during = asyncio.run(give_up_while_building())

    # then the build was shown beside the serving generation, and is gone with the role
    assert during["rebuild"]["running"] is True and during["rebuild"]["version"] == VIEWS_VERSION
    assert during["views_version"]["serving"] == OLDER
    after = status_of(ledger)
    assert after["views_version"]["serving"] == OLDER and after["rebuild"]["running"] is False
    assert catalog_of(ledger) == before
    # and the next holder builds it
    monkeypatch.delenv(PAUSE_AT)
    asyncio.run(asyncio.wait_for(upgrade.run(ledger, asyncio.Event()), 120))
    assert status_of(ledger)["views_version"]["serving"] == VIEWS_VERSION
    assert status_of(ledger)["rebuild"]["building"] is False
    assert catalog_of(ledger) == before


def test_given_a_build_that_is_killed_then_it_is_said_and_tried_again_until_built(
    sqlite_store: StoreFactory, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # given builds that kill themselves while filling
    ledger = sqlite_store.open()
    offered(ledger, ["a", "b"])
    built_by(ledger, OLDER)
    monkeypatch.setenv(KILL_AT, "filling")
    upgrade = upgrade_for(ledger)

    async def heal_after_the_first_failure() -> None:
        running = asyncio.create_task(upgrade.run(ledger, asyncio.Event()))
        while upgrade.builds < 1 or not any("failed" in r.getMessage() for r in caplog.records):
            await asyncio.sleep(0.05)
        monkeypatch.delenv(KILL_AT)  # when the cause goes away
        await asyncio.wait_for(running, 120)

    with caplog.at_level(logging.INFO, logger="market_ledger.views"):
        asyncio.run(asyncio.wait_for(heal_after_the_first_failure(), 180))

    # then the failure named how the build ended, and a later build switched the version in
    failures = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert failures and "was killed by SIGKILL" in failures[0]
    assert upgrade.builds >= 2
    assert status_of(ledger)["views_version"]["serving"] == VIEWS_VERSION


# --- serve ------------------------------------------------------------------------------------


@pytest.fixture
def nats(tmp_path: Path) -> Iterator[Nats]:
    with nats_for_test(tmp_path) as server:
        yield server


def record_older(database_url: str, env: dict[str, str]) -> None:
    """Views an older release built: the example catalog synced, then its version recorded."""
    ledger_command("sync", "--once", env=env)
    base, _, schema = database_url.partition("?schema=")
    if base.startswith("sqlite:///"):
        with sqlite3.connect(base.removeprefix("sqlite:///")) as conn:
            conn.execute(
                "INSERT OR REPLACE INTO projector_position (name, position) VALUES (?, ?)",
                (NAME, OLDER),
            )
        return
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(
            f'INSERT INTO "{schema}".projector_position (name, position) VALUES (%s, %s) '
            "ON CONFLICT (name) DO UPDATE SET position = excluded.position",
            (NAME, OLDER),
        )


def shown_versions(env: dict[str, str]) -> dict[str, Any]:
    return dict(json.loads(ledger_command("status", "--json", env=env).stdout))


def test_given_serve_on_views_of_an_older_version_then_it_builds_the_new_one_while_reads_go_on(
    tmp_path: Path, nats: Nats
) -> None:
    # given a SQLite store whose views an older projection built
    database_url = f"sqlite:///{tmp_path}/ledger.db"
    env = cluster_env(database_url, nats, tmp_path)
    for short in ("LEDGER_LEASE_TTL", "LEDGER_LEASE_RETRY"):  # one instance: the usual leases
        env.pop(short)
    ledger_command("user", "add", USER, "--role", "admin", env=env)
    record_older(database_url, env)

    # when serve starts (its build held for a while once filled), readers reading
    service = Service({**env, PAUSE_AT: "hashed:2"}, tmp_path / "serve.log")
    readers = Readers(service.base_url, USER)
    try:
        service.wait_for(lambda: len(service.catalog_apps()) == 24, "the old views served")
        with readers.running():
            during = service.wait_for(
                lambda: (
                    lambda s: s if s["rebuild"]["running"] and s["rebuild"]["position"] else None
                )(service.get(f"{API}/ledger/status").json()["data"]),
                "the build under way, past its first batch",
                60,
            )
            service.wait_for(lambda: BUILT in service.log.read_text(), "the new views built", 120)
            status = service.get(f"{API}/ledger/status").json()["data"]
            apps = service.catalog_apps()
    finally:
        code = service.stop()

    # then status showed both generations, the new one was switched in, no read failed
    log = service.log.read_text()
    assert code == 0 and "Traceback" not in log, log[-3000:]
    assert "building the new generation beside the serving one" in log
    assert during["views_version"]["serving"] == OLDER
    assert during["rebuild"]["version"] == VIEWS_VERSION
    assert status["views_version"] == {"serving": VIEWS_VERSION, "code": VIEWS_VERSION}
    assert status["rebuild"]["building"] is False
    assert readers.answers() and readers.failed() == [], readers.failed()[:5]
    assert len(apps) == 24


@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES_URL, reason=NO_POSTGRES)
def test_given_two_instances_on_views_of_an_older_version_then_only_the_projector_holder_builds(
    tmp_path: Path, nats: Nats
) -> None:
    # given a PostgreSQL store whose views an older projection built
    with fresh_schema(POSTGRES_URL) as url:
        env = cluster_env(url, nats, tmp_path)
        record_older(url, env)

        # when two instances start on it
        cluster = Instances(env, tmp_path, count=2).start()
        try:
            wait_until(
                lambda: shown_versions(env)["views_version"]["serving"] == VIEWS_VERSION or None,
                "the new views switched in",
                120,
            )
            time.sleep(1.0)  # a second build, if one were started, would have said so by now
            holder = cluster.holders()["projector"]
            logs = {m.name: m.logs() for m in cluster.members}
        finally:
            codes = cluster.close()

    # then exactly one build ran, on the instance holding the projector role
    builders = [name for name, log in logs.items() if "building the new generation" in log]
    assert builders == [holder], {n: log[-2000:] for n, log in logs.items()}
    assert sum(log.count(BUILT) for log in logs.values()) == 1
    assert codes == [0, 0]
