"""An operator lists, replays and discards parked messages, from the CLI and over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner, Result

from market_ledger.adapters.cli.commands import build_cli
from market_ledger.adapters.nats import parking
from market_ledger.bootstrap import Ledger, bootstrap
from market_ledger.domain import parked_message as pm
from market_ledger.domain.market_source import ConfigureSource
from market_ledger.domain.user import RegisterUser
from tests.adapters.nats.test_intake import T0, installations
from tests.conftest import StoreFactory
from tests.support.builders import SOURCE
from tests.support.http_live import LEDGER, Api, live_api
from tests.support.nats_server import state_message


def park(ledger: Ledger, data: bytes, failure: str = pm.FAILED, reason: str = "boom") -> str:
    """Park ``data`` as the intake would; returns its id."""
    command = parking.park_command(
        kind="app_state",
        subject="os.application.alice",
        data=data,
        headers={"Nats-Msg-Id": "m-1"},
        failure=failure,
        reason=reason,
        deliveries=3,
    )
    ledger.handler.handle(command)
    return command.message_id


GOOD = state_message("alice", "firefox", "running", T0)
MALFORMED = json.dumps(
    {"user": "alice", "state": "running", "createTime": "2026-11-01T10:00:00Z"}
).encode()


@pytest.fixture
def cli(store: StoreFactory, ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> Any:
    for key, value in store.env().items():
        monkeypatch.setenv(key, value)
    command = build_cli(bootstrap)

    def invoke(*args: str, code: int = 0) -> Result:
        result = CliRunner().invoke(command, list(args), catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result

    return invoke


def test_given_parked_messages_when_the_operator_replays_them_from_the_cli_then_good_ones_are_taken_in_and_bad_ones_stay_parked(  # noqa: E501
    cli: Any, ledger: Ledger
) -> None:
    ledger.handler.handle(RegisterUser("alice"))
    good = park(ledger, GOOD)
    bad = park(ledger, MALFORMED, pm.MALFORMED, "name: missing or empty")
    listed = json.loads(cli("intake", "parked", "--json").output)
    assert {m["id"]: m["failure"] for m in listed} == {good: "failed", bad: "malformed"}
    assert json.loads(cli("status", "--json").output)["parked_messages"] == 2
    assert "parked NATS messages: 2" in cli("status").output

    assert "replayed, accepted" in cli("intake", "replay", good).output
    assert installations(ledger)["firefox"]["state"] == "running"
    failed = cli("intake", "replay", bad, code=1).output
    assert "failed again and stays parked" in failed and "name: missing or empty" in failed
    assert "no parked message 'feed'" in cli("intake", "replay", "feed", code=1).output
    assert "is not parked: replayed" in cli("intake", "replay", good, code=1).output

    [still] = json.loads(cli("intake", "parked", "--json").output)
    assert (still["id"], still["replay_failures"]) == (bad, 1)
    assert still["reason"] == "replay: name: missing or empty"
    assert "discarded" in cli("intake", "discard", bad).output
    assert json.loads(cli("intake", "parked", "--json").output) == []
    every = json.loads(cli("intake", "parked", "--all", "--json").output)
    assert {m["id"]: m["status"] for m in every} == {good: "replayed", bad: "discarded"}
    assert json.loads(cli("status", "--json").output)["parked_messages"] == 0


@pytest.fixture
def http(ledger: Ledger) -> Iterator[Api]:
    ledger.handler.handle(
        RegisterUser("alice"),
        RegisterUser("root", role="admin"),
        ConfigureSource(SOURCE, "remote", "https://market.example"),
    )
    ledger.catch_up()
    with live_api(ledger) as api:
        yield api


def test_given_parked_messages_when_an_admin_lists_and_replays_them_over_http_then_the_answers_say_what_happened(  # noqa: E501
    http: Api, ledger: Ledger
) -> None:
    good = park(ledger, GOOD)
    bad = park(ledger, MALFORMED, pm.MALFORMED, "name: missing or empty")
    ledger.catch_up()
    http.data(http.get(f"{LEDGER}/intake/parked"), 403)
    listed = http.data(http.get(f"{LEDGER}/intake/parked", as_user="root"))
    assert {m["id"] for m in listed} == {good, bad}
    assert listed[0]["headers"] == {"Nats-Msg-Id": "m-1"}
    assert http.data(http.get(f"{LEDGER}/status", as_user="root"))["parked_messages"] == 2

    http.data(http.post(f"{LEDGER}/intake/replay", {"id": good}), 403)
    replayed = http.data(http.post(f"{LEDGER}/intake/replay", {"id": good}, as_user="root"))
    assert (replayed["status"], replayed["outcome"]) == ("replayed", "accepted")
    assert installations(ledger)["firefox"]["state"] == "running"
    response = http.post(f"{LEDGER}/intake/replay", {"id": bad}, as_user="root")
    assert "name: missing or empty" in response.json()["message"]
    http.data(response, 409)
    http.data(http.post(f"{LEDGER}/intake/replay", {"id": "nothing"}, as_user="root"), 404)
    http.data(http.post(f"{LEDGER}/intake/replay", {"name": bad}, as_user="root"), 400)
    http.data(http.post(f"{LEDGER}/intake/discard", {"id": bad}, as_user="root"))
    ledger.catch_up()
    assert http.data(http.get(f"{LEDGER}/intake/parked", as_user="root")) == []
    every = http.data(http.get(f"{LEDGER}/intake/parked", as_user="root", all="true"))
    assert {m["id"]: m["resolved_by"] for m in every} == {good: "root", bad: "root"}
