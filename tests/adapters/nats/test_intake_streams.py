"""Deployments sharing one nats-server: each takes in its own messages, none takes another's.

Against a real nats-server of the test's own (see tests/nats_server.py), with real stores.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from nats.js import api

from market_ledger.adapters.config import ConfigurationError, Settings
from market_ledger.adapters.nats.connection import NatsConnection
from market_ledger.adapters.nats.intake import NatsIntake
from market_ledger.adapters.nats.streams import IntakeConflict, intake_names, subjects_overlap
from market_ledger.bootstrap import Ledger
from market_ledger.domain.user import RegisterUser
from tests.adapters.nats.test_intake import installations, publish
from tests.conftest import StoreFactory
from tests.support.nats_server import (
    Nats,
    connect,
    eventually,
    nats_for_test,
    running,
    state_message,
)

T0 = datetime.fromisoformat("2026-11-01T10:00:00+00:00")


def deployment(url: str, prefix: str, *, users: bool = True, **names: str) -> Settings:
    """The settings of a deployment taking in ``prefix``'s subjects, names left to derive."""
    return Settings(
        nats_url=url,
        subject_app_state=f"{prefix}.application.*",
        subject_user_state=f"{prefix}.users" if users else None,
        subject_market_state=f"{prefix}.market",
        **names,  # type: ignore[arg-type]
    )


def intake(ledger: Ledger, settings: Settings, connection: NatsConnection) -> NatsIntake:
    return NatsIntake(ledger, settings, connection=connection, fetch_timeout=0.1)


async def refusal(intake: NatsIntake) -> str:
    """Run an intake that must refuse to start; returns what it said."""
    with pytest.raises(IntakeConflict) as refused:
        await asyncio.wait_for(intake.run(asyncio.Event()), timeout=10)
    assert intake.mode == "refused"
    return str(refused.value)


@pytest.fixture
def env(tmp_path: Path) -> Any:
    with nats_for_test(tmp_path, own=True) as nats_env:
        yield nats_env


@pytest.fixture
def second(tmp_path: Path) -> Any:
    """The store of a second deployment."""
    (tmp_path / "second").mkdir()
    factory = StoreFactory("sqlite", tmp_path / "second")
    yield factory.open()
    factory.close()


def test_given_two_deployments_with_different_subjects_on_one_server_then_each_takes_in_only_its_own_messages(  # noqa: E501
    ledger: Ledger, second: Ledger, env: Nats
) -> None:
    for each in (ledger, second):
        each.handler.handle(RegisterUser("alice"))
    first_settings, second_settings = deployment(env.url, "red"), deployment(env.url, "blue")
    assert intake_names(first_settings) != intake_names(second_settings)

    async def scenario() -> None:
        first_connection = NatsConnection(env.url, reconnect_wait=0.1)
        second_connection = NatsConnection(env.url, reconnect_wait=0.1)
        publisher = await connect(env.url)
        try:
            first = intake(ledger, first_settings, first_connection)
            other = intake(second, second_settings, second_connection)
            async with running(first), running(other):
                await eventually(lambda: first.mode == other.mode == "jetstream", what="both")
                for index in range(10):
                    await publish(
                        publisher,
                        "red.application.alice",
                        state_message("alice", f"red{index}", "running", T0),
                    )
                    await publish(
                        publisher,
                        "blue.application.alice",
                        state_message("alice", f"blue{index}", "running", T0),
                    )
                await eventually(
                    lambda: len(installations(ledger)) == len(installations(second)) == 10,
                    what="every message",
                )
        finally:
            await publisher.close()
            await first_connection.close()
            await second_connection.close()

    asyncio.run(scenario())
    assert set(installations(ledger)) == {f"red{i}" for i in range(10)}
    assert set(installations(second)) == {f"blue{i}" for i in range(10)}


def test_given_a_deployment_whose_subjects_overlap_a_running_ones_then_the_second_refuses_to_start_and_says_why(  # noqa: E501
    ledger: Ledger, second: Ledger, env: Nats
) -> None:
    ledger.handler.handle(RegisterUser("alice"))
    first_settings = deployment(env.url, "green", users=False)
    overlapping = deployment(env.url, "green")  # the same app states, and user events too
    said: list[str] = []

    async def scenario() -> None:
        connection = NatsConnection(env.url, reconnect_wait=0.1)
        second_connection = NatsConnection(env.url, reconnect_wait=0.1)
        publisher = await connect(env.url)
        try:
            first = intake(ledger, first_settings, connection)
            async with running(first):
                await eventually(lambda: first.mode == "jetstream", what="the first")
                said.append(await refusal(intake(second, overlapping, second_connection)))
                await publish(
                    publisher, "green.application.alice", state_message("alice", "x", "up", T0)
                )
                await eventually(lambda: "x" in installations(ledger), what="the first's own")
        finally:
            await publisher.close()
            await connection.close()
            await second_connection.close()

    asyncio.run(scenario())
    stream = intake_names(first_settings).stream
    assert f"stream {stream} captures green.application.*" in said[0]
    assert "takes in green.application.*, green.users" in said[0]


def test_given_a_stream_name_taken_by_a_deployment_with_other_subjects_then_the_intake_refuses_it(
    ledger: Ledger, second: Ledger, env: Nats
) -> None:
    first_settings = deployment(env.url, "amber", nats_intake_stream="SHARED")
    other_settings = deployment(env.url, "violet", nats_intake_stream="SHARED")

    async def scenario() -> str:
        connection = NatsConnection(env.url, reconnect_wait=0.1)
        second_connection = NatsConnection(env.url, reconnect_wait=0.1)
        try:
            first = intake(ledger, first_settings, connection)
            async with running(first):
                await eventually(lambda: first.mode == "jetstream", what="the first")
                return await refusal(intake(second, other_settings, second_connection))
        finally:
            await connection.close()
            await second_connection.close()

    said = asyncio.run(scenario())
    assert "stream SHARED exists and captures amber.application.*, amber.users" in said
    assert "NATS_INTAKE_STREAM" in said


def test_given_our_durable_consumer_name_used_for_other_subjects_then_the_intake_refuses_it(
    ledger: Ledger, env: Nats
) -> None:
    settings = deployment(env.url, "teal")
    names = intake_names(settings)

    async def scenario() -> str:
        client = await connect(env.url)
        connection = NatsConnection(env.url, reconnect_wait=0.1)
        try:
            js = client.jetstream()
            await js.add_stream(name=names.stream, subjects=["teal.application.*", "teal.users"])
            await js.add_consumer(
                names.stream,
                api.ConsumerConfig(
                    durable_name=names.durable,
                    ack_policy=api.AckPolicy.EXPLICIT,
                    filter_subject="teal.application.bob",
                ),
            )
            return await refusal(intake(ledger, settings, connection))
        finally:
            await client.close()
            await connection.close()

    said = asyncio.run(scenario())
    assert f"durable consumer {names.durable} on stream {names.stream}" in said
    assert "takes in teal.application.bob" in said and "NATS_INTAKE_DURABLE" in said


def test_the_derived_names_follow_the_subjects_and_keep_the_historical_ones_for_the_defaults() -> (
    None
):
    assert intake_names(Settings()) == intake_names(Settings(subject_app_state="os.application.*"))
    assert (intake_names(Settings()).stream, intake_names(Settings()).durable) == (
        "MARKET_LEDGER_INTAKE",
        "market-ledger-intake",
    )
    with_users = intake_names(Settings(subject_user_state="os.users"))
    assert with_users.stream.startswith("MARKET_LEDGER_INTAKE_") and with_users != intake_names(
        Settings()
    )
    chosen = intake_names(Settings(nats_intake_stream="S1", nats_intake_durable="d1"))
    assert (chosen.stream, chosen.durable) == ("S1", "d1")


@pytest.mark.parametrize("value", ["a.b", "a b", "ab*", "a>", "a/b", "tab\there"])
def test_a_jetstream_name_with_a_character_the_server_refuses_is_refused_at_start(
    value: str,
) -> None:
    for variable in ("NATS_INTAKE_STREAM", "NATS_INTAKE_DURABLE"):
        with pytest.raises(ConfigurationError, match=variable):
            Settings.from_env({variable: value})
    settings = Settings.from_env({"NATS_INTAKE_STREAM": "LEDGER_A", "NATS_INTAKE_DURABLE": "a-1"})
    assert (settings.nats_intake_stream, settings.nats_intake_durable) == ("LEDGER_A", "a-1")


@pytest.mark.parametrize(
    ("first", "second", "overlap"),
    [
        ("os.application.*", "os.application.alice", True),
        ("os.application.*", "os.users", False),
        ("os.>", "os.users", True),
        ("os.>", "os", False),
        ("a.*.c", "a.b.*", True),
        ("a.*", "a.b.c", False),
        (">", "anything.at.all", True),
    ],
)
def test_subjects_overlap_when_some_subject_matches_both(
    first: str, second: str, overlap: bool
) -> None:
    assert subjects_overlap(first, second) is overlap
    assert subjects_overlap(second, first) is overlap
