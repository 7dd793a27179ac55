"""Whatever the domain accepts, the views can hold: every event type, at the limits.

The log takes anything the event store can encode; an event the views cannot hold stops the
projector at its position for good. So every event type the domain knows is produced here
with the most extreme values the domain still accepts (the longest names it allows, in
3-byte characters, NUL in diagnostic text, the widest integers, the earliest and latest
believable times, huge label lists), then applied by the projector and compared with a
rebuild, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner

from market_ledger.adapters.cli.commands import build_cli
from market_ledger.bootstrap import Ledger, bootstrap
from market_ledger.domain import parked_message as pm
from market_ledger.domain import task
from market_ledger.domain.events import EVENT_CLASSES
from market_ledger.domain.feed_cursor import ConsumeFeed
from market_ledger.domain.installation import ObserveInstallationState, RemoveInstallation
from market_ledger.domain.limits import INT32, INT64, MAX_CLOCK_AHEAD, MAX_NAME, MAX_NAME_BYTES
from market_ledger.domain.listing import (
    DelistApp,
    OfferApp,
    RecordRender,
    RecordRenderFailure,
    RetryParked,
    UpdateImageInfo,
    WithdrawListing,
)
from market_ledger.domain.manifest import Manifest
from market_ledger.domain.market_source import (
    ConfigureSource,
    ObserveCatalog,
    RemoveSource,
    UpdateSourceExtras,
)
from market_ledger.domain.user import MarkUserDirty, RegisterUser, RemoveUser
from market_ledger.projections import queries
from market_ledger.projections.log_reader import LogReader
from market_ledger.projections.rebuild import rebuild
from tests.conftest import FakeClock, StoreFactory


def longest_name(seed: int) -> str:
    """MAX_NAME characters of the Basic Multilingual Plane, 3 bytes each, hardly repeated."""
    name = "".join(chr(0x4E00 + (seed * 131 + i * 7919) % 20_000) for i in range(MAX_NAME))
    assert len(name.encode()) == MAX_NAME_BYTES
    return name


USER, OTHER_USER = longest_name(1), longest_name(2)
SOURCE, OTHER_SOURCE = longest_name(3), longest_name(4)
APP, INSTALLED_APP = longest_name(5), longest_name(6)
FEED = longest_name(7)
HUGE_TEXT = "ünïcødé 🎉 " * 20_000
IMAGE = "docker.io/beclab/" + "x" * 5_000


def manifest(version: str, *, labels: tuple[str, ...] = ()) -> Manifest:
    return Manifest.from_entry(
        {
            "id": APP,
            "name": APP,
            "version": version,
            "title": {"en-US": HUGE_TEXT},
            "price": 1e308,
            "count": INT64[1],
            "appLabels": list(labels),
        }
    )


def rendered_with_image() -> dict[str, Any]:
    return {
        "raw_package": HUGE_TEXT,
        "app_info": {"image_analysis": {"images": {IMAGE: {"size": INT64[1], "layers": []}}}},
    }


def every_event_type(ledger: Ledger, clock: FakeClock) -> None:
    """Commands whose events, together, are of every type the domain knows."""
    handle = ledger.handler.handle
    long_version = "1." + "9" * 10_000
    labels = tuple(f"label-{i}-ünï" for i in range(5_000))
    first = manifest(long_version, labels=labels)
    handle(
        RegisterUser(USER, role="admin" + "\x7f" * 1000, zone=HUGE_TEXT),
        RegisterUser(OTHER_USER),
        ConfigureSource(SOURCE, "remote", "https://" + "m" * 50_000, priority=INT32[1]),
        ConfigureSource(OTHER_SOURCE, "local", "file://", priority=INT32[0]),
        ObserveCatalog(SOURCE, "h" * 10_000, HUGE_TEXT, INT32[1]),
        UpdateSourceExtras(SOURCE, {"topics": [{"name": HUGE_TEXT, "n": INT64[0]}]}),
        MarkUserDirty(USER, reason="NUL\x00 and a lone surrogate \ud800 in a reason"),
    )
    offered = OfferApp(USER, SOURCE, first)
    handle(offered, OfferApp(OTHER_USER, SOURCE, first))
    failure = RecordRenderFailure(
        USER, SOURCE, APP, first.version, first.digest, "Step\x00" * 100, "\x00\ud800" + HUGE_TEXT
    )
    for _ in range(3):  # the ledger is opened with three attempts: the third parks it
        clock.advance(2_000)
        handle(failure)
    handle(RetryParked(USER, SOURCE, APP, requested_by="operator\x00" + HUGE_TEXT))
    handle(RecordRender(USER, SOURCE, APP, first.version, first.digest, rendered_with_image()))
    handle(UpdateImageInfo(USER, SOURCE, APP, IMAGE, {"size": INT64[0], "note": "\x00"}))
    relabelled = manifest(long_version, labels=(*labels, "more"))
    handle(OfferApp(USER, SOURCE, relabelled))
    handle(DelistApp(USER, SOURCE, APP, reason="gone\x00" + HUGE_TEXT))
    handle(OfferApp(USER, SOURCE, relabelled))  # relisted
    handle(WithdrawListing(OTHER_USER, SOURCE, APP, reason="\ud800" * 1000))
    now = clock()
    latest_believed = now + MAX_CLOCK_AHEAD
    earliest = datetime(1, 1, 1, tzinfo=UTC)
    observed = ObserveInstallationState(
        USER,
        INSTALLED_APP,
        "running" * 1000,
        latest_believed,
        source=SOURCE,
        op_type=HUGE_TEXT,
        progress="100" * 1000,
        version=long_version,
        event_id=HUGE_TEXT,
        raw_app_name=HUGE_TEXT,
        title=HUGE_TEXT,
        entrances=tuple({"name": f"e{i}", "url": HUGE_TEXT[:100]} for i in range(500)),
        shared_entrances=({"name": "\x00", "n": INT64[1]},),
    )
    handle(observed)
    handle(ObserveInstallationState(USER, INSTALLED_APP, "installing", earliest, source=SOURCE))
    handle(
        ObserveInstallationState(
            USER, INSTALLED_APP, "running", datetime.max.replace(tzinfo=UTC), source=SOURCE
        )
    )
    handle(  # refused before anything was observed of this app
        ObserveInstallationState(
            OTHER_USER, APP, "running", datetime.max.replace(tzinfo=UTC), source=OTHER_SOURCE
        )
    )
    handle(RemoveInstallation(USER, INSTALLED_APP, latest_believed))
    handle(ConsumeFeed(FEED, INT64[1]))
    handle(RemoveSource(OTHER_SOURCE), RemoveUser(OTHER_USER))
    replayed, discarded = "f" * 64, "0" * 64
    for key in (replayed, discarded):
        handle(
            pm.ParkMessage(
                key,
                subject="os.application." + "ü" * (pm.MAX_SUBJECT - 15),
                payload="🎉" * pm.MAX_PAYLOAD,
                kind="app_state",
                failure=pm.FAILED,
                reason="ü" * pm.MAX_REASON,
                deliveries=INT32[1],
                encoding=pm.TEXT,
                truncated=True,
                headers=tuple((f"h{i}" * 64, "v" * 4096) for i in range(pm.MAX_HEADERS)),
            )
        )
    handle(pm.RecordReplayFailure(replayed, reason="ü" * pm.MAX_REASON, requested_by=HUGE_TEXT))
    handle(pm.RecordReplay(replayed, requested_by=HUGE_TEXT))
    handle(pm.DiscardParkedMessage(discarded, requested_by=HUGE_TEXT))
    every_task_event(ledger, latest_believed)


def every_task_event(ledger: Ledger, latest_believed: datetime) -> None:
    """Tasks that, together, take every step a task can take, with the widest values."""
    handle = ledger.handler.handle
    installed, cloned, dequeued, canceling, uninstalled, settling, reconciled = (
        f"99991231235959-{suffix}"
        for suffix in ("zzzzzz", "ZZZZZZ", "000000", "aaaaaa", "AAAAAA", "111111", "222222")
    )
    raw = longest_name(8)[: MAX_NAME - 6]
    envs = tuple((f"ENV_{i}_ü" * 50, HUGE_TEXT) for i in range(500))
    handle(
        task.RequestTask(installed, task.INSTALL, USER, APP, SOURCE, "1." + "9" * 10_000, envs),
        task.DispatchTask(installed),
    )
    handle(task.AcceptTask(installed, op_id=HUGE_TEXT))
    handle(
        task.ObserveOutcome(
            installed, task.SUCCEEDED, "\x00\ud800" + HUGE_TEXT, HUGE_TEXT, latest_believed
        )
    )
    entrances = tuple((f"e{i}", HUGE_TEXT[:100]) for i in range(500))
    clone = task.RequestTask(
        cloned, task.CLONE, USER, raw + "abcdef", SOURCE, "1", envs, raw_app_name=raw,
        request_hash="abcdef", title=HUGE_TEXT, entrances=entrances,
    )  # fmt: skip
    handle(clone, task.DispatchTask(cloned))
    handle(task.RejectTask(cloned, "\x00\ud800" + HUGE_TEXT, "token=secret " + HUGE_TEXT))
    handle(task.RequestTask(dequeued, task.INSTALL, OTHER_USER, APP, SOURCE, "1"))
    handle(task.RequestTask(canceling, task.CANCEL, OTHER_USER, APP))
    handle(task.DequeueTask(dequeued, canceled_by=canceling))
    handle(task.DispatchTask(canceling))
    handle(task.AcceptTask(canceling, op_id=""))
    handle(task.TimeOutTask(canceling, deadline=timedelta(0)))
    uninstall = task.RequestTask(uninstalled, task.UNINSTALL, USER, APP, all=True, delete_data=True)
    handle(uninstall, task.InterruptTask(uninstalled, "\x00\ud800" + HUGE_TEXT))
    handle(task.RequestTask(settling, task.CANCEL, USER, APP))
    handle(task.SettleCancelInQueue(settling, removed_task=installed))
    upgrade = task.RequestTask(reconciled, task.UPGRADE, USER, APP, SOURCE, "2")
    handle(upgrade, task.DispatchTask(reconciled))
    handle(task.ReconcileTask(reconciled, found="\x00\ud800" + HUGE_TEXT))


def test_given_every_event_type_at_its_extremes_the_views_apply_it_and_equal_a_rebuild(
    store: StoreFactory, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = store.open(clock, retry_max_attempts=3)
    every_event_type(ledger, clock)
    events = LogReader(ledger.application).read(0, None, 10_000)
    produced = {type(event) for _, event in events}
    assert produced == set(EVENT_CLASSES.values()), "every event type the domain knows"

    ledger.catch_up()

    assert ledger.projector.position() == ledger.projector.head()
    assert ledger.rebuild(verify=True).differences == ()
    url = ledger.writer.url.render_as_string(hide_password=False)
    with_history_apart = rebuild(  # history filled by a second process, as on a large store
        ledger.application, ledger.writer, ledger.tables, verify=True, parallel=(url, store.schema)
    )
    assert with_history_apart.differences == ()
    for key, value in store.env().items():
        monkeypatch.setenv(key, value)
    verified = CliRunner().invoke(build_cli(bootstrap), ["rebuild", "--verify"])
    assert verified.exit_code == 0, verified.output
    with ledger.read() as conn:
        catalog = queries.catalog(conn, ledger.tables, USER)
        history = queries.history(conn, ledger.tables, USER, INSTALLED_APP)
    assert [app["app_id"] for app in catalog["sources"][SOURCE]["apps"]] == [APP]
    assert [entry["event"] for entry in history] == [
        "state_observed",
        "state_ignored_stale",
        "state_refused",
        "installation_removed",
    ]


@pytest.mark.parametrize("event_class", sorted(EVENT_CLASSES.values(), key=lambda e: e.TOPIC))
def test_every_event_type_has_a_history_name_the_history_view_can_hold(
    event_class: type[Any],
) -> None:
    assert 0 < len(event_class.HISTORY_NAME) <= 64
