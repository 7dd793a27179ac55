"""The NATS intake on a server without JetStream: plain subscriptions, retried in process."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from market_ledger.adapters.nats.connection import NatsConnection
from market_ledger.bootstrap import Ledger
from market_ledger.domain.user import RegisterUser
from tests.conftest import StoreFactory
from tests.support.intake import installations, intake_for, publish
from tests.support.nats_server import (
    Nats,
    connect,
    eventually,
    nats_for_test,
    running,
    state_message,
)

T0 = datetime.fromisoformat("2026-11-01T10:00:00+00:00")


def take_one_state_in_without_jetstream(
    ledger: Ledger, store: StoreFactory, tmp_path: Path
) -> None:
    """Publish one app state to an intake on a server without JetStream; wait until it is in."""

    async def scenario(env: Nats) -> None:
        connection = NatsConnection(env.url, reconnect_wait=0.1)
        publisher = await connect(env.url)
        try:
            intake = intake_for(ledger, store, env, connection)
            async with running(intake):
                await eventually(lambda: intake.mode == "core", what="the fallback")
                await asyncio.sleep(0.05)  # the subscriptions are registered
                await publish(
                    publisher,
                    env.names.app_state_of("alice"),
                    state_message("alice", "firefox", "running", T0),
                )
                await eventually(lambda: "firefox" in installations(ledger), what="the state")
        finally:
            await publisher.close()
            await connection.close()

    with nats_for_test(tmp_path, own=True, jetstream=False) as env:
        asyncio.run(scenario(env))


def test_given_a_server_without_jetstream_then_the_intake_says_so_and_takes_messages_in_directly(
    ledger: Ledger, store: StoreFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ledger.handler.handle(RegisterUser("alice"))
    caplog.set_level(logging.WARNING, logger="market_ledger.adapters.nats.intake")
    take_one_state_in_without_jetstream(ledger, store, tmp_path)
    assert "has no JetStream" in caplog.text and "plain subscriptions" in caplog.text


def test_given_no_jetstream_when_the_store_fails_for_a_moment_then_the_message_is_tried_again(
    ledger: Ledger, store: StoreFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger.handler.handle(RegisterUser("alice"))
    real_handle = ledger.handler.handle
    # the batch fails, then the message alone: only a later attempt takes it in
    failures = [RuntimeError("database is locked"), RuntimeError("database is locked")]

    def flaky(*commands: Any) -> Any:
        if failures:
            raise failures.pop()
        return real_handle(*commands)

    monkeypatch.setattr(ledger.handler, "handle", flaky)
    take_one_state_in_without_jetstream(ledger, store, tmp_path)
    assert failures == []  # it failed twice, and was taken in on a later attempt
