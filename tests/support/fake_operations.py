"""A scripted, in-memory app-service operations port, for the dispatcher's unit tests.

Each app answers as told (accepted with an op id, rejected, no answer), optionally only
after a gate is opened, and every call is recorded in order. The end-to-end tests use the
real-HTTP fake (tests/support/fakes/app_service.py) instead.
"""

from __future__ import annotations

import asyncio
import itertools

import attrs

from market_ledger.service.app_operations import Accepted, AnswerUnknown, Operation, Rejected
from market_ledger.service.ports import RemoteError
from market_ledger.service.remote_values import InstalledApp, InstalledApps

Answer = Accepted | Rejected | AnswerUnknown


@attrs.define
class ScriptedOperations:
    answers: dict[str, Answer] = attrs.field(factory=dict)
    gates: dict[str, asyncio.Event] = attrs.field(factory=dict)
    calls: list[Operation] = attrs.field(factory=list)
    #: (user, app) -> state, as all/apps reports it
    installed: dict[tuple[str, str], str] = attrs.field(factory=dict)
    list_fails: bool = False
    in_flight: int = 0
    most_in_flight: int = 0
    _ids: itertools.count[int] = attrs.field(factory=lambda: itertools.count(1))

    def hold(self, app: str) -> asyncio.Event:
        """Calls for ``app`` wait until the returned event is set."""
        self.gates[app] = asyncio.Event()
        return self.gates[app]

    async def submit(self, operation: Operation) -> Accepted | Rejected:
        self.calls.append(operation)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            gate = self.gates.get(operation.app_name)
            if gate is not None:
                await gate.wait()
            else:
                await asyncio.sleep(0)
        finally:
            self.in_flight -= 1
        answer = self.answers.get(operation.app_name) or Accepted(f"op-{next(self._ids)}")
        if isinstance(answer, AnswerUnknown):
            raise answer
        return answer

    async def all_apps(self) -> InstalledApps:
        if self.list_fails:
            raise RemoteError("app-service", "http://app-service/all/apps", "HTTP 503")
        return InstalledApps(
            tuple(
                InstalledApp(
                    owner=user, name=name, appid=name, source="market", title=name, state=state
                )
                for (user, name), state in sorted(self.installed.items())
            )
        )

    def kinds(self) -> list[tuple[str, str]]:
        return [(call.kind, call.app_name) for call in self.calls]
