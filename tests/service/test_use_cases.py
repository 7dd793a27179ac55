"""The use cases the CLI and the HTTP API share, called directly on a ledger."""

from __future__ import annotations

from datetime import timedelta

import pytest

from market_ledger.bootstrap import Ledger
from market_ledger.domain.canonical import format_instant
from market_ledger.domain.market_source import ConfigureSource
from market_ledger.domain.user import RegisterUser
from market_ledger.projections import queries
from market_ledger.service.catalog_at import BeyondTheHead, NotRegisteredThen, catalog_at
from market_ledger.service.parked_renders import NotParked, ParkedInSeveral, retry_parked_render
from market_ledger.service.users import register_missing_users, register_user
from tests.conftest import FakeClock
from tests.support.builders import SOURCE, fail, offer, render


def status_of(ledger: Ledger, app_id: str, user: str = "alice") -> str:
    ledger.catch_up()
    with ledger.read() as conn:
        view = queries.catalog(conn, ledger.tables, user)
    return next(
        app["status"]
        for shown in view["sources"].values()
        for app in shown["apps"]
        if app["app_id"] == app_id
    )


def parked_in(ledger: Ledger, *sources: str) -> None:
    """Given alice's ``b`` parked (ten failed renders) in each of ``sources``."""
    for source in sources:
        b = offer("b", source=source)
        ledger.handler.handle(
            ConfigureSource(source, "remote", f"https://{source}.example"),
            b,
            *(fail(b) for _ in range(10)),
        )
    ledger.catch_up()


def test_retrying_a_parked_render_puts_it_back_to_pending(ledger: Ledger) -> None:
    # given
    ledger.handler.execute(RegisterUser("alice"))
    parked_in(ledger, SOURCE)
    # when
    retried = retry_parked_render(ledger, "alice", "b", requested_by="root")
    # then
    assert (retried.user, retried.source, retried.app_id) == ("alice", SOURCE, "b")
    assert retried.position == ledger.projector.head()
    assert status_of(ledger, "b") == "pending"


def test_retrying_a_render_that_is_not_parked_says_so(ledger: Ledger) -> None:
    # given
    a = offer("a")
    ledger.handler.handle(RegisterUser("alice"), a, render(a))
    ledger.catch_up()
    # when / then
    with pytest.raises(NotParked, match="'a' is not parked for 'alice'"):
        retry_parked_render(ledger, "alice", "a")


def test_retrying_an_app_parked_in_two_sources_needs_the_source(ledger: Ledger) -> None:
    # given
    ledger.handler.execute(RegisterUser("alice"))
    parked_in(ledger, "one", "two")
    # when
    with pytest.raises(ParkedInSeveral) as several:
        retry_parked_render(ledger, "alice", "b")
    retried = retry_parked_render(ledger, "alice", "b", "two")
    # then
    assert several.value.sources == ["one", "two"]
    assert retried.source == "two"


def test_registering_a_user_says_whether_anything_changed(ledger: Ledger) -> None:
    # given
    first = register_user(ledger.handler, "alice", "admin", "alice.example")
    # when
    again = register_user(ledger.handler, "alice", "admin", "alice.example")
    # then
    assert (first, again) == (True, False)


def test_registering_the_missing_users_keeps_those_registered_as_they_are(
    ledger: Ledger,
) -> None:
    # given
    register_user(ledger.handler, "root", "admin")
    # when
    registered = register_missing_users(ledger.handler, ["root", "alice", "bob"])
    # then
    assert registered == ["alice", "bob"]
    ledger.catch_up()
    with ledger.read() as conn:
        roles = {u["name"]: u["role"] for u in queries.users(conn, ledger.tables)}
    assert roles == {"root": "admin", "alice": "normal", "bob": "normal"}
    assert register_missing_users(ledger.handler, ["alice"]) == []


def test_the_catalog_now_carries_the_views_position(ledger: Ledger) -> None:
    # given
    a = offer("a")
    ledger.handler.handle(RegisterUser("alice"), ConfigureSource(SOURCE, "remote", "https://m"))
    ledger.handler.handle(a, render(a))
    ledger.catch_up()
    # when
    view = catalog_at(ledger, "alice")
    # then
    assert view["position"] == ledger.projector.head()
    assert [app["app_id"] for app in view["sources"][SOURCE]["apps"]] == ["a"]


def test_the_catalog_at_a_position_or_a_moment_is_the_past_one(
    ledger: Ledger, clock: FakeClock
) -> None:
    # given: "a" is offered, then later "b"
    ledger.handler.handle(RegisterUser("alice"), ConfigureSource(SOURCE, "remote", "https://m"))
    ledger.handler.execute(offer("a"))
    before_b = ledger.projector.head()
    moment = clock()
    clock.advance(60)
    ledger.handler.execute(offer("b"))
    ledger.catch_up()
    # when
    at_position = catalog_at(ledger, "alice", position=before_b)
    at_moment = catalog_at(ledger, "alice", moment=moment)
    # then
    for view in (at_position, at_moment):
        assert [app["app_id"] for app in view["sources"][SOURCE]["apps"]] == ["a"]
        assert view["position"] == before_b
    assert at_moment["at"] == format_instant(moment)


def test_the_catalog_beyond_the_head_or_before_the_user_existed_is_refused(
    ledger: Ledger, clock: FakeClock
) -> None:
    # given
    ledger.handler.execute(ConfigureSource(SOURCE, "remote", "https://m"))
    before_alice = ledger.projector.head()
    ledger.handler.execute(RegisterUser("alice"))
    ledger.catch_up()
    head = ledger.projector.head()
    # when / then
    with pytest.raises(BeyondTheHead, match=f"beyond the head of the log \\({head}\\)"):
        catalog_at(ledger, "alice", position=head + 1)
    with pytest.raises(NotRegisteredThen, match=f"at position {before_alice}"):
        catalog_at(ledger, "alice", position=before_alice)
    with pytest.raises(ValueError, match="not both"):
        catalog_at(ledger, "alice", position=head, moment=clock() - timedelta(seconds=1))
