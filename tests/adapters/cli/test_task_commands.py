"""``market-ledger task list`` and ``task show`` on a real SQLite store."""

from __future__ import annotations

import json
from typing import Any

import pytest

from market_ledger.bootstrap import Ledger
from market_ledger.domain import task
from market_ledger.projections import task_reads
from market_ledger.projections.task_reads import get_task
from tests.adapters.cli.conftest import cli_runner
from tests.conftest import FakeClock, StoreFactory
from tests.support.tasks import ID, OTHER_ID, SECRET, install, outcome, step, uninstall

BOBS_ID = "20261101120002-bb2222"


@pytest.fixture
def ledger(sqlite_store: StoreFactory, clock: FakeClock) -> Ledger:
    """alice's install, failed; her uninstall, queued; bob's install, queued. Not projected:
    the commands catch the views up themselves."""
    opened = sqlite_store.open(clock)
    step(opened, clock, install(), *outcome(task.FAILED, "installFailed")(ID))
    step(opened, clock, uninstall(OTHER_ID))
    step(opened, clock, install(BOBS_ID, user="bob"))
    return opened


@pytest.fixture
def run(sqlite_store: StoreFactory, monkeypatch: pytest.MonkeyPatch) -> Any:
    return cli_runner(sqlite_store, monkeypatch)


def test_given_tasks_when_listing_them_as_json_then_they_are_the_task_json_newest_first(
    ledger: Ledger, run: Any
) -> None:
    listed = json.loads(run("task", "list", "--json").output)
    assert [t["task_id"] for t in listed] == [BOBS_ID, OTHER_ID, ID]
    with ledger.read() as conn:
        assert listed[-1] == get_task(conn, ledger.tables, ID)
    alices = json.loads(run("task", "list", "--user", "alice", "--json").output)
    assert [t["task_id"] for t in alices] == [OTHER_ID, ID]
    assert json.loads(run("task", "list", "--user", "carol", "--json").output) == []


def test_given_tasks_when_listing_them_then_each_is_a_line_with_its_status_and_error(
    ledger: Ledger, run: Any
) -> None:
    lines = run("task", "list", "--user", "alice").output.splitlines()
    assert len(lines) == 3 and lines[-1] == "2 task(s)"
    assert lines[0].startswith(OTHER_ID) and "uninstall" in lines[0] and "pending" in lines[0]
    assert lines[1].startswith(ID) and "failed (failed)" in lines[1]
    assert lines[1].endswith("app-service reported installFailed")


def test_given_a_task_when_showing_it_then_every_field_is_shown(ledger: Ledger, run: Any) -> None:
    shown = json.loads(run("task", "show", ID, "--json").output)
    assert (shown["task_id"], shown["status"], shown["op_id"]) == (ID, "failed", "op-1")
    block = run("task", "show", OTHER_ID).output.splitlines()
    fields = dict(line.split(":", 1) for line in block)
    assert tuple(fields) == task_reads.TASK_FIELDS
    assert fields["kind"].strip() == "uninstall" and fields["started_at"].strip() == "-"


def test_given_an_unknown_id_when_showing_it_then_a_clear_error_exits_with_1(
    ledger: Ledger, run: Any
) -> None:
    result = run("task", "show", "20261101129999-nope00", code=1)
    assert "unknown task '20261101129999-nope00'" in result.output


def test_given_a_request_with_an_env_value_then_no_output_shows_it(
    ledger: Ledger, run: Any
) -> None:
    outputs = [
        run("task", "list").output,
        run("task", "list", "--json").output,
        run("task", "show", ID).output,
        run("task", "show", ID, "--json").output,
    ]
    assert all(SECRET not in output for output in outputs)
