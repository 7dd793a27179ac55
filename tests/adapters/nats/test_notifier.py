"""The notifier: committed events out as NATS notifications (real nats-server)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from nats.js import api

from market_ledger.adapters.nats.connection import NatsConnection
from market_ledger.adapters.nats.notifications import NatsNotices, notification_of
from market_ledger.adapters.nats.publisher import NatsPublisher, Notification, PublishFailed
from market_ledger.bootstrap import Ledger
from market_ledger.domain.installation import ObserveInstallationState
from market_ledger.domain.listing import OfferApp, RecordRender
from market_ledger.domain.market_source import ConfigureSource
from market_ledger.domain.rendering import OMITTED
from market_ledger.domain.user import MarkUserDirty, RegisterUser
from market_ledger.projections import queries
from market_ledger.projections.notifier_state import define_notifier_tables, read_notifier_position
from market_ledger.service.notifier import Notice, Notifier
from tests.conftest import FakeClock, StoreFactory
from tests.support.builders import SOURCE, offer, render
from tests.support.nats_server import Inbox, Nats, connect, eventually, nats_for_test, running

ENTRANCE = {
    "name": "firefox",
    "state": "running",
    "statusTime": "2026-11-01T12:00:00Z",
    "reason": "Running",
    "url": "a1b2c3.alice.olares.com",
}


@pytest.fixture
def nats_env(tmp_path: Path) -> Any:
    with nats_for_test(tmp_path) as env:
        yield env


@pytest.fixture
def market(ledger: Ledger) -> Ledger:
    firefox = offer("firefox")
    ledger.handler.handle(
        RegisterUser("alice"),
        ConfigureSource(SOURCE, "remote", "https://market.example"),
        firefox,
        render(firefox),
    )
    ledger.catch_up()
    return ledger


def observe(ledger: Ledger, clock: FakeClock, state: str, user: str = "alice") -> None:
    ledger.handler.execute(
        ObserveInstallationState(
            user,
            "firefox",
            state,
            clock.advance(1),
            source=SOURCE,
            op_type="install",
            event_id=f"{user}-firefox-{state}",
            raw_app_name="firefox",
            title="Firefox",
            entrances=(ENTRANCE,),
        )
    )


class RecordingPublisher:
    """Publishes into a list, in the wire format; fails while ``down``."""

    def __init__(self) -> None:
        self.sent: list[Notification] = []
        self.down = False

    async def publish(self, notices: Sequence[Notice]) -> None:
        if self.down:
            raise PublishFailed("NATS is not connected")
        self.sent.extend(notification_of(notice) for notice in notices)

    def types(self) -> list[str]:
        return [n.payload.get("point") or n.notify_type for n in self.sent]


def over_nats(connection: NatsConnection, nats_env: Nats, store: StoreFactory) -> NatsNotices:
    """The publisher the composition root builds."""
    settings = nats_env.settings(store.url)
    return NatsNotices(NatsPublisher(connection, settings.subject_market_state))

    def types(self) -> list[str]:
        return [n.payload.get("point") or n.notify_type for n in self.sent]


def notifier_position(ledger: Ledger) -> int | None:
    with ledger.read() as conn:
        return read_notifier_position(conn, define_notifier_tables(), "notifications")


# --- with a real server --------------------------------------------------------------------------


def test_given_a_state_change_then_it_is_announced_only_once_the_views_applied_it(
    market: Ledger, store: StoreFactory, nats_env: Nats, clock: FakeClock
) -> None:
    async def scenario() -> Inbox:
        inbox = Inbox()
        listener = await connect(nats_env.url)
        connection = NatsConnection(nats_env.url, reconnect_wait=0.1)
        try:
            await listener.subscribe(f"{nats_env.names.market}.>", cb=inbox.receive)
            await listener.flush()
            await connection.connect(asyncio.Event())
            notifier = Notifier(market, over_nats(connection, nats_env, store))
            assert (await notifier.publish_pending()).published == 0  # the first run: no past
            observe(market, clock, "running")  # committed, not yet in the views
            assert (await notifier.publish_pending()).published == 0
            market.catch_up()
            assert (await notifier.publish_pending()).published == 2
            await eventually(lambda: len(inbox.messages) == 2, what="two notifications")
        finally:
            await listener.close()
            await connection.close()
        return inbox

    inbox = asyncio.run(scenario())
    subjects = {subject for subject, _ in inbox.messages}
    assert subjects == {f"{nats_env.names.market}.alice"}
    change, notice = (m for _, m in inbox.messages)
    assert change["notify_type"] == "app_state_change"
    assert set(change) == {
        "app_state_latest",
        "app_info_latest",
        "timestamp",
        "user",
        "app_name",
        "notify_type",
        "source",
    }
    assert (change["user"], change["app_name"], change["source"]) == ("alice", "firefox", SOURCE)
    latest = change["app_state_latest"]
    assert (latest["type"], latest["version"]) == ("app-state-latest", "1.0.0")
    assert latest["status"] == {
        "name": "firefox",
        "rawAppName": "firefox",
        "title": "Firefox",
        "state": "running",
        "updateTime": "2026-11-01T12:00:01Z",
        "statusTime": "2026-11-01T12:00:01Z",
        "lastTransitionTime": "2026-11-01T12:00:01Z",
        "progress": "",
        "opType": "install",
        "entranceStatuses": [{**ENTRANCE, "id": "a1b2c3", "invisible": False}],
    }
    assert change["app_info_latest"]["version"] == "1.0.0"
    with market.read() as conn:
        alice_hash = queries.stored_hash(conn, market.tables, "alice")
    assert notice == {
        "notify_type": "market_hash_changed",
        "user": "alice",
        "hash": alice_hash,
        "timestamp": notice["timestamp"],
    }


def test_given_nats_down_when_events_happen_then_they_are_announced_once_it_is_back(
    market: Ledger, store: StoreFactory, tmp_path: Path, clock: FakeClock
) -> None:
    async def scenario(env: Nats) -> list[dict[str, Any]]:
        assert env.server is not None
        observer = await connect(env.url)
        # A stream records what is published, whoever is listening when NATS comes back.
        await observer.jetstream().add_stream(
            name="OBSERVED", subjects=[f"{env.names.market}.>"], storage=api.StorageType.FILE
        )
        await observer.close()
        connection = NatsConnection(env.url, reconnect_wait=0.05)
        notifier = Notifier(market, over_nats(connection, env, store), poll_interval=0.05)
        try:
            await connection.connect(asyncio.Event())
            async with running(notifier):
                await eventually(lambda: notifier_position(market) is not None, what="start")
                started_at = notifier_position(market)
                env.server.stop()
                await eventually(lambda: not connection.connected, what="the outage")
                observe(market, clock, "stopped")
                market.catch_up()
                await asyncio.sleep(0.3)  # several rounds fail meanwhile
                assert notifier_position(market) == started_at
                env.server.start()
                await eventually(
                    lambda: (notifier_position(market) or 0) > (started_at or 0),
                    what="the notifier to catch up",
                )
        finally:
            await connection.close()
        observer = await connect(env.url)
        try:
            subscription = await observer.jetstream().pull_subscribe(
                f"{env.names.market}.>", stream="OBSERVED"
            )
            messages = await subscription.fetch(10, timeout=2)
            return [json.loads(m.data) for m in messages]
        finally:
            await observer.close()

    with nats_for_test(tmp_path, own=True) as env:
        published = asyncio.run(scenario(env))
    changes = [m for m in published if m["notify_type"] == "app_state_change"]
    assert [m["app_state_latest"]["status"]["state"] for m in changes] == ["stopped"]
    assert [m["notify_type"] for m in published][-1] == "market_hash_changed"


def test_given_a_new_version_made_latest_then_new_app_ready_and_not_for_a_same_version_rerender(
    ledger: Ledger, store: StoreFactory, nats_env: Nats
) -> None:
    ledger.handler.handle(
        RegisterUser("alice"), ConfigureSource(SOURCE, "remote", "https://market.example")
    )
    ledger.catch_up()
    v1, v1_changed, v2 = (
        offer("firefox", "1.0.0"),
        offer("firefox", "1.0.0", description={"en-US": "faster"}),
        offer("firefox", "2.0.0"),
    )

    def compact_render(command: OfferApp) -> RecordRender:
        """A render as the pipeline records it: the manifest copy left out."""
        return render(command, app_info={"image_analysis": None}, **{OMITTED: ["raw_data"]})

    async def scenario() -> Inbox:
        inbox = Inbox()
        listener = await connect(nats_env.url)
        connection = NatsConnection(nats_env.url, reconnect_wait=0.1)
        try:
            await listener.subscribe(f"{nats_env.names.market}.>", cb=inbox.receive)
            await listener.flush()
            await connection.connect(asyncio.Event())
            notifier = Notifier(ledger, over_nats(connection, nats_env, store))
            await notifier.publish_pending()
            for command in (v1, v1_changed, v2):
                ledger.handler.handle(command, compact_render(command))
            ledger.catch_up()
            await notifier.publish_pending()
            await eventually(lambda: len(inbox.of_type("market_hash_changed")) == 1, what="all")
        finally:
            await listener.close()
            await connection.close()
        return inbox

    ready = asyncio.run(scenario()).of_type("market_system_point")
    assert [m["extensions"] for m in ready] == [
        {"app_name": "firefox", "app_version": "1.0.0", "source": SOURCE},
        {"app_name": "firefox", "app_version": "2.0.0", "source": SOURCE},
    ]
    first = ready[0]
    assert (first["point"], first["user"]) == ("new_app_ready", "alice")
    app_info = first["extensions_obj"]["app_info"]
    assert app_info["raw_data"]["version"] == "1.0.0"  # the manifest put back
    assert app_info["raw_data"]["appLabels"] == []
    assert app_info["version"] == "1.0.0" and OMITTED not in app_info


# --- with a fake publisher ---------------------------------------------------------------------


def test_given_publishing_fails_then_the_position_stays_and_the_same_notifications_go_out_later(
    market: Ledger, clock: FakeClock
) -> None:
    publisher = RecordingPublisher()
    notifier = Notifier(market, publisher)

    async def scenario() -> None:
        await notifier.publish_pending()
        start = notifier_position(market)
        observe(market, clock, "running")
        market.catch_up()
        publisher.down = True
        report = await notifier.publish_pending()
        assert report.error == "NATS is not connected" and report.position == start
        assert notifier_position(market) == start and publisher.sent == []
        publisher.down = False
        report = await notifier.publish_pending()
        assert report.error is None and report.published == 2
        assert (await notifier.publish_pending()).published == 0  # announced once

    asyncio.run(scenario())
    assert publisher.types() == ["app_state_change", "market_hash_changed"]


def test_given_a_user_marked_dirty_then_the_hash_is_announced_again_even_if_unchanged(
    market: Ledger,
) -> None:
    publisher = RecordingPublisher()
    notifier = Notifier(market, publisher)

    async def scenario() -> None:
        await notifier.publish_pending()
        market.handler.execute(MarkUserDirty("alice"))
        market.catch_up()
        await notifier.publish_pending()

    asyncio.run(scenario())
    assert [(n.user, n.notify_type) for n in publisher.sent] == [("alice", "market_hash_changed")]


def test_given_users_not_registered_then_they_get_no_notifications(
    market: Ledger, clock: FakeClock
) -> None:
    publisher = RecordingPublisher()
    notifier = Notifier(market, publisher)

    async def scenario() -> None:
        await notifier.publish_pending()
        observe(market, clock, "running", user="bob")
        market.catch_up()
        await notifier.publish_pending()

    asyncio.run(scenario())
    assert publisher.sent == []


def test_given_a_notifier_added_to_a_running_ledger_then_it_does_not_announce_the_past(
    market: Ledger, clock: FakeClock
) -> None:
    observe(market, clock, "installing")
    market.catch_up()
    publisher = RecordingPublisher()
    notifier = Notifier(market, publisher)

    async def scenario() -> None:
        await notifier.publish_pending()
        assert publisher.sent == []
        observe(market, clock, "running")
        market.catch_up()
        await notifier.publish_pending()

    asyncio.run(scenario())
    states = [n.payload["app_state_latest"]["status"]["state"] for n in publisher.sent[:1]]
    assert states == ["running"]


def test_given_nats_off_then_the_position_follows_the_views_without_publishing(
    market: Ledger, clock: FakeClock
) -> None:
    notifier = Notifier(market, None)
    assert notifier.publisher is None

    async def scenario() -> None:
        await notifier.publish_pending()
        observe(market, clock, "running")
        market.catch_up()
        report = await notifier.publish_pending()
        assert report.error is None and report.position == market.projector.position()

    asyncio.run(scenario())


def test_the_publisher_refuses_while_disconnected_instead_of_buffering() -> None:
    async def scenario() -> None:
        connection = NatsConnection("nats://127.0.0.1:1", reconnect_wait=0.05)
        publisher = NatsPublisher(connection, "os.market")
        try:
            with pytest.raises(PublishFailed, match="not connected"):
                await publisher.publish([Notification("alice", "x", {"notify_type": "x"})])
        finally:
            await connection.close()

    asyncio.run(scenario())


def test_given_a_rebuild_of_the_views_then_the_notifier_keeps_its_position(
    market: Ledger, clock: FakeClock
) -> None:
    publisher = RecordingPublisher()
    notifier = Notifier(market, publisher)
    observe(market, clock, "running")
    market.catch_up()
    asyncio.run(notifier.publish_pending())
    position = notifier_position(market)
    market.rebuild()
    assert notifier_position(market) == position == market.projector.position()
    asyncio.run(notifier.publish_pending())
    assert publisher.sent == []  # nothing announced twice
