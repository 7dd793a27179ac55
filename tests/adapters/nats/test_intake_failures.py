"""One message's failure is never the intake's: it is parked, and the others are taken in.

Against a real nats-server (see tests/nats_server.py) and a real store.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from market_ledger.adapters.nats import parking
from market_ledger.adapters.nats.connection import NatsConnection
from market_ledger.adapters.nats.intake import NatsIntake
from market_ledger.adapters.nats.messages import parse_message
from market_ledger.bootstrap import Ledger
from market_ledger.domain import parked_message as pm
from market_ledger.domain.decider import Command
from market_ledger.domain.installation import ObserveInstallationState
from market_ledger.domain.user import RegisterUser
from market_ledger.service.intake import Message
from tests.adapters.nats.test_intake import counted, installations, publish, stored
from tests.conftest import StoreFactory
from tests.support.nats_server import (
    Nats,
    connect,
    consumed,
    eventually,
    nats_for_test,
    running,
    state_message,
)

T0 = datetime.fromisoformat("2026-11-01T10:00:00+00:00")
#: a createTime the standard library cannot turn into a UTC instant
FAR_FUTURE = "9999-12-31T23:59:59-01:00"


class Explodes(Exception):
    """Not a malformed message: a fault of the parser itself."""


def exploding_parser(
    kind: str, data: bytes, subject: str, headers: Mapping[str, str] | None
) -> Message | None:
    """The real parser, except that it fails unexpectedly on an app named ``explodes``."""
    if b'"explodes"' in data:
        raise Explodes("the parser broke")
    return parse_message(kind, data, subject, headers)


def intake_on(ledger: Ledger, store: StoreFactory, env: Nats, **options: Any) -> NatsIntake:
    connection = options.pop("connection")
    return NatsIntake(
        ledger,
        env.settings(store.url),
        connection=connection,
        stream=env.names.stream,
        durable=env.names.durable,
        fetch_timeout=0.1,
        **options,
    )


def parked_now(ledger: Ledger) -> list[dict[str, Any]]:
    ledger.catch_up()
    return parking.list_parked(ledger)


def a_batch_with_bad_messages() -> list[bytes]:
    return [
        state_message("alice", "good-before", "running", T0),
        state_message("alice", "explodes", "running", T0),
        state_message("alice", "far-future", "running", T0, createTime=FAR_FUTURE),
        state_message("alice", "good-after", "running", T0),
    ]


def test_given_a_jetstream_batch_with_a_message_the_parser_fails_on_then_the_others_are_taken_in_it_is_parked_and_the_intake_keeps_running(  # noqa: E501
    ledger: Ledger, store: StoreFactory, tmp_path: Path
) -> None:
    ledger.handler.handle(RegisterUser("alice"))
    parked_before = counted("app_state", "parked")

    async def scenario(env: Nats) -> None:
        publisher = await connect(env.url)
        subject = env.names.app_state_of("alice")
        try:
            # a first run creates the stream; the batch then waits in it, to be fetched at once
            connection = NatsConnection(env.url, reconnect_wait=0.1)
            intake = intake_on(ledger, store, env, connection=connection, parse=exploding_parser)
            async with running(intake):
                await eventually(lambda: intake.mode == "jetstream", what="the intake")
            await connection.close()
            await publish(publisher, subject, *a_batch_with_bad_messages())
            await stored(publisher, env, 4)
            connection = NatsConnection(env.url, reconnect_wait=0.1)
            intake = intake_on(
                ledger, store, env, connection=connection, parse=exploding_parser, ack_wait=0.5
            )
            async with running(intake) as task:
                await eventually(lambda: consumed(publisher, env.names), what="the batch")
                await asyncio.sleep(0.8)  # past the acknowledgement wait: a redelivery shows
                info = await publisher.jetstream().consumer_info(
                    env.names.stream, env.names.durable
                )
                assert info.num_redelivered == 0 and info.num_ack_pending == 0
                assert not task.done() and intake.mode == "jetstream"
                await publish(publisher, subject, state_message("alice", "later", "running", T0))
                await eventually(lambda: "later" in installations(ledger), what="a later one")
            await connection.close()
        finally:
            await publisher.close()

    with nats_for_test(tmp_path, own=True) as env:
        asyncio.run(scenario(env))
    assert {"good-before", "good-after", "later"} <= set(installations(ledger))
    parked = {json.loads(m["payload"])["name"]: m for m in parked_now(ledger)}
    assert set(parked) == {"explodes", "far-future"}
    assert parked["explodes"]["failure"] == "unparsable"
    assert parked["explodes"]["reason"] == "Explodes: the parser broke"
    assert parked["far-future"]["failure"] in ("unparsable", "malformed")
    assert counted("app_state", "parked") >= parked_before + 1


def test_given_plain_subscriptions_when_the_parser_fails_on_a_message_then_the_others_are_taken_in_it_is_parked_and_the_intake_keeps_running(  # noqa: E501
    ledger: Ledger, store: StoreFactory, tmp_path: Path
) -> None:
    ledger.handler.handle(RegisterUser("alice"))

    async def scenario(env: Nats) -> None:
        connection = NatsConnection(env.url, reconnect_wait=0.1)
        publisher = await connect(env.url)
        try:
            intake = intake_on(ledger, store, env, connection=connection, parse=exploding_parser)
            async with running(intake) as task:
                await eventually(lambda: intake.mode == "core", what="the fallback")
                await asyncio.sleep(0.05)  # the subscriptions are registered
                await publish(
                    publisher, env.names.app_state_of("alice"), *a_batch_with_bad_messages()
                )
                await eventually(lambda: "good-after" in installations(ledger), what="the batch")
                await eventually(lambda: len(parked_now(ledger)) == 2, what="parking")
                assert not task.done()
        finally:
            await publisher.close()
            await connection.close()

    with nats_for_test(tmp_path, own=True, jetstream=False) as env:
        asyncio.run(scenario(env))
    assert {"good-before", "good-after"} <= set(installations(ledger))


def failing_for(ledger: Ledger, app: str, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make handling fail for every batch with a state of ``app``; returns the failures."""
    real_handle = ledger.handler.handle
    failures: list[int] = []

    def handle(*commands: Command) -> Any:
        if any(isinstance(k, ObserveInstallationState) and k.name == app for k in commands):
            failures.append(1)
            raise RuntimeError(f"cannot store {app}")
        return real_handle(*commands)

    monkeypatch.setattr(ledger.handler, "handle", handle)
    return failures


def test_given_plain_subscriptions_when_handling_a_message_fails_five_times_then_it_is_parked_not_lost_and_replays_once_fixed(  # noqa: E501
    ledger: Ledger, store: StoreFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger.handler.handle(RegisterUser("alice"))
    failures = failing_for(ledger, "stuck", monkeypatch)

    async def scenario(env: Nats) -> None:
        connection = NatsConnection(env.url, reconnect_wait=0.1)
        publisher = await connect(env.url)
        try:
            intake = intake_on(ledger, store, env, connection=connection, core_retry_delay=0.01)
            async with running(intake):
                await eventually(lambda: intake.mode == "core", what="the fallback")
                await asyncio.sleep(0.05)
                subject = env.names.app_state_of("alice")
                await publish(publisher, subject, state_message("alice", "stuck", "running", T0))
                await eventually(lambda: len(parked_now(ledger)) == 1, what="parking")
                await publish(publisher, subject, state_message("alice", "next", "running", T0))
                await eventually(lambda: "next" in installations(ledger), what="the next one")
        finally:
            await publisher.close()
            await connection.close()

    with nats_for_test(tmp_path, own=True, jetstream=False) as env:
        asyncio.run(scenario(env))
    assert len(failures) >= 5 and "stuck" not in installations(ledger)
    [stuck] = parked_now(ledger)
    assert (stuck["failure"], stuck["reason"]) == ("failed", "RuntimeError: cannot store stuck")
    monkeypatch.undo()  # the fault is fixed
    result = parking.replay(ledger, stuck["id"], requested_by="root")
    assert result["outcome"] == "accepted"
    assert installations(ledger)["stuck"]["state"] == "running"
    assert parked_now(ledger) == []


def test_given_jetstream_when_a_message_keeps_failing_then_it_is_parked_after_poison_after_deliveries_and_terminated(  # noqa: E501
    ledger: Ledger, store: StoreFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger.handler.handle(RegisterUser("alice"))
    failing_for(ledger, "poison", monkeypatch)

    async def scenario(env: Nats) -> None:
        connection = NatsConnection(env.url, reconnect_wait=0.1)
        publisher = await connect(env.url)
        try:
            intake = intake_on(ledger, store, env, connection=connection, poison_after=2)
            async with running(intake) as task:
                await eventually(lambda: intake.mode == "jetstream", what="the intake")
                subject = env.names.app_state_of("alice")
                await publish(publisher, subject, state_message("alice", "poison", "running", T0))
                await publish(publisher, subject, state_message("alice", "fine", "running", T0))
                await eventually(lambda: consumed(publisher, env.names), what="both")
                assert not task.done()
        finally:
            await publisher.close()
            await connection.close()

    with nats_for_test(tmp_path, own=True) as env:
        asyncio.run(scenario(env))
    assert "fine" in installations(ledger)
    [poison] = parked_now(ledger)
    assert poison["deliveries"] == 2 and poison["failure"] == "failed"


def test_given_jetstream_when_the_store_cannot_take_a_parked_message_then_it_is_redelivered_and_parked_later(  # noqa: E501
    ledger: Ledger, store: StoreFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger.handler.handle(RegisterUser("alice"))
    real_handle = ledger.handler.handle
    refused: list[int] = []

    def handle(*commands: Command) -> Any:
        if not refused and any(isinstance(k, pm.ParkMessage) for k in commands):
            refused.append(1)
            raise sqlite3.OperationalError("database is locked")
        return real_handle(*commands)

    monkeypatch.setattr(ledger.handler, "handle", handle)

    async def scenario(env: Nats) -> None:
        connection = NatsConnection(env.url, reconnect_wait=0.1)
        publisher = await connect(env.url)
        try:
            intake = intake_on(ledger, store, env, connection=connection, parse=exploding_parser)
            async with running(intake):
                await eventually(lambda: intake.mode == "jetstream", what="the intake")
                subject = env.names.app_state_of("alice")
                await publish(publisher, subject, state_message("alice", "explodes", "up", T0))
                await eventually(lambda: consumed(publisher, env.names), what="the message")
        finally:
            await publisher.close()
            await connection.close()

    with nats_for_test(tmp_path, own=True) as env:
        asyncio.run(scenario(env))
    assert refused == [1]
    [kept] = parked_now(ledger)
    assert kept["deliveries"] == 2


def test_given_a_message_with_secrets_when_it_is_parked_then_no_secret_is_kept(
    ledger: Ledger,
) -> None:
    payload = json.dumps(
        {
            "name": "x",
            "token": "s3cret-token",
            "entranceStatuses": [{"url": "https://bob:hunter2@host/path", "authLevel": "public"}],
        }
    ).encode()
    command = parking.park_command(
        kind="app_state",
        subject="os.application.bob",
        data=payload,
        headers={"Authorization": "Bearer abc", "Nats-Msg-Id": "m1", "X-Api-Key": "k"},
        failure=pm.MALFORMED,
        reason="state: missing; from postgresql://ledger:pa55@db/ledger",
    )
    ledger.handler.handle(command)
    [kept] = parked_now(ledger)
    shown = json.dumps(kept)
    for secret in ("s3cret-token", "hunter2", "Bearer abc", "pa55"):
        assert secret not in shown
    assert kept["headers"] == {"Nats-Msg-Id": "m1"}
    assert json.loads(kept["payload"])["entranceStatuses"][0]["authLevel"] == "public"


def test_given_a_large_or_binary_payload_when_it_is_parked_then_it_is_capped_or_kept_exactly(
    ledger: Ledger,
) -> None:
    binary = b"\x00\xff{" * 10
    large = b'{"name": "' + b"x" * (parking.MAX_PAYLOAD_BYTES + 10) + b'"}'
    for data in (binary, large):
        ledger.handler.handle(
            parking.park_command(
                kind="app_state",
                subject="os.application.bob",
                data=data,
                headers=None,
                failure=pm.MALFORMED,
                reason="payload: not JSON",
            )
        )
    kept = {m["encoding"]: m for m in parked_now(ledger)}
    assert kept["base64"]["truncated"] is False
    assert kept["utf-8"]["truncated"] is True
    with pytest.raises(parking.ReplayFailed, match="only its start was kept"):
        parking.replay(ledger, kept["utf-8"]["id"])
    with pytest.raises(parking.ReplayFailed, match="payload: not JSON"):
        parking.replay(ledger, kept["base64"]["id"])
