"""The hydrate phase writes the workers' results in groups, not one transaction per render.

The renders here are the in-process renderer's, each held until the test lets it finish, so
the order in which results arrive is the test's; the store is a real one (SQLite).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from market_ledger.adapters.local.in_process import InProcessRenderer
from market_ledger.bootstrap import Ledger
from market_ledger.domain.decider import Command
from market_ledger.domain.market_source import ConfigureSource
from market_ledger.domain.user import RegisterUser
from market_ledger.service.context import CycleContext, RemoteSystems
from market_ledger.service.handler import CommandHandler, Outcome
from market_ledger.service.hydrate import WRITE_GROUP, HydratePhase
from market_ledger.service.ports import CatalogSource, RenderResult, RenderWorker
from tests.conftest import FakeClock, StoreFactory
from tests.support.builders import SOURCE, USER, offer

#: longer than any of these tests runs: groups are written because they are full or because
#: the workers are done, never because this much time passed
NEVER = 600.0


class CountingHandler(CommandHandler):
    """The ledger's handler, remembering how many commands each transaction held."""

    def __init__(self, inner: CommandHandler) -> None:
        self.__dict__.update(inner.__dict__)
        self.groups: list[int] = []

    def handle(self, *commands: Command) -> Outcome:
        self.groups.append(len(commands))
        return super().handle(*commands)


class GatedRenderer:
    """Renders in process, one render each time ``release`` is called."""

    def __init__(self) -> None:
        self.inner = InProcessRenderer()
        self.gate: asyncio.Queue[None] = asyncio.Queue()
        self.finished = 0

    def release(self, renders: int = 1) -> None:
        for _ in range(renders):
            self.gate.put_nowait(None)

    @asynccontextmanager
    async def worker(self) -> AsyncIterator[RenderWorker]:
        yield self

    async def render(self, entry: Mapping[str, Any], source: str, user: str) -> RenderResult:
        await self.gate.get()
        result = await self.inner.render(entry, source, user)
        self.finished += 1
        return result


def no_catalogs(base_url: str, source_id: str | None = None) -> CatalogSource:
    raise AssertionError("the hydrate phase reads no catalog")


def pending_listings(ledger: Ledger, count: int) -> CountingHandler:
    ledger.handler.handle(
        ConfigureSource(SOURCE, "remote", "http://market.test"),
        RegisterUser(USER),
        *(offer(f"app{n:03d}") for n in range(count)),
    )
    ledger.catch_up()
    counting = CountingHandler(ledger.handler)
    ledger.handler = counting
    return counting


def hydrate(
    ledger: Ledger, clock: FakeClock, renderer: GatedRenderer, drive: Any
) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        context = CycleContext(
            ledger, RemoteSystems(catalogs=no_catalogs, renderer=renderer), clock=clock
        )
        phase = asyncio.create_task(HydratePhase(4, gather_seconds=NEVER).run(context))
        await drive(renderer)
        return await phase

    return asyncio.run(go())


async def one_at_a_time(renderer: GatedRenderer, renders: int = 12) -> None:
    """Lets the renders finish one after the other, each once the previous one has."""
    for finished in range(1, renders + 1):
        renderer.release()
        while renderer.finished < finished:
            await asyncio.sleep(0)


def test_given_results_arriving_one_by_one_then_they_are_written_together(
    sqlite_store: StoreFactory, clock: FakeClock
) -> None:
    # given
    ledger = sqlite_store.open(clock)
    handler = pending_listings(ledger, 12)
    # when
    report = hydrate(ledger, clock, GatedRenderer(), one_at_a_time)
    # then: one transaction, once the workers were done
    assert report["rendered"] == 12
    assert handler.groups == [12]


def test_given_more_results_than_a_group_holds_then_full_groups_are_written_first(
    sqlite_store: StoreFactory, clock: FakeClock
) -> None:
    # given
    ledger = sqlite_store.open(clock)
    handler = pending_listings(ledger, WRITE_GROUP * 2 + 3)

    async def all_at_once(renderer: GatedRenderer) -> None:
        renderer.release(WRITE_GROUP * 2 + 3)

    # when
    report = hydrate(ledger, clock, GatedRenderer(), all_at_once)
    # then
    assert report["rendered"] == WRITE_GROUP * 2 + 3
    assert sorted(handler.groups, reverse=True) == [WRITE_GROUP, WRITE_GROUP, 3]
