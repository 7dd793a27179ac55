"""The NATS notifications and ``GET /market/data`` say the same about the same app.

A client reads the catalog once and then keeps it current from notifications, so every field
the two share (the entry's type, timestamp, version and simple info; the installed state with
its times and entrances) must be written the same way by both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from market_ledger.adapters.nats.notifications import notification_of
from market_ledger.adapters.nats.publisher import Notification
from market_ledger.bootstrap import Ledger
from market_ledger.domain.installation import ObserveInstallationState
from market_ledger.domain.listing import OfferApp, RecordRender
from market_ledger.domain.market_source import ConfigureSource
from market_ledger.domain.rendering import compact_rendered
from market_ledger.domain.user import RegisterUser
from market_ledger.service.notifier import Notice, Notifier
from tests.conftest import FakeClock
from tests.support.builders import SOURCE, offer, render
from tests.support.http_live import MARKET, Api, live_api

ENTRANCE = {"name": "firefox", "state": "running", "url": "ff.alice.olares"}


class RecordingPublisher:
    def __init__(self) -> None:
        self.sent: list[Notification] = []

    async def publish(self, notices: Sequence[Notice]) -> None:
        self.sent.extend(notification_of(notice) for notice in notices)

    def of_type(self, notify_type: str) -> list[dict[str, Any]]:
        return [dict(n.payload) for n in self.sent if n.notify_type == notify_type]


def rendered(command: OfferApp) -> RecordRender:
    """A render shaped like chart-repo's app_data, without simple info of its own."""
    entry = dict(command.manifest.entry)
    app_data = {
        "type": "app-info-latest",
        "timestamp": 7,
        "version": command.manifest.version,
        "raw_data": entry,
        "raw_package": "/charts/firefox.tgz",
        "rendered_package": "/rendered/alice/firefox",
        "values": [],
        "app_info": {
            "app_entry": entry,
            "image_analysis": {"app_id": "firefox", "total_images": 1, "images": {}},
        },
    }
    return render(command, **compact_rendered(app_data, entry))


@pytest.fixture
def announced(ledger: Ledger, clock: FakeClock) -> Iterator[tuple[RecordingPublisher, Api]]:
    """A rendered app, installed, with the notifications of both recorded."""
    publisher = RecordingPublisher()
    notifier = Notifier(ledger, publisher)
    ledger.handler.handle(
        RegisterUser("alice"), ConfigureSource(SOURCE, "remote", "https://market.example")
    )
    ledger.catch_up()
    asyncio.run(notifier.publish_pending())
    firefox = offer("firefox", "1.0.0", appLabels=["new"])
    ledger.handler.handle(firefox, rendered(firefox))
    ledger.handler.execute(
        ObserveInstallationState(
            "alice",
            "firefox",
            "running",
            clock.advance(1.25),
            source=SOURCE,
            version="1.0.0",
            op_type="install",
            title="Firefox",
            entrances=(ENTRANCE,),
            shared_entrances=({"name": "firefox-shared", "host": "ff-svc", "port": 80},),
        )
    )
    ledger.catch_up()
    asyncio.run(notifier.publish_pending())
    with live_api(ledger) as api:
        yield publisher, api


def market_data_of(api: Api) -> dict[str, Any]:
    source: dict[str, Any] = api.data(api.get(f"{MARKET}/market/data"))["user_data"]["sources"][
        SOURCE
    ]
    return source


def as_summary(entry: dict[str, Any]) -> dict[str, Any]:
    """A full entry reduced as ``/market/data`` reduces it: labels into the simple info."""
    labels = entry["raw_data"]["appLabels"]
    return {
        "type": entry["type"],
        "timestamp": entry["timestamp"],
        "version": entry["version"],
        "app_simple_info": {**entry["app_simple_info"], "app_labels": labels},
    }


def test_given_a_state_change_then_its_state_entry_is_the_one_market_data_lists(
    announced: tuple[RecordingPublisher, Api],
) -> None:
    publisher, api = announced
    [change] = publisher.of_type("app_state_change")
    [state] = market_data_of(api)["app_state_latest"]
    assert change["app_state_latest"] == state
    assert state["status"]["statusTime"] == "2026-11-01T12:00:01.25Z"
    assert state["status"]["entranceStatuses"] == [
        {**ENTRANCE, "id": "ff", "statusTime": "", "reason": "", "invisible": False}
    ]


def test_given_a_state_change_then_its_app_info_agrees_with_market_data_on_every_shared_field(
    announced: tuple[RecordingPublisher, Api],
) -> None:
    publisher, api = announced
    [change] = publisher.of_type("app_state_change")
    [latest] = market_data_of(api)["app_info_latest"]
    assert as_summary(change["app_info_latest"]) == latest


def test_given_a_new_app_ready_then_its_app_info_agrees_with_market_data_on_every_shared_field(
    announced: tuple[RecordingPublisher, Api],
) -> None:
    publisher, api = announced
    [ready] = publisher.of_type("market_system_point")
    [latest] = market_data_of(api)["app_info_latest"]
    app_info = ready["extensions_obj"]["app_info"]
    assert as_summary(app_info) == {**latest, "timestamp": ready["timestamp"]}
