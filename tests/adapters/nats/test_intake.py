"""The NATS intake against a real nats-server (see tests/support/nats_server.py)."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from market_ledger.adapters.health import HealthBoard
from market_ledger.adapters.metrics import NATS_CONNECTED
from market_ledger.adapters.nats import parking
from market_ledger.adapters.nats.connection import NatsConnection
from market_ledger.bootstrap import Ledger
from market_ledger.domain.market_source import ConfigureSource
from market_ledger.domain.user import RegisterUser
from market_ledger.projections import queries
from market_ledger.watched_handler import WatchedHandler
from tests.conftest import FakeClock, StoreFactory
from tests.support.builders import SOURCE, offer, render
from tests.support.intake import (
    counted,
    installation_history,
    installations,
    intake_for,
    publish,
    stored,
)
from tests.support.nats_server import (
    Nats,
    connect,
    consumed,
    eventually,
    later,
    nats_for_test,
    running,
    state_message,
    user_message,
)

T0 = datetime.fromisoformat("2026-11-01T10:00:00+00:00")


@pytest.fixture
def nats_env(tmp_path: Path) -> Any:
    with nats_for_test(tmp_path) as env:
        yield env


def test_given_a_burst_with_duplicates_and_reordering_then_newest_wins_and_duplicates_add_nothing(
    ledger: Ledger, store: StoreFactory, nats_env: Nats
) -> None:
    ledger.handler.handle(RegisterUser("alice"))
    steps = ["pending", "downloading", "installing", "initializing", "running"]
    distinct = [
        state_message("alice", app, state, later(T0, i), progress=str(i * 10))
        for app in ("jellyfin", "immich", "n8n")
        for i, state in enumerate(steps)
    ]
    burst = distinct + random.Random(7).sample(distinct, len(distinct))  # every one twice
    random.Random(11).shuffle(burst)
    commits: list[int] = []
    # the intake writes through the service's handler, which reports each commit
    ledger.handler = WatchedHandler(ledger.handler, HealthBoard(), on_commit=commits.append)

    async def scenario() -> None:
        connection = NatsConnection(nats_env.url, reconnect_wait=0.1)
        publisher = await connect(nats_env.url)
        try:
            intake = intake_for(ledger, store, nats_env, connection, batch_size=8)
            async with running(intake):
                await eventually(lambda: intake.mode == "jetstream", what="the intake")
                await publish(publisher, nats_env.names.app_state_of("alice"), *burst)
                await eventually(lambda: consumed(publisher, nats_env.names), what="the burst")
                events_after_burst = len(installation_history(ledger))
                await publish(publisher, nats_env.names.app_state_of("alice"), *distinct)
                await eventually(lambda: consumed(publisher, nats_env.names), what="replays")
            assert len(installation_history(ledger)) == events_after_burst
        finally:
            await publisher.close()
            await connection.close()

    asyncio.run(scenario())
    final = installations(ledger)
    assert {name: row["state"] for name, row in final.items()} == dict.fromkeys(
        ("jellyfin", "immich", "n8n"), "running"
    )
    assert {row["progress"] for row in final.values()} == {"40"}
    history = installation_history(ledger)
    # one event per distinct message: applied, or recorded as older than the one applied
    assert len(history) == len(distinct)
    assert set(history) <= {"state_observed", "state_ignored_stale"}
    assert commits == sorted(commits) and commits[-1] == ledger.projector.head()


def test_given_the_intake_down_while_messages_are_published_when_it_restarts_then_none_is_lost(
    ledger: Ledger, store: StoreFactory, nats_env: Nats
) -> None:
    ledger.handler.handle(RegisterUser("alice"))
    subject = nats_env.names.app_state_of("alice")

    async def scenario() -> None:
        publisher = await connect(nats_env.url)
        try:
            for run in range(2):
                connection = NatsConnection(nats_env.url, reconnect_wait=0.1)
                intake = intake_for(ledger, store, nats_env, connection)
                async with running(intake):
                    await eventually(lambda i=intake: i.mode == "jetstream", what="the intake")
                    await publish(
                        publisher, subject, state_message("alice", f"live{run}", "running", T0)
                    )
                    await eventually(lambda: consumed(publisher, nats_env.names), what="live")
                await connection.close()
                # the intake is down: these wait in the stream
                await publish(
                    publisher,
                    subject,
                    *(
                        state_message("alice", f"while-down{run}-{i}", "running", T0)
                        for i in range(5)
                    ),
                )
                await stored(publisher, nats_env, 6 * (run + 1))
        finally:
            await publisher.close()

    asyncio.run(scenario())
    names = set(installations(ledger))
    assert {"live0", "live1"} <= names
    assert {f"while-down0-{i}" for i in range(5)} <= names  # taken in by the second run
    assert not {f"while-down1-{i}" for i in range(5)} & names  # no run after them yet


def test_given_the_server_restarts_under_the_intake_then_it_reconnects_and_takes_in_new_messages(
    ledger: Ledger, store: StoreFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ledger.handler.handle(RegisterUser("alice"))
    caplog.set_level(logging.INFO, logger="market_ledger.adapters")

    async def scenario(env: Nats) -> None:
        assert env.server is not None
        env.server.stop()  # NATS is down when the service starts
        connection = NatsConnection(env.url, reconnect_wait=0.05)
        intake = intake_for(ledger, store, env, connection)
        try:
            async with running(intake) as task:
                await asyncio.sleep(0.3)
                assert not task.done() and NATS_CONNECTED._value.get() == 0
                env.server.start()
                await eventually(lambda: intake.mode == "jetstream", what="the first connect")
                publisher = await connect(env.url)
                subject = env.names.app_state_of("alice")
                await publish(publisher, subject, state_message("alice", "before", "running", T0))
                await eventually(lambda: "before" in installations(ledger), what="before")
                # stored, perhaps not yet taken in, when the server goes down
                await publish(publisher, subject, state_message("alice", "racing", "running", T0))
                await stored(publisher, env, 2)
                await publisher.close()

                env.server.restart()
                assert not task.done()
                publisher = await connect(env.url)
                await publish(publisher, subject, state_message("alice", "after", "running", T0))
                await eventually(lambda: "after" in installations(ledger), what="after")
                assert "racing" in installations(ledger)
                assert NATS_CONNECTED._value.get() == 1
                await publisher.close()
        finally:
            await connection.close()

    with nats_for_test(tmp_path, own=True) as env:
        asyncio.run(scenario(env))
    logged = caplog.text
    assert "cannot reach" in logged or "retrying" in logged
    assert "reconnected" in logged or logged.count("taking in") >= 2


def test_given_malformed_messages_then_they_are_terminated_counted_and_never_redelivered(
    ledger: Ledger, store: StoreFactory, nats_env: Nats, caplog: pytest.LogCaptureFixture
) -> None:
    ledger.handler.handle(RegisterUser("alice"))
    malformed_before = counted("app_state", "malformed") + counted("user", "malformed")
    bad = [
        b"{not json",
        json.dumps({"user": "alice", "state": "running", "createTime": "2026-11-01T10:00:00Z"}),
        json.dumps({"user": "alice", "name": "x", "state": "running", "createTime": "noon"}),
    ]

    async def scenario() -> None:
        connection = NatsConnection(nats_env.url, reconnect_wait=0.1)
        publisher = await connect(nats_env.url)
        try:
            intake = intake_for(ledger, store, nats_env, connection, ack_wait=0.3)
            async with running(intake):
                await eventually(lambda: intake.mode == "jetstream", what="the intake")
                subject = nats_env.names.app_state_of("alice")
                for data in bad:
                    await publisher.publish(
                        subject, data if isinstance(data, bytes) else data.encode()
                    )
                await publisher.publish(nats_env.names.users, b'{"username": "carol"}')
                await publish(publisher, subject, state_message("alice", "good", "running", T0))
                await eventually(lambda: consumed(publisher, nats_env.names), what="all")
                await asyncio.sleep(0.8)  # well past ack_wait: a redelivery would show now
                info = await publisher.jetstream().consumer_info(
                    nats_env.names.stream, nats_env.names.durable
                )
                assert info.num_redelivered == 0 and info.num_ack_pending == 0
                assert info.delivered.stream_seq == 5
        finally:
            await publisher.close()
            await connection.close()

    caplog.set_level(logging.WARNING, logger="market_ledger.adapters.nats.intake")
    asyncio.run(scenario())
    assert set(installations(ledger)) == {"good"}
    assert counted("app_state", "malformed") + counted("user", "malformed") == malformed_before + 4
    assert "payload: not JSON" in caplog.text
    assert "name: missing or empty" in caplog.text
    assert "createTime: not an RFC 3339 time" in caplog.text
    assert "event_type: missing" in caplog.text
    ledger.catch_up()
    parked = parking.list_parked(ledger)
    assert len(parked) == 4 and {m["failure"] for m in parked} == {"malformed"}


def test_given_a_state_for_an_unknown_user_then_it_is_kept_reported_and_shown_once_the_user_exists(
    ledger: Ledger,
    store: StoreFactory,
    nats_env: Nats,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ledger.handler.handle(ConfigureSource(SOURCE, "remote", "https://market.example"))
    unknown_before = counted("app_state", "unknown_user")

    async def scenario() -> None:
        connection = NatsConnection(nats_env.url, reconnect_wait=0.1)
        publisher = await connect(nats_env.url)
        try:
            intake = intake_for(ledger, store, nats_env, connection)
            async with running(intake):
                await eventually(lambda: intake.mode == "jetstream", what="the intake")
                await publish(
                    publisher,
                    nats_env.names.app_state_of("bob"),
                    state_message("bob", "firefox", "running", T0),
                )
                await eventually(lambda: consumed(publisher, nats_env.names), what="the state")
                with ledger.read() as conn, pytest.raises(queries.UnknownUser):
                    queries.catalog(conn, ledger.tables, "bob")
                await publish(
                    publisher, nats_env.names.users, user_message("user_created", "bob", T0)
                )
                await eventually(lambda: consumed(publisher, nats_env.names), what="the user")
        finally:
            await publisher.close()
            await connection.close()

    caplog.set_level(logging.WARNING, logger="market_ledger.adapters.nats.intake")
    asyncio.run(scenario())
    assert counted("app_state", "unknown_user") == unknown_before + 1
    assert "unknown user 'bob'" in caplog.text
    firefox = offer("firefox", user="bob")
    ledger.handler.handle(firefox, render(firefox))
    ledger.catch_up()
    with ledger.read() as conn:
        apps = queries.catalog(conn, ledger.tables, "bob")["sources"][SOURCE]["apps"]
    assert [(a["app_id"], a["installed_state"]) for a in apps] == [("firefox", "running")]


def test_given_user_events_then_users_are_registered_and_removed_and_other_events_ignored(
    ledger: Ledger, store: StoreFactory, nats_env: Nats
) -> None:
    ledger.handler.handle(RegisterUser("admin", role="admin"))
    messages = [
        user_message("user_created", "carol", T0),
        user_message("user_created", "dave", T0),
        json.dumps({"topic": "Create", "payload": {"user": "erin", "operator": "admin"}}).encode(),
        user_message("user_deleted", "dave", T0),
        user_message("app_install", "admin", T0),  # app-service's simulated events
        user_message("user_created", "admin", T0),  # again: must not reset admin's role
        user_message("user_deleted", "nobody", T0),  # refused by the domain, not retried
    ]

    async def scenario() -> None:
        connection = NatsConnection(nats_env.url, reconnect_wait=0.1)
        publisher = await connect(nats_env.url)
        try:
            intake = intake_for(ledger, store, nats_env, connection)
            async with running(intake):
                await eventually(lambda: intake.mode == "jetstream", what="the intake")
                await publish(publisher, nats_env.names.users, *messages)
                await eventually(lambda: consumed(publisher, nats_env.names), what="user events")
        finally:
            await publisher.close()
            await connection.close()

    rejected_before = counted("user", "rejected")
    asyncio.run(scenario())
    ledger.catch_up()
    with ledger.read() as conn:
        users = {u["name"]: u["role"] for u in queries.users(conn, ledger.tables)}
    assert users == {"admin": "admin", "carol": "normal", "erin": "normal"}
    assert counted("user", "rejected") == rejected_before + 1
