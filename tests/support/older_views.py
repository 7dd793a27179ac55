"""Views as an older (or newer) release of the projection left them, and what status says."""

from __future__ import annotations

from typing import Any

from market_ledger.bootstrap import Ledger
from market_ledger.domain.market_source import ConfigureSource
from market_ledger.domain.user import RegisterUser
from market_ledger.projections import queries
from market_ledger.projections.store import upsert_rows
from market_ledger.projections.views_version import NAME
from tests.support.builders import offer, render

USER = "alice"


def offered(ledger: Ledger, apps: list[str]) -> None:
    """``USER`` on one source, each app offered and rendered, the views caught up."""
    ledger.handler.handle(RegisterUser(USER), ConfigureSource("market.olares", "remote", "x"))
    for app in apps:
        command = offer(app)
        ledger.handler.handle(command, render(command))
    ledger.catch_up()


def built_by(ledger: Ledger, version: int) -> None:
    """Make the views say that projection ``version`` built them."""
    with ledger.writer.begin() as conn:
        upsert_rows(conn, ledger.tables.position, [{"name": NAME, "position": version}])


def status_of(ledger: Ledger) -> dict[str, Any]:
    with ledger.read() as conn:
        return queries.status(conn, ledger.tables, ledger.projector.head())


def catalog_of(ledger: Ledger) -> Any:
    with ledger.read() as conn:
        return queries.catalog(conn, ledger.tables, USER)
