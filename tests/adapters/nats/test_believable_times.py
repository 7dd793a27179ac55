"""A reported time is believed up to a day ahead of the ledger's clock; later ones are refused.

An observation claiming a far-future time, once applied, made every real state after it look
stale, forever. Now it is recorded as refused, with the reason and the time it claimed, and
never applied.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from market_ledger.adapters.metrics import NATS_INTAKE
from market_ledger.adapters.nats.connection import NatsConnection
from market_ledger.adapters.nats.intake import NatsIntake
from market_ledger.adapters.nats.messages import parse_app_state
from market_ledger.domain.decider import Command, CommandRejected, DecisionContext
from market_ledger.domain.installation import (
    INSTALLATION,
    InstallationState,
    ObserveInstallationState,
    RemoveInstallation,
    StateIgnored,
    StateObserved,
    StateRefused,
)
from market_ledger.domain.limits import MAX_CLOCK_AHEAD
from market_ledger.domain.user import RegisterUser
from market_ledger.projections import queries
from tests.conftest import FakeClock, StoreFactory
from tests.support.fakes.app_service import FakeAppService
from tests.support.nats_server import Nats, connect, consumed, eventually, nats_for_test, running
from tests.support.pipeline_harness import Pipeline, remote_systems, run

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
CONTEXT = DecisionContext(at=NOW)
FAR_FUTURE = datetime(9999, 12, 31, tzinfo=UTC)


def observe(
    state: str, at: datetime, event_id: str = "", **fields: Any
) -> ObserveInstallationState:
    return ObserveInstallationState(
        "alice", "firefox", state, at, event_id=event_id, source="market.olares", **fields
    )


def given(*commands: Command) -> InstallationState | None:
    state = None
    for command in commands:
        state = INSTALLATION.fold(state, INSTALLATION.decide(command, state, CONTEXT))
    return state


def when(state: InstallationState | None, command: Command) -> list[Any]:
    return list(INSTALLATION.decide(command, state, CONTEXT))


# --- the decider ------------------------------------------------------------------------------


def test_given_a_state_when_one_claims_a_far_future_time_then_it_is_refused_and_not_applied() -> (
    None
):
    state = given(observe("running", NOW - timedelta(minutes=1), "e1"))

    events = when(state, observe("stopped", FAR_FUTURE, "e2"))

    assert [type(e) for e in events] == [StateRefused]
    refused = events[0]
    assert refused.observed_at == FAR_FUTURE and "more than 1 day ahead" in refused.reason
    after = INSTALLATION.fold(state, events)
    assert after is not None and (after.state, after.observed_at) == (
        "running",
        NOW - timedelta(minutes=1),
    )


def test_given_a_refused_far_future_state_when_a_real_one_follows_then_it_is_applied() -> None:
    state = given(observe("running", NOW - timedelta(minutes=2), "e1"), observe("x", FAR_FUTURE))

    events = when(state, observe("stopped", NOW - timedelta(minutes=1), "e3"))

    assert [type(e) for e in events] == [StateObserved]


def test_given_nothing_observed_when_a_far_ahead_state_comes_then_it_is_refused_uninstalled() -> (
    None
):
    events = when(None, observe("running", FAR_FUTURE, "e1"))

    assert [type(e) for e in events] == [StateRefused]
    state = INSTALLATION.fold(None, events)
    assert state is not None and state.removed
    assert [type(e) for e in when(state, observe("running", NOW, "e2"))] == [StateObserved]


def test_given_exactly_the_bound_ahead_then_the_time_is_believed() -> None:
    events = when(None, observe("running", NOW + MAX_CLOCK_AHEAD))

    assert [type(e) for e in events] == [StateObserved]


def test_given_a_refusal_on_record_when_the_same_claim_comes_then_it_is_refused_unrecorded() -> (
    None
):
    # Status correction reports the same state every cycle: one record is enough.
    state = given(
        observe("running", NOW), observe("stopped", FAR_FUTURE, origin="status-correction")
    )

    with pytest.raises(CommandRejected, match="already on record"):
        when(state, observe("stopped", FAR_FUTURE, origin="status-correction"))
    days_ahead = observe("stopped", NOW + 3 * MAX_CLOCK_AHEAD, origin="status-correction")
    with pytest.raises(CommandRejected, match="already on record"):
        when(state, days_ahead)  # a clock days ahead claims a new time every cycle
    assert [
        type(e)
        for e in when(state, observe("stopped", FAR_FUTURE, "msg-1", origin="status-correction"))
    ] == [StateRefused]  # a message of its own is on record, each


def test_given_a_time_applied_before_times_were_bounded_then_real_ones_are_not_stale() -> None:
    applied_long_ago = INSTALLATION.fold(
        None,
        INSTALLATION.decide(
            observe("running", FAR_FUTURE, "e1"), None, DecisionContext(at=FAR_FUTURE)
        ),
    )

    events = when(applied_long_ago, observe("stopped", NOW, "e2"))

    assert [type(e) for e in events] == [StateObserved]
    assert [type(e) for e in when(given(observe("a", NOW)), observe("b", NOW - timedelta(1)))] == [
        StateIgnored
    ]


def test_given_a_removal_claiming_a_far_future_time_then_it_is_refused() -> None:
    state = given(observe("running", NOW))

    with pytest.raises(CommandRejected, match="more than 1 day ahead"):
        when(state, RemoveInstallation("alice", "firefox", FAR_FUTURE))


# --- through NATS parsing and the handler ------------------------------------------------------


def app_state(create_time: str, state: str = "running", event_id: str = "") -> bytes:
    payload = {
        "user": "alice",
        "name": "firefox",
        "state": state,
        "createTime": create_time,
        "eventID": event_id or f"id-{create_time}",
    }
    return json.dumps(payload).encode()


def test_given_a_far_future_state_from_nats_then_it_is_refused_in_history_and_real_ones_apply(
    store: StoreFactory, clock: FakeClock
) -> None:
    ledger = store.open(clock)
    ledger.handler.handle(RegisterUser("alice"))
    ledger.handler.handle(parse_app_state(app_state("2026-11-01T11:00:00Z", "installing")))

    outcome = ledger.handler.handle(parse_app_state(app_state("9999-12-31T00:00:00Z")))
    ledger.handler.handle(parse_app_state(app_state("2026-11-01T11:59:00Z", "running")))

    [rejection] = outcome.rejections
    assert rejection.recorded and "9999-12-31T00:00:00.000000Z" in rejection.reason
    assert "more than 1 day ahead of the ledger's clock" in rejection.reason
    ledger.catch_up()
    with ledger.read() as conn:
        history = queries.history(conn, ledger.tables, "alice", "firefox")
    assert [h["event"] for h in history] == ["state_observed", "state_refused", "state_observed"]
    refused = history[1]
    assert refused["observed_at"] == "9999-12-31T00:00:00.000000Z"
    assert "more than 1 day ahead" in refused["reason"]
    assert history[2]["state"] == "running"
    assert ledger.rebuild(verify=True).differences == ()


@pytest.fixture
def nats_env(tmp_path: Path) -> Any:
    with nats_for_test(tmp_path) as env:
        yield env


def test_given_unbelievable_or_oversized_states_on_nats_then_the_intake_counts_them_refused(
    sqlite_store: StoreFactory, nats_env: Nats, caplog: pytest.LogCaptureFixture
) -> None:

    ledger = sqlite_store.open()
    ledger.handler.handle(RegisterUser("alice"))
    rejected_before = NATS_INTAKE.labels("app_state", "rejected")._value.get()
    now = datetime.now(UTC).isoformat()
    messages = [
        app_state("9999-12-31T00:00:00Z", "stopped"),
        json.dumps(
            {"user": "alice", "name": "x" * 300, "state": "running", "createTime": now}
        ).encode(),
        app_state(now, "running"),
    ]

    async def scenario() -> None:
        connection = NatsConnection(nats_env.url, reconnect_wait=0.1)
        publisher = await connect(nats_env.url)
        try:
            intake = NatsIntake(
                ledger,
                nats_env.settings(sqlite_store.url),
                connection=connection,
                stream=nats_env.names.stream,
                durable=nats_env.names.durable,
                fetch_timeout=0.1,
            )
            async with running(intake):
                await eventually(lambda: intake.mode == "jetstream", what="the intake")
                for data in messages:
                    await publisher.publish(nats_env.names.app_state_of("alice"), data)
                await publisher.flush()
                await eventually(lambda: consumed(publisher, nats_env.names), what="all")
        finally:
            await publisher.close()
            await connection.close()

    caplog.set_level(logging.INFO, logger="market_ledger.adapters.nats.intake")
    asyncio.run(scenario())

    assert NATS_INTAKE.labels("app_state", "rejected")._value.get() == rejected_before + 2
    assert "more than 1 day ahead of the ledger's clock" in caplog.text
    assert "field 'name' is longer than 255 characters (300 given)" in caplog.text
    ledger.catch_up()
    with ledger.read() as conn:
        history = queries.history(conn, ledger.tables, "alice", "firefox")
    assert [h["event"] for h in history] == ["state_refused", "state_observed"]


def test_given_a_far_future_status_time_then_status_correction_records_one_refusal(
    store: StoreFactory, clock: FakeClock
) -> None:
    ledger = store.open(clock)
    ledger.handler.handle(RegisterUser("alice"))
    with FakeAppService() as app_service:
        app_service.install("alice", "firefox", status_time="9999-12-31T00:00:00Z")

        async def scenario(http: httpx.AsyncClient) -> None:
            pipeline = Pipeline(ledger, remote_systems(http, app_service=app_service), clock)
            await pipeline.run_cycle()
            await pipeline.run_cycle(advance=30)  # the same report again: on record already
            app_service.set_state("alice", "firefox", "running", "2026-11-01T11:59:00Z")
            await pipeline.run_cycle(advance=30)

        run(scenario)

    ledger.catch_up()
    with ledger.read() as conn:
        history = queries.history(conn, ledger.tables, "alice", "firefox")
    assert [(h["event"], h["origin"]) for h in history] == [
        ("state_refused", "status-correction"),
        ("state_observed", "status-correction"),
    ]
    assert history[1]["observed_at"] == "2026-11-01T11:59:00.000000Z"
