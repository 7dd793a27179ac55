"""The projection version the views record: set by the first batch of new views, 1 for views
written before versions were recorded, this code's after a rebuild, kept by a verify, and
shown by ``status`` for the serving generation and the one being built."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from market_ledger.adapters.config import Settings
from market_ledger.bootstrap import bootstrap
from market_ledger.domain.user import RegisterUser
from market_ledger.projections.views_version import VIEWS_VERSION, recorded_version
from tests.conftest import StoreFactory
from tests.fixtures import STORE_V1, fixture
from tests.support.older_views import built_by, catalog_of, offered, status_of


def test_given_new_views_when_the_first_batch_is_applied_then_they_record_this_codes_version(
    store: StoreFactory,
) -> None:
    # given a new store
    ledger = store.open()
    before = status_of(ledger)["views_version"]

    # when events are projected
    offered(ledger, ["a"])

    # then the views say which projection built them
    assert before == {"serving": None, "code": VIEWS_VERSION}
    assert status_of(ledger)["views_version"] == {"serving": VIEWS_VERSION, "code": VIEWS_VERSION}
    with ledger.read() as conn:
        assert recorded_version(conn, ledger.tables) == VIEWS_VERSION


def test_given_views_written_before_versions_were_recorded_then_they_are_version_one(
    tmp_path: Path,
) -> None:
    # given the store an early version of the project wrote (no version recorded)
    copy = tmp_path / "ledger.db"
    shutil.copyfile(fixture(STORE_V1), copy)
    ledger = bootstrap(Settings(database_url=f"sqlite:///{copy}"))
    try:
        with ledger.read() as conn:
            unrecorded = recorded_version(conn, ledger.tables)
        shown = status_of(ledger)["views_version"]["serving"]

        # when a new batch is projected onto them
        ledger.handler.handle(RegisterUser("zed"))
        ledger.catch_up()

        # then they were and stay version 1 until rebuilt
        with ledger.read() as conn:
            assert (unrecorded, shown, recorded_version(conn, ledger.tables)) == (None, 1, 1)
    finally:
        ledger.close()


def test_given_views_of_an_older_version_when_rebuilt_then_they_record_this_codes_version(
    store: StoreFactory,
) -> None:
    # given views an older projection built
    ledger = store.open()
    offered(ledger, ["a", "b"])
    built_by(ledger, VIEWS_VERSION - 1)
    catalog = catalog_of(ledger)

    # when rebuilt
    ledger.rebuild()

    # then the switched-in generation is this code's, with the same catalog
    assert status_of(ledger)["views_version"]["serving"] == VIEWS_VERSION
    assert catalog_of(ledger) == catalog


def test_given_views_of_an_older_version_when_verified_then_rows_are_compared_and_the_version_kept(
    store: StoreFactory,
) -> None:
    # given views an older projection built, their rows what this code makes
    ledger = store.open()
    offered(ledger, ["a"])
    built_by(ledger, VIEWS_VERSION - 1)

    # when verified
    report = ledger.rebuild(verify=True)

    # then no difference is found and the views still say what built them
    assert report.differences == (), [d.describe() for d in report.differences]
    assert status_of(ledger)["views_version"]["serving"] == VIEWS_VERSION - 1


def test_given_a_rebuild_filling_fresh_views_then_status_shows_both_generations(
    store: StoreFactory,
) -> None:
    # given views an older projection built
    ledger = store.open()
    offered(ledger, ["a", "b"])
    built_by(ledger, VIEWS_VERSION - 1)
    seen: dict[str, Any] = {}

    def look(step: str) -> None:
        if step == "hashed":
            seen.update(status_of(ledger))

    # when a rebuild is looked at once it has filled its fresh tables
    ledger.rebuild(at_step=look)

    # then status showed the serving generation and the one being built, with their versions
    head = ledger.projector.head()
    assert seen["views_version"] == {"serving": VIEWS_VERSION - 1, "code": VIEWS_VERSION}
    assert seen["projector_position"] == head
    assert seen["rebuild"] == {
        "building": True,
        "running": True,
        "position": head,
        "target": head,
        "version": VIEWS_VERSION,
    }
    after = status_of(ledger)["rebuild"]
    assert (after["building"], after["version"]) == (False, None)
    with ledger.read() as conn:
        assert not sa.inspect(conn).has_table("rebuild_projector_position")
