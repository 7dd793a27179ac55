"""The chart-repo client's renders (``dcr/sync-app``) and its base URL.

Integration tests talk to FakeChartRepo over loopback HTTP.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from market_ledger.adapters.chart_repo.app_data import pending_entry_of
from market_ledger.adapters.chart_repo.client import (
    API_STEP,
    ChartRepoClient,
    chart_repo_base_url,
)
from market_ledger.adapters.remote.keep_alive import KeepAliveConnection
from market_ledger.service.ports import RenderFailure, RenderResult, RenderSuccess
from tests.adapters.chart_repo.support import SOURCE, USER, run
from tests.support.fakes import FakeChartRepo, Reply


def pending(app_id: str = "firefox", version: str = "1.0.12", **fields: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": app_id,
        "appID": app_id,
        "name": app_id,
        "version": version,
        "title": {"en-US": app_id.title()},
        "categories": ["Productivity"],
        "supportArch": ["amd64"],
    }
    entry.update(fields)
    return pending_entry_of(entry)


#: renders one app of a FakeChartRepo, with the client's arguments
Render = Callable[..., RenderResult]


@pytest.fixture(params=["httpx client", "worker connection"])
def render(request: pytest.FixtureRequest) -> Render:
    """A render through the client's httpx connection, or through a render worker's own
    connection (market_ledger.adapters.remote.keep_alive): both must answer alike."""

    def rendered(repo: FakeChartRepo, app_id: str = "firefox", **client_args: Any) -> RenderResult:
        chart_repo = ChartRepoClient(repo.host_port, **client_args)
        if request.param == "httpx client":
            return run(lambda: chart_repo.sync_app(pending(app_id), SOURCE, USER))

        async def over_own_connection() -> RenderResult:
            async with KeepAliveConnection(chart_repo.base_url) as connection:
                return await chart_repo.sync_app(pending(app_id), SOURCE, USER, over=connection)

        return run(over_own_connection)

    return rendered


def failure(result: RenderResult) -> RenderFailure:
    assert isinstance(result, RenderFailure), result
    assert result.step == API_STEP
    return result


# --- base URL -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "url"),
    [
        (
            "chart-repo-service.os-framework:82",
            "http://chart-repo-service.os-framework:82/chart-repo/api/v2",
        ),
        ("http://localhost:8080", "http://localhost:8080/chart-repo/api/v2"),
        ("https://charts.test/", "https://charts.test/chart-repo/api/v2"),
    ],
)
def test_the_host_is_used_as_host_port_and_a_scheme_is_never_doubled(host: str, url: str) -> None:
    assert chart_repo_base_url(host) == url


def test_an_empty_host_is_refused() -> None:
    with pytest.raises(ValueError, match="CHART_REPO_SERVICE_HOST"):
        ChartRepoClient("  ")


# --- sync-app -----------------------------------------------------------------------------------


def test_given_a_complete_render_when_synced_then_rendered_app_data_is_returned(
    render: Render,
) -> None:
    with FakeChartRepo() as repo:
        result = render(repo)
        [request] = repo.requests_to("sync-app")
    assert isinstance(result, RenderSuccess)
    assert result.status == "new"
    assert result.app_data["app_simple_info"]["app_id"] == "firefox"
    assert result.app_data["app_info"]["image_analysis"]["user_id"] == USER
    body = request.json()
    assert body["source_id"] == SOURCE
    assert body["user_name"] == USER
    assert body["app_info_latest_pending_data"] == pending("firefox")
    assert request.headers["content-type"] == "application/json"


def test_given_chart_repo_slower_than_the_timeout_then_the_render_fails_as_timed_out(
    render: Render,
) -> None:
    with FakeChartRepo() as repo:
        repo.make_slow("firefox", 2.0)
        result = failure(render(repo, sync_timeout=0.1))
    assert result.reason == "sync-app: timed out after 0.1 s"
    assert result.status is None


def test_the_render_timeout_defaults_to_three_seconds() -> None:
    assert ChartRepoClient("h:1").sync_timeout == 3.0


def test_given_a_500_then_the_failure_names_the_status_and_a_short_body(render: Render) -> None:
    with FakeChartRepo() as repo:
        repo.fail_permanently("firefox", Reply.error(500, "user alice not found"))
        result = failure(render(repo))
        assert repo.sync_calls_for("firefox") == 1  # renders are not retried by the client
    assert result.status == 500
    assert result.reason.startswith("sync-app: HTTP 500: ")
    assert "user alice not found" in result.reason


def test_given_success_false_then_it_is_a_failure_with_chart_repos_message(render: Render) -> None:
    with FakeChartRepo() as repo:
        repo.refuse("firefox", "failed to download chart firefox-1.0.12.tgz")
        result = failure(render(repo))
    assert (
        result.reason
        == "sync-app: answered success=false: failed to download chart firefox-1.0.12.tgz"
    )


def test_given_success_without_app_data_then_it_is_a_failure_not_a_silent_retry_next_cycle(
    render: Render,
) -> None:
    with FakeChartRepo() as repo:
        repo.unready_apps.add("firefox")
        result = failure(render(repo))
    assert "without app_data" in result.reason
    assert "processing" in result.reason


def test_given_an_incomplete_render_then_it_is_a_failure_naming_what_is_missing(
    render: Render,
) -> None:
    with FakeChartRepo() as repo:
        repo.incomplete_apps.add("firefox")
        result = failure(render(repo))
    assert result.reason == "sync-app: the render is incomplete: rendered_package is empty"


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (Reply.garbage(), "sync-app: body is not JSON (text/html)"),
        (Reply.empty(), "sync-app: HTTP 200 with an empty body"),
        (Reply.json({"success": True, "data": None}), "sync-app: answered success without data"),
        (
            Reply.json({"success": True, "data": {"app_data": "rendered!"}}),
            "sync-app: wrong shape: app_data must be an object, got string",
        ),
        (
            Reply.json({"success": True, "data": {"app_data": {"raw_package": "p"}}}),
            "sync-app: the render is incomplete: raw_data is missing",
        ),
    ],
    ids=["garbage", "empty", "null-data", "app-data-string", "no-raw-data"],
)
def test_given_an_unusable_sync_answer_then_the_render_fails_with_a_clear_reason(
    reply: Reply, reason: str, render: Render
) -> None:
    with FakeChartRepo() as repo:
        repo.fail("sync-app", reply)
        result = failure(render(repo))
    assert result.reason.startswith(reason)


def test_given_transient_failures_then_each_call_reports_and_a_later_call_renders(
    render: Render,
) -> None:
    with FakeChartRepo() as repo:
        repo.fail_transiently("firefox", times=2)
        results = [render(repo) for _ in range(3)]
        assert repo.sync_calls_for("firefox") == 3
    assert [r.ok for r in results] == [False, False, True]
    assert failure(results[0]).status == 503


def test_given_one_app_failing_then_other_apps_still_render(render: Render) -> None:
    with FakeChartRepo() as repo:
        repo.fail_permanently("broken")
        assert not render(repo, "broken").ok
        assert render(repo, "firefox").ok


def test_given_a_shared_client_then_concurrent_renders_overlap_and_all_complete() -> None:
    elapsed: list[float] = []

    async def many(repo: FakeChartRepo) -> list[RenderResult]:
        async with httpx.AsyncClient() as http:
            chart_repo = ChartRepoClient(repo.host_port, client=http)
            start = asyncio.get_running_loop().time()
            results = await asyncio.gather(
                *(chart_repo.sync_app(pending(f"app{i}"), SOURCE, USER) for i in range(8))
            )
            elapsed.append(asyncio.get_running_loop().time() - start)
            return results

    with FakeChartRepo(render_latency=0.1) as repo:
        results = run(lambda: many(repo))
    assert all(r.ok for r in results)
    assert elapsed[0] < 0.6  # one after the other would take 0.8 s
