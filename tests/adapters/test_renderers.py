"""The renderers the composition root chooses between, through the service's Renderer port."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from market_ledger.adapters.chart_repo.app_data import pending_entry_of
from market_ledger.adapters.chart_repo.renderer import ChartRepoRenderer
from market_ledger.adapters.config import Settings
from market_ledger.adapters.local.in_process import IN_PROCESS_STEP, InProcessRenderer
from market_ledger.bootstrap import remote_systems
from market_ledger.service.ports import Renderer, RenderFailure, RenderResult, RenderSuccess
from tests.support.fakes import FakeChartRepo

USER = "alice"
SOURCE = "market.olares"


def entry(app_id: str = "firefox") -> dict[str, Any]:
    return {
        "id": app_id,
        "name": app_id,
        "version": "1.0.0",
        "title": {"en-US": app_id.title()},
        "categories": ["Productivity"],
        "supportArch": ["amd64"],
    }


def rendered_by(renderer: Renderer, value: dict[str, Any]) -> RenderResult:
    async def go() -> RenderResult:
        async with renderer.worker() as worker:
            return await worker.render(value, SOURCE, USER)

    return asyncio.run(go())


def settings(tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path / 'ledger.db'}", **overrides)


def test_without_chart_repo_the_composition_root_renders_in_process(tmp_path: Path) -> None:
    # given / when
    remote = remote_systems(settings(tmp_path))
    # then
    assert isinstance(remote.renderer, InProcessRenderer)
    assert remote.chart_repo is None


def test_with_chart_repo_the_composition_root_renders_through_it(tmp_path: Path) -> None:
    # given / when
    remote = remote_systems(settings(tmp_path, chart_repo_host="charts.test:82"))
    # then
    assert isinstance(remote.renderer, ChartRepoRenderer)
    assert remote.chart_repo is remote.renderer.client


def test_the_in_process_renderer_renders_an_entry_for_the_user() -> None:
    # when
    result = rendered_by(InProcessRenderer(), entry())
    # then
    assert isinstance(result, RenderSuccess)
    assert result.app_data["app_simple_info"]["app_id"] == "firefox"


def test_a_broken_entry_fails_its_in_process_render_instead_of_raising() -> None:
    # given: an entry the renderer cannot read
    broken: Any = {"raw_data": None}
    # when
    result = rendered_by(InProcessRenderer(), broken)
    # then
    assert isinstance(result, RenderFailure)
    assert result.step == IN_PROCESS_STEP


def test_the_chart_repo_renderer_posts_the_pending_entry_over_its_own_connection(
    tmp_path: Path,
) -> None:
    # given
    with FakeChartRepo() as repo:
        renderer = remote_systems(settings(tmp_path, chart_repo_host=repo.host_port)).renderer
        # when
        result = rendered_by(renderer, entry())
        [request] = repo.requests_to("sync-app")
    # then
    assert isinstance(result, RenderSuccess)
    assert request.json()["app_info_latest_pending_data"] == pending_entry_of(entry())
    assert request.json()["user_name"] == USER
