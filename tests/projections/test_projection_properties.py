"""Properties of the projections, over random command sequences (hypothesis).

* the views maintained incrementally, whatever the batch size and however often the
  projector runs in between, equal a rebuild from position 0, row for row and hash for hash;
* a user's hash does not depend on how other users' events interleave with theirs.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from market_ledger.adapters.config import Settings
from market_ledger.bootstrap import Ledger, bootstrap
from market_ledger.domain.decider import Command
from market_ledger.domain.feed_cursor import ConsumeFeed
from market_ledger.domain.installation import ObserveInstallationState, RemoveInstallation
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
from market_ledger.domain.market_source import ConfigureSource, RemoveSource, UpdateSourceExtras
from market_ledger.domain.user import MarkUserDirty, RegisterUser, RemoveUser
from market_ledger.projections import queries
from tests.conftest import FakeClock
from tests.projections.agreement import assert_listing_rows_agree_with_the_domain

USERS = ["u1", "u2", "u3"]
SOURCES = ["s1", "s2"]
APPS = ["a", "b", "c"]
T0 = datetime(2026, 11, 1, tzinfo=UTC)

users = st.sampled_from(USERS)
sources = st.sampled_from(SOURCES)
apps = st.sampled_from(APPS)


def manifest(app: str, version: str, description: str, labels: list[str]) -> Manifest:
    return Manifest.from_entry(
        {
            "id": app,
            "name": app,
            "version": version,
            "description": description,
            "appLabels": labels,
        }
    )


def rendered(status: str) -> dict[str, Any]:
    return {"app_info": {"image_analysis": {"images": {"img": {"status": status}}}}}


versions = st.sampled_from(["1", "2"])
descriptions = st.sampled_from(["x", "y"])
labels = st.sampled_from([[], [], ["suspend"], ["featured"]])
moments = st.integers(0, 30).map(lambda s: T0 + timedelta(seconds=s))


@st.composite
def listing_commands(draw: st.DrawFn, user: st.SearchStrategy[str] = users) -> Command:
    u, s, a = draw(user), draw(sources), draw(apps)
    v, d = draw(versions), draw(descriptions)
    digest = manifest(a, v, d, []).digest
    kind = draw(
        st.sampled_from(
            [
                "offer",
                "offer",
                "render",
                "render",
                "fail",
                "fail",
                "retry",
                "delist",
                "withdraw",
                "image",
                "install",
                "install",
                "uninstall",
            ]
        )
    )
    if kind == "offer":
        return OfferApp(u, s, manifest(a, v, d, draw(labels)))
    if kind == "render":
        return RecordRender(u, s, a, v, digest, rendered(draw(st.sampled_from(["new", "old"]))))
    if kind == "fail":
        return RecordRenderFailure(u, s, a, v, digest, "TaskForApiStep", "boom")
    if kind == "retry":
        return RetryParked(u, s, a)
    if kind == "delist":
        return DelistApp(u, s, a)
    if kind == "withdraw":
        return WithdrawListing(u, s, a, "source removed")
    if kind == "image":
        return UpdateImageInfo(u, s, a, "img", {"status": draw(st.sampled_from(["a", "b"]))})
    if kind == "install":
        return ObserveInstallationState(
            u,
            a,
            draw(st.sampled_from(["installing", "running", "uninstalled"])),
            draw(moments),
            source=draw(st.sampled_from([*SOURCES, ""])),
            event_id=draw(st.sampled_from(["", "e1", "e2", "e3"])),
            progress=draw(st.sampled_from(["", "50"])),
        )
    return RemoveInstallation(u, a, draw(moments))


other_commands = st.one_of(
    st.builds(RegisterUser, users, st.sampled_from(["normal", "admin"])),
    st.builds(RemoveUser, users),
    st.builds(MarkUserDirty, users),
    st.builds(
        ConfigureSource,
        sources,
        st.just("remote"),
        st.sampled_from(["https://a", "b"]),
        active=st.booleans(),
    ),
    st.builds(RemoveSource, sources),
    st.builds(
        UpdateSourceExtras,
        sources,
        st.sampled_from([{}, {"tops": [{"appid": "a"}]}, {"latest": ["b", "a"]}]),
    ),
    st.builds(ConsumeFeed, st.just("chart-repo"), st.integers(0, 5)),
)
any_command = st.one_of(listing_commands(), listing_commands(), other_commands)
SETUP = [RegisterUser(u) for u in USERS] + [
    ConfigureSource(s, "remote", f"https://{s}") for s in SOURCES
]


@contextmanager
def fresh_ledger(batch_size: int = 1000) -> Iterator[Ledger]:
    with tempfile.TemporaryDirectory() as folder:
        ledger = bootstrap(
            Settings(database_url=f"sqlite:///{folder}/ledger.db", retry_max_attempts=2),
            clock=FakeClock(),
            projector_batch_size=batch_size,
        )
        try:
            yield ledger
        finally:
            ledger.close()


PROPERTY_SETTINGS = settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY_SETTINGS
@given(
    commands=st.lists(any_command, max_size=45),
    batch_size=st.integers(1, 9),
    catch_up_every=st.integers(1, 15),
)
def test_incremental_views_equal_a_rebuild_whatever_the_batch_size(
    commands: list[Command], batch_size: int, catch_up_every: int
) -> None:
    with fresh_ledger(batch_size) as ledger:
        ledger.handler.handle(*SETUP)
        for index, command in enumerate(commands, start=1):
            ledger.handler.handle(command)
            if index % catch_up_every == 0:
                ledger.catch_up()
        ledger.catch_up()
        report = ledger.rebuild(verify=True)
        assert report.differences == (), [d.describe() for d in report.differences]
        assert_listing_rows_agree_with_the_domain(ledger)


@st.composite
def two_users_interleaved(draw: st.DrawFn) -> tuple[list[Command], list[Command]]:
    first = draw(st.lists(listing_commands(st.just("u1")), max_size=20))
    second = draw(st.lists(listing_commands(st.just("u2")), max_size=20))
    picks = draw(st.permutations([0] * len(first) + [1] * len(second)))
    queues = [iter(first), iter(second)]
    interleaved = [next(queues[p]) for p in picks]
    return first + second, interleaved


@PROPERTY_SETTINGS
@given(orders=two_users_interleaved())
def test_a_users_hash_does_not_depend_on_how_other_users_events_interleave(
    orders: tuple[list[Command], list[Command]],
) -> None:
    results = []
    for order in orders:
        with fresh_ledger(batch_size=4) as ledger:
            ledger.handler.handle(*SETUP)
            for command in order:
                ledger.handler.handle(command)
            ledger.catch_up()
            with ledger.read() as conn:
                results.append({u: queries.catalog(conn, ledger.tables, u) for u in ("u1", "u2")})
    assert results[0] == results[1]
