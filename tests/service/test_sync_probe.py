"""A hash probe that fails is said so: a warning, and the cycle summary, not "unchanged"."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from market_ledger.domain.market_source import ConfigureSource
from market_ledger.domain.user import RegisterUser
from market_ledger.service.cycle import describe
from tests.conftest import FakeClock, StoreFactory
from tests.support.fakes.http_fake import Reply
from tests.support.fakes.market import FakeMarket
from tests.support.pipeline_harness import Pipeline, remote_systems, run

SOURCE = "market.olares"


def entry(app: str) -> dict[str, Any]:
    return {"id": app, "appID": app, "name": app, "version": "1.0.0", "title": {"en-US": app}}


def test_given_a_synced_source_when_its_hash_probe_fails_then_the_cycle_reports_it_and_warns(
    store: StoreFactory, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    ledger = store.open(clock)
    with FakeMarket({"firefox": entry("firefox")}) as market:
        ledger.handler.handle(ConfigureSource(SOURCE, "remote", market.url), RegisterUser("a"))

        async def scenario(http: httpx.AsyncClient) -> list[dict[str, Any]]:
            pipeline = Pipeline(ledger, remote_systems(http), clock, sync_interval=3600)
            first = await pipeline.run_cycle()
            quiet = await pipeline.run_cycle()
            market.fail("hash", Reply.error(500, "the hash is down"))
            with caplog.at_level(logging.WARNING, logger="market_ledger.service.sync"):
                failed = await pipeline.run_cycle()
            return [first, quiet, failed]

        first, quiet, failed = run(scenario)
    assert first["phases"]["sync"]["sources"][SOURCE]["outcome"] == "synced"
    assert quiet["phases"]["sync"]["sources"][SOURCE] == {"outcome": "unchanged"}
    report = failed["phases"]["sync"]["sources"][SOURCE]
    assert report["outcome"] == "probe_failed"
    assert "probe failed" in report["error"]
    assert f"{SOURCE} probe failed: the hash probe failed" in describe(failed)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any(SOURCE in r.getMessage() and "probe failed" in r.getMessage() for r in warnings)
