"""Task commands for tests: requests with a secret env value, and the steps after them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from market_ledger.bootstrap import Ledger
from market_ledger.domain import task
from market_ledger.domain.decider import Command
from tests.conftest import FakeClock
from tests.support.builders import SOURCE, USER

ID = "20261101120000-a1B2c3"
OTHER_ID = "20261101120001-zz9900"
#: an env value a request carries: no view, answer or output may ever show it
SECRET = "s3cret-env-value"
Steps = Callable[[str], list[Command]]


def install(task_id: str = ID, kind: str = task.INSTALL, **fields: Any) -> task.RequestTask:
    """A request of ``kind`` (an install by default) for alice's firefox, with envs."""
    values: dict[str, Any] = {
        "user": USER,
        "app_name": "firefox",
        "source": SOURCE,
        "version": "1.0.2",
        "envs": (("API_KEY", SECRET), ("EMPTY", "")),
    }
    values.update(fields)
    return task.RequestTask(task_id, kind, **values)


def uninstall(task_id: str = ID, user: str = USER, app: str = "firefox") -> task.RequestTask:
    return task.RequestTask(task_id, task.UNINSTALL, user, app, all=True)


def accepted(task_id: str, op_id: str = "op-1") -> list[Command]:
    return [task.DispatchTask(task_id), task.AcceptTask(task_id, op_id)]


def outcome(result: str, app_state: str) -> Steps:
    """Dispatched, accepted, then ``result`` observed from ``app_state``."""
    return lambda t: [*accepted(t), task.ObserveOutcome(t, result, app_state)]


def step(ledger: Ledger, clock: FakeClock, *commands: Command) -> None:
    """The commands in one transaction, ten seconds after the previous step."""
    clock.advance(10)
    ledger.handler.handle(*commands).raise_if_rejected()
