"""Audit and operator routes over real HTTP: history, time travel, status, retry, health."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from click.testing import CliRunner

from market_ledger.adapters.cli.commands import build_cli
from market_ledger.adapters.http_api.common import HttpSettings
from market_ledger.bootstrap import Ledger, bootstrap
from market_ledger.domain.canonical import format_instant, parse_instant
from market_ledger.domain.decider import Command
from market_ledger.domain.installation import ObserveInstallationState
from market_ledger.domain.market_source import ConfigureSource, RemoveSource, UpdateSourceExtras
from market_ledger.domain.user import RegisterUser, RemoveUser
from market_ledger.projections import queries
from tests.conftest import FakeClock, StoreFactory
from tests.support.builders import SOURCE, fail, offer, render
from tests.support.http_live import LEDGER, Api, live_api


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


def catalog_now(ledger: Ledger, user: str = "alice") -> dict[str, Any]:
    ledger.catch_up()
    with ledger.read() as conn:
        return queries.catalog(conn, ledger.tables, user)


def a_story(ledger: Ledger, clock: FakeClock) -> list[Command | tuple[Command, ...]]:
    """Steps that touch every part of a catalog, with another user's changes in between."""
    v1, v2, v3 = offer(version="1.0.0"), offer(version="2.0.0"), offer(version="3.0.0")
    other = offer("zed")
    bobs = offer(user="bob")
    return [
        v1,
        render(v1),
        (RegisterUser("bob"), bobs, render(bobs)),
        other,
        UpdateSourceExtras(SOURCE, {"tops": [{"appid": "firefox", "rank": 1}]}),
        ObserveInstallationState("alice", "firefox", "running", clock(), source=SOURCE),
        (v2, fail(v2)),
        offer(version="2.0.0", appLabels=["suspend"]),
        ObserveInstallationState("alice", "firefox", "uninstalled", clock(), source=SOURCE),
        (v3, render(v3)),
        ConfigureSource("other", "remote", "https://other.example"),
        RemoveSource("other"),
        RemoveUser("bob"),
    ]


def run_story(ledger: Ledger, clock: FakeClock) -> list[tuple[int, str, dict[str, Any]]]:
    """(position, time, catalog) after each step, as the views showed it then."""
    seen = []
    for step in a_story(ledger, clock):
        clock.advance(60)
        steps = step if isinstance(step, tuple) else (step,)
        ledger.handler.handle(*steps)
        seen.append((ledger.projector.head(), format_instant(clock()), catalog_now(ledger)))
    return seen


def test_history_answers_the_json_of_the_history_command(
    http: Api, ledger: Ledger, store: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    v1 = offer()
    ledger.handler.handle(v1, fail(v1, "chart-repo timed out"), render(v1))
    ledger.catch_up()
    data = http.data(http.get(f"{LEDGER}/history", app="firefox"))
    assert [e["event"] for e in data] == ["offered", "render_failed", "rendered"]
    for key, value in store.env().items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(
        build_cli(bootstrap), ["history", "--user", "alice", "--app", "firefox", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert data == json.loads(result.output)
    assert http.data(http.get(f"{LEDGER}/history", app="firefox", source="elsewhere")) == []


def test_history_needs_an_app_and_a_user_that_existed(http: Api) -> None:
    response = http.get(f"{LEDGER}/history")
    http.data(response, 400)
    assert "'app'" in response.json()["message"]
    http.data(http.get(f"{LEDGER}/history", as_user="root", user="ghost", app="x"), 404)


def test_history_outlives_the_removal_of_its_user(http: Api, ledger: Ledger) -> None:
    v1 = offer()
    ledger.handler.handle(v1, render(v1), RemoveUser("alice"))
    ledger.catch_up()
    data = http.data(http.get(f"{LEDGER}/history", as_user="root", user="alice", app="firefox"))
    assert [e["event"] for e in data] == ["offered", "rendered"]


def test_the_catalog_now_is_the_catalog_command_with_its_position(
    http: Api, ledger: Ledger
) -> None:
    v1 = offer()
    ledger.handler.handle(v1, render(v1))
    expected = catalog_now(ledger)
    data = http.data(http.get(f"{LEDGER}/catalog"))
    assert data == {**expected, "position": ledger.projector.position()}


def test_the_catalog_at_an_earlier_position_is_what_the_catalog_was_then(
    http: Api, ledger: Ledger, clock: FakeClock
) -> None:
    history = run_story(ledger, clock)
    for position, _, expected in history:
        data = http.data(http.get(f"{LEDGER}/catalog", position=position))
        assert data == {**expected, "position": position}, f"at position {position}"
    assert len({h[2]["hash"] for h in history}) > 5, "the story changes what alice sees"


def test_the_catalog_at_a_time_is_what_the_catalog_was_then(
    http: Api, ledger: Ledger, clock: FakeClock
) -> None:
    history = run_story(ledger, clock)
    for position, at, expected in history:
        data = http.data(http.get(f"{LEDGER}/catalog", at=at))
        assert data == {**expected, "position": position, "at": at}
        half_a_minute_later = parse_instant(at) + timedelta(seconds=30)
        data = http.data(http.get(f"{LEDGER}/catalog", at=format_instant(half_a_minute_later)))
        assert data["position"] == position


def test_time_travel_does_not_wait_for_the_views(
    http: Api, ledger: Ledger, clock: FakeClock
) -> None:
    ledger.catch_up()
    v1 = offer()
    ledger.handler.handle(v1, render(v1), offer("zed"))  # the views do not see these yet
    head = ledger.projector.head()
    assert ledger.projector.position() < head
    data = http.data(http.get(f"{LEDGER}/catalog", position=head))
    assert data == {**catalog_now(ledger), "position": head}


def test_before_the_user_was_registered_there_is_no_catalog(http: Api) -> None:
    response = http.get(f"{LEDGER}/catalog", position=0)
    http.data(response, 404)
    assert "not registered" in response.json()["message"]
    http.data(http.get(f"{LEDGER}/catalog", at="2000-01-01T00:00:00Z"), 404)


def test_time_travel_reads_a_removed_users_past_for_an_admin(
    http: Api, ledger: Ledger, clock: FakeClock
) -> None:
    v1 = offer()
    ledger.handler.handle(v1, render(v1))
    before = catalog_now(ledger)
    position = ledger.projector.head()
    ledger.handler.execute(RemoveUser("alice"))
    ledger.catch_up()
    http.data(http.get(f"{LEDGER}/catalog", as_user="root", user="alice"), 404)
    data = http.data(http.get(f"{LEDGER}/catalog", as_user="root", user="alice", position=position))
    assert data == {**before, "position": position}


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"position": "-1"}, "'position'"),
        ({"position": "abc"}, "'position'"),
        ({"position": "99999999"}, "beyond the head"),
        ({"at": "yesterday"}, "RFC 3339"),
        ({"position": "1", "at": "2026-01-01T00:00:00Z"}, "not both"),
    ],
)
def test_bad_time_travel_parameters_get_400_with_a_reason(
    http: Api, params: dict[str, str], reason: str
) -> None:
    response = http.get(f"{LEDGER}/catalog", **params)
    http.data(response, 400)
    assert reason in response.json()["message"]


def test_status_reports_positions_lag_counts_and_parked_renders(http: Api, ledger: Ledger) -> None:
    a, b = offer("a"), offer("b")
    ledger.handler.handle(a, render(a), b, *(fail(b) for _ in range(10)))
    ledger.catch_up()
    ledger.handler.execute(offer("c"))  # not applied yet: a lag of 2 (manifest + offer)
    data = http.data(http.get(f"{LEDGER}/status", as_user="root"))
    assert data["log_head"] == ledger.projector.head()
    assert data["projector_lag"] == data["log_head"] - data["projector_position"] > 0
    assert data["listings"] == {"pending": 0, "latest": 1, "failed": 0, "parked": 1}
    assert [(p["user"], p["app_id"], p["attempts"]) for p in data["parked"]] == [("alice", "b", 10)]


def test_retry_puts_a_parked_render_back_to_pending_and_says_who_asked(
    http: Api, ledger: Ledger
) -> None:
    b = offer("b")
    ledger.handler.handle(b, *(fail(b) for _ in range(10)))
    ledger.catch_up()
    data = http.data(http.post(f"{LEDGER}/retry", {"user": "alice", "app_id": "b"}, as_user="root"))
    assert data["position"] == ledger.projector.head()
    ledger.catch_up()
    app = next(a for a in catalog_now(ledger)["sources"][SOURCE]["apps"] if a["app_id"] == "b")
    assert app["status"] == "pending"
    [last] = http.data(http.get(f"{LEDGER}/history", app="b"))[-1:]
    assert last["event"] == "retry_requested" and last["requested_by"] == "root"


def test_retry_of_a_render_that_is_not_parked_is_a_conflict(http: Api, ledger: Ledger) -> None:
    a = offer("a")
    ledger.handler.handle(a, render(a))
    ledger.catch_up()
    response = http.post(f"{LEDGER}/retry", {"user": "alice", "app_id": "a"}, as_user="root")
    http.data(response, 409)
    assert "not parked" in response.json()["message"]
    http.data(http.post(f"{LEDGER}/retry", {"user": "ghost", "app_id": "a"}, as_user="root"), 404)
    http.data(http.post(f"{LEDGER}/retry", {"user": "alice"}, as_user="root"), 400)


def test_healthz_answers_without_a_user(http: Api) -> None:
    assert http.data(http.get("/healthz", as_user=None)) == {"status": "alive"}


def test_readyz_is_ready_when_the_views_are_caught_up(http: Api, ledger: Ledger) -> None:
    data = http.data(http.get("/readyz", as_user=None))
    assert data["ready"] is True and data["projector_lag"] == 0


def test_readyz_is_not_ready_while_the_views_lag_behind(ledger: Ledger) -> None:

    ledger.handler.handle(*(offer(f"app{i}", user="alice") for i in range(3)))
    with live_api(ledger, settings=HttpSettings(max_ready_lag=2)) as api:
        response = api.get("/readyz", as_user=None)
        data = api.data(response, 503)
        assert data["ready"] is False and data["projector_lag"] == 6
        assert "behind" in response.json()["message"]
        ledger.catch_up()
        assert api.data(api.get("/readyz", as_user=None))["ready"] is True


def test_readyz_asks_the_extra_readiness_check(ledger: Ledger) -> None:
    reasons = ["the first cycle has not run yet"]
    with live_api(ledger, readiness=lambda: reasons[0] if reasons else None) as api:
        response = api.get("/readyz", as_user=None)
        api.data(response, 503)
        assert "first cycle" in response.json()["message"]
        reasons.clear()
        api.data(api.get("/readyz", as_user=None))


def test_metrics_count_requests_by_route_template_and_status(http: Api, ledger: Ledger) -> None:
    http.get(f"{LEDGER}/catalog")
    http.get(f"{LEDGER}/catalog", as_user=None)
    http.get("/no/such/path/1234")
    ledger.handler.execute(offer("lagging"))
    response = http.get("/metrics", as_user=None)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    route = f'route="{LEDGER}/catalog"'
    assert f'ledger_http_requests_total{{{route},status="200"}}' in text
    assert f'ledger_http_requests_total{{{route},status="401"}}' in text
    assert 'route="unmatched",status="404"' in text
    assert "/no/such/path" not in text
    assert "ledger_projector_lag_events 2.0" in text


def test_time_travel_at_a_time_finds_the_boundary_by_event_time(
    http: Api, ledger: Ledger, clock: FakeClock
) -> None:
    clock.advance(3600)
    v1 = offer()
    ledger.handler.handle(v1, render(v1))
    just_before = format_instant(clock() - timedelta(microseconds=1))
    data = http.data(http.get(f"{LEDGER}/catalog", at=just_before))
    assert data["sources"][SOURCE]["apps"] == []


def test_metrics_show_each_role_s_lag_in_seconds(http: Api, ledger: Ledger) -> None:
    def scraped_lags() -> dict[str, float]:
        text = http.get("/metrics", as_user=None).text
        return {
            line.split('"')[1]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("ledger_role_lag_seconds{")
        }

    # given an offer decided (on the test's clock, in the past) that the views have not applied
    ledger.handler.execute(offer("lagging"))
    # when /metrics is scraped, then the projector owes that event and no task waits (the
    # notifier's lag shows once a notifier has announced anything)
    lags = scraped_lags()
    assert {"cycle", "projector", "tasks"} <= set(lags)
    assert lags["projector"] > 0
    assert lags["tasks"] == 0.0
    # when the views apply it, then the projector owes nothing and the cycle owes its render
    ledger.catch_up()
    lags = scraped_lags()
    assert lags["projector"] == 0.0
    assert lags["cycle"] > 0
