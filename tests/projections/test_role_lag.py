"""Each role's lag: how long its oldest work has waited, read from the shared log and views."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from market_ledger.bootstrap import Ledger
from market_ledger.domain.canonical import parse_instant
from market_ledger.domain.user import RegisterUser
from market_ledger.projections import role_lag
from tests.conftest import FakeClock
from tests.support.builders import USER, fail, offer
from tests.support.tasks import accepted, install


def test_given_nothing_waiting_then_every_role_lags_zero(ledger: Ledger, clock: FakeClock) -> None:
    ledger.handler.handle(RegisterUser(USER)).raise_if_rejected()
    ledger.catch_up()
    now = clock.advance(60)
    with ledger.read() as conn:
        assert role_lag.cycle_lag_seconds(conn, ledger.tables, now) == 0.0
        assert role_lag.tasks_lag_seconds(conn, ledger.tables, now) == 0.0
    assert role_lag.event_lag_seconds(ledger.application, ledger.projector.position(), now) == 0.0


def test_given_events_the_views_have_not_applied_then_the_projector_lags_by_the_oldest(
    ledger: Ledger, clock: FakeClock
) -> None:
    # given one event applied, then two more decided 10 s and 25 s later and not applied
    ledger.handler.handle(RegisterUser(USER)).raise_if_rejected()
    ledger.catch_up()
    applied = ledger.projector.position()
    clock.advance(10)
    ledger.handler.handle(offer("firefox")).raise_if_rejected()
    clock.advance(15)
    ledger.handler.handle(offer("chrome")).raise_if_rejected()
    # when the lag is read 5 s after the last
    now = clock.advance(5)
    # then it is the age of the first event not applied
    assert role_lag.event_lag_seconds(ledger.application, applied, now) == 20.0


def test_given_renders_waiting_then_the_cycle_lags_by_the_oldest_due_one(
    ledger: Ledger, clock: FakeClock
) -> None:
    # given a render pending since its offer, and a failed one whose retry is not due yet
    ledger.handler.handle(RegisterUser(USER)).raise_if_rejected()
    firefox = offer("firefox")
    chrome = offer("chrome")
    ledger.handler.handle(firefox, chrome).raise_if_rejected()
    clock.advance(1)
    ledger.handler.handle(fail(chrome)).raise_if_rejected()
    ledger.catch_up()
    # when read 40 s after the offer
    now = clock.advance(39)
    with ledger.read() as conn:
        lag = role_lag.cycle_lag_seconds(conn, ledger.tables, now)
    # then the pending render has waited 40 s (the failed one waits for its retry, not a cycle)
    assert lag == 40.0


def test_given_a_task_still_queued_then_the_task_role_lags_by_its_age(
    ledger: Ledger, clock: FakeClock
) -> None:
    # given a task sent at once, and one still queued 30 s later
    ledger.handler.handle(RegisterUser(USER)).raise_if_rejected()
    ledger.handler.handle(install("20261101120000-sent00", app_name="chrome")).raise_if_rejected()
    ledger.handler.handle(*accepted("20261101120000-sent00")).raise_if_rejected()
    clock.advance(5)
    ledger.handler.handle(install()).raise_if_rejected()
    ledger.catch_up()
    now = clock.advance(30)
    # when the lag is read, then only the queued one counts
    with ledger.read() as conn:
        assert role_lag.tasks_lag_seconds(conn, ledger.tables, now) == 30.0


def test_given_a_failed_render_then_the_cycle_lags_only_once_its_retry_is_due(
    ledger: Ledger, clock: FakeClock
) -> None:
    # given one render, failed: its retry is due at the time the view shows
    ledger.handler.handle(RegisterUser(USER)).raise_if_rejected()
    chrome = offer("chrome")
    ledger.handler.handle(chrome).raise_if_rejected()
    clock.advance(1)
    ledger.handler.handle(fail(chrome)).raise_if_rejected()
    ledger.catch_up()
    with ledger.read() as conn:
        retry_at = parse_instant(
            conn.execute(sa.select(ledger.tables.listings.c.retry_at)).scalar_one()
        )
        # when read before the retry is due, then the cycle owes nothing yet
        assert (
            role_lag.cycle_lag_seconds(conn, ledger.tables, retry_at - timedelta(seconds=1)) == 0.0
        )
        # when read 100 s after it was due, then it has waited 100 s
        late = retry_at + timedelta(seconds=100)
        assert role_lag.cycle_lag_seconds(conn, ledger.tables, late) == 100.0
