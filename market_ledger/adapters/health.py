"""What each part of the running service can do right now, for readiness and the operator.

A part (the projector, the store's writes, the NATS connection, the cycle) is either ``ok``
or ``failing`` with a reason and the moment it started failing. Parts report their own
state as it changes (``ok``/``failing``), or are asked when readiness is (``watch``): the
board never guesses. A part that never reported is not listed, so a service without NATS
says nothing about NATS.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import attrs

# the reasons' rules are the service's; parts in this package read them from here too
from market_ledger.service.reasons import clean_reason as clean_reason
from market_ledger.service.reasons import error_reason as error_reason

OK = "ok"
FAILING = "failing"


def _now() -> datetime:
    return datetime.now(UTC)


@attrs.frozen
class PartState:
    state: str
    since: datetime
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.state == OK

    def as_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "since": self.since.isoformat().replace("+00:00", "Z"),
            "reason": self.reason,
        }


#: a part asked at readiness time: None when it is fine, else why it is not
Watch = Callable[[], "PartState | None"]


class HealthBoard:
    """The states of the parts of one service; safe to use from any thread."""

    def __init__(self, clock: Callable[[], datetime] = _now) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._parts: dict[str, PartState] = {}
        self._watches: dict[str, Watch] = {}

    def ok(self, part: str) -> None:
        with self._lock:
            current = self._parts.get(part)
            if current is None or not current.ok:
                self._parts[part] = PartState(OK, self._clock())

    def failing(self, part: str, reason: str) -> None:
        """``part`` fails for ``reason``; ``since`` stays the first failure of a run of them."""
        text = clean_reason(reason)
        with self._lock:
            current = self._parts.get(part)
            since = current.since if current is not None and not current.ok else self._clock()
            self._parts[part] = PartState(FAILING, since, text)

    def watch(self, part: str, check: Watch) -> None:
        """Ask ``check`` for the state of ``part`` whenever the board is read."""
        with self._lock:
            self._watches[part] = check

    def state(self, part: str) -> PartState | None:
        return self.states().get(part)

    def states(self) -> dict[str, PartState]:
        with self._lock:
            parts = dict(self._parts)
            watches = dict(self._watches)
        for name, check in watches.items():
            state = check()
            if state is not None:
                parts[name] = state
        return dict(sorted(parts.items()))

    def failures(self) -> dict[str, PartState]:
        return {name: s for name, s in self.states().items() if not s.ok}

    def report(self) -> dict[str, dict[str, Any]]:
        return {name: state.as_json() for name, state in self.states().items()}


def describe_failures(failures: dict[str, PartState]) -> str | None:
    """``"projector failing since T: reason; nats failing since T: reason"``, or None."""
    if not failures:
        return None
    return "; ".join(
        f"{name} failing since {state.as_json()['since']}: {state.reason}"
        for name, state in failures.items()
    )
