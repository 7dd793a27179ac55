"""Who may read what: the X-Bfl-User header, the admin role, unknown users."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from market_ledger.bootstrap import Ledger
from market_ledger.domain.market_source import ConfigureSource
from market_ledger.domain.user import RegisterUser, RemoveUser
from market_ledger.projections import queries
from tests.support.builders import SOURCE, fail, offer, render
from tests.support.http_live import LEDGER, MARKET, Api, live_api

USER_ROUTES = [
    f"{MARKET}/market/hash",
    f"{MARKET}/market/data",
    f"{MARKET}/market/state",
    f"{LEDGER}/catalog",
]


@pytest.fixture
def market(ledger: Ledger) -> Ledger:
    mine, theirs = offer(), offer(user="bob")
    parked = offer("broken")
    ledger.handler.handle(
        RegisterUser("alice"),
        RegisterUser("bob"),
        RegisterUser("root", role="admin"),
        ConfigureSource(SOURCE, "remote", "https://market.example"),
        mine,
        render(mine),
        theirs,
        render(theirs),
        parked,
        *(fail(parked) for _ in range(10)),
    )
    ledger.catch_up()
    return ledger


@pytest.fixture
def http(market: Ledger) -> Iterator[Api]:
    with live_api(market) as api:
        yield api


@pytest.mark.parametrize("path", USER_ROUTES)
def test_a_request_without_the_user_header_is_refused_with_401(http: Api, path: str) -> None:
    response = http.get(path, as_user=None)
    http.data(response, 401)
    assert "X-Bfl-User" in response.json()["message"]


def test_a_blank_user_header_counts_as_missing(http: Api) -> None:
    http.data(http.get(f"{MARKET}/market/hash", as_user=""), 401)
    http.data(http.post(f"{MARKET}/apps", {"apps": []}, as_user=None), 401)


@pytest.mark.parametrize("path", USER_ROUTES)
def test_a_user_cannot_read_another_users_data(http: Api, path: str) -> None:
    response = http.get(path, as_user="alice", user="bob")
    http.data(response, 403)
    assert "admin role" in response.json()["message"]


@pytest.mark.parametrize("path", USER_ROUTES)
def test_an_admin_reads_any_users_data(http: Api, market: Ledger, path: str) -> None:
    as_admin = http.data(http.get(path, as_user="root", user="bob"))
    as_bob = http.data(http.get(path, as_user="bob"))
    for answer in (as_admin, as_bob):
        answer.pop("timestamp", None)  # the time of the answer
    assert as_admin == as_bob


def test_reading_ones_own_data_through_the_user_parameter_is_allowed(http: Api) -> None:
    own = http.data(http.get(f"{MARKET}/market/hash", as_user="alice", user="alice"))
    assert own == http.data(http.get(f"{MARKET}/market/hash", as_user="alice"))


@pytest.mark.parametrize("path", USER_ROUTES)
def test_an_unknown_user_gets_404_with_a_clear_message(http: Api, path: str) -> None:
    response = http.get(path, as_user="ghost")
    http.data(response, 404)
    assert "ghost" in response.json()["message"]


def test_an_admin_asking_for_an_unknown_user_gets_404(http: Api) -> None:
    response = http.get(f"{MARKET}/market/data", as_user="root", user="ghost")
    http.data(response, 404)
    assert "'ghost'" in response.json()["message"]


def test_a_non_admin_cannot_probe_which_users_exist(http: Api) -> None:
    http.data(http.get(f"{MARKET}/market/hash", as_user="alice", user="ghost"), 403)
    http.data(http.get(f"{MARKET}/market/hash", as_user="ghost", user="bob"), 403)


def test_a_removed_admin_loses_the_admin_rights(http: Api, market: Ledger) -> None:
    http.data(http.get(f"{MARKET}/market/hash", as_user="root", user="bob"))
    market.handler.execute(RemoveUser("root"))
    market.catch_up()
    http.data(http.get(f"{MARKET}/market/hash", as_user="root", user="bob"), 403)


def test_status_is_for_admins_only(http: Api) -> None:
    http.data(http.get(f"{LEDGER}/status", as_user="alice"), 403)
    http.data(http.get(f"{LEDGER}/status", as_user=None), 401)
    status = http.data(http.get(f"{LEDGER}/status", as_user="root"))
    assert status["listings"]["parked"] == 1


def test_retry_of_a_parked_render_is_for_admins_only(http: Api, market: Ledger) -> None:
    body = {"user": "alice", "app_id": "broken"}
    http.data(http.post(f"{LEDGER}/retry", body, as_user="alice"), 403)
    http.data(http.post(f"{LEDGER}/retry", body, as_user=None), 401)
    market.catch_up()
    with market.read() as conn:
        assert [p["app_id"] for p in queries.parked(conn, market.tables)] == ["broken"]
    data = http.data(http.post(f"{LEDGER}/retry", body, as_user="root"))
    assert data["status"] == "pending" and data["source"] == SOURCE
    market.catch_up()
    with market.read() as conn:
        assert queries.parked(conn, market.tables) == []
