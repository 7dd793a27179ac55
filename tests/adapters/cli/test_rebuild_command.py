"""``market-ledger rebuild`` and ``status`` on a real store: the generation being built, and
the test-only stops refused when they name no step."""

from __future__ import annotations

import json
from typing import Any

import pytest

from market_ledger.adapters.cli.rebuild_command import KILL_AT, PAUSE_AT
from market_ledger.projections.generations import one_rebuild_at_a_time
from tests.conftest import StoreFactory


def test_given_no_rebuild_when_status_is_asked_then_it_shows_no_generation_being_built(
    run: Any,
) -> None:
    run("user", "add", "alice")
    shown = json.loads(run("status", "--json").output)["rebuild"]
    assert shown == {
        "building": False,
        "running": False,
        "position": None,
        "target": shown["target"],
        "version": None,
    }
    assert shown["target"] > 0


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        (KILL_AT, "halfway", "is not a step of a rebuild (one of filling, hashed, switching"),
        (PAUSE_AT, "hashed", "expected STEP:SECONDS"),
        (PAUSE_AT, "hashed:soon", "expected STEP:SECONDS"),
        (PAUSE_AT, "later:1", "is not a step of a rebuild"),
    ],
)
def test_given_a_test_stop_naming_no_step_when_rebuilding_then_it_is_refused_naming_the_variable(
    run: Any, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, said: str
) -> None:
    monkeypatch.setenv(variable, value)
    output = run("rebuild", code=1).output
    assert variable in output and said in output


def test_given_the_rebuild_lock_held_when_rebuilding_then_it_is_refused_and_the_views_stay(
    run: Any, store: StoreFactory
) -> None:
    run("user", "add", "alice")
    ledger = store.open()
    with one_rebuild_at_a_time(ledger.writer):
        output = run("rebuild", code=1).output
        shown = json.loads(run("status", "--json").output)["rebuild"]
    assert "another rebuild is running" in output
    assert shown["running"] is True and shown["building"] is False
    assert "alice" in run("user", "list").output
    assert json.loads(run("status", "--json").output)["rebuild"]["running"] is False
