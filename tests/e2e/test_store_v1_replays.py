"""A store written by an early version of the code still replays with today's code.

``tests/fixtures/store-v1.sqlite`` was written once and is never regenerated (its README
paragraph says by which commit). Whatever the events and modules become, a copy of it must
rebuild and verify through the CLI, and a user's catalog must read the same before and after.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from eventsourcing.utils import resolve_topic

from market_ledger.adapters.cli.commands import build_cli
from market_ledger.bootstrap import bootstrap
from market_ledger.domain.events import EVENT_CLASSES, version_problems
from tests.fixtures import STORE_V1, fixture
from tests.support.store_v1 import topics_in

#: every event topic the code knew when the fixture was written; each occurs in it
TOPICS_OF_V1 = (
    "feed_cursor.Consumed.v1",
    "installation.Removed.v1",
    "installation.StateIgnored.v1",
    "installation.StateObserved.v1",
    "installation.StateRefused.v1",
    "intake.MessageDiscarded.v1",
    "intake.MessageParked.v1",
    "intake.MessageReplayed.v1",
    "intake.ReplayFailed.v1",
    "listing.Delisted.v1",
    "listing.ImageInfoUpdated.v1",
    "listing.LabelsChanged.v1",
    "listing.Offered.v1",
    "listing.Parked.v1",
    "listing.Relisted.v1",
    "listing.RenderFailed.v1",
    "listing.Rendered.v1",
    "listing.RetryRequested.v1",
    "listing.Withdrawn.v1",
    "manifest.Recorded.v1",
    "market_source.CatalogObserved.v1",
    "market_source.Configured.v1",
    "market_source.ExtrasUpdated.v1",
    "market_source.Removed.v1",
    "user.MarkedDirty.v1",
    "user.Registered.v1",
    "user.Removed.v1",
)
USER = "alice"
SOURCE = "market.olares"


@pytest.fixture
def store_copy(tmp_path: Path) -> Path:
    """A copy of the fixture: opening a store may migrate it, and the original stays as written."""
    copy = tmp_path / "ledger.db"
    shutil.copyfile(fixture(STORE_V1), copy)
    return copy


@pytest.fixture
def run(store_copy: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("LEDGER_DATABASE_URL", f"sqlite:///{store_copy}")
    cli = build_cli(bootstrap)

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, list(args), catch_exceptions=False)

    return invoke


def stored_topics(path: Path) -> Counter[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT topic, count(*) FROM stored_events GROUP BY topic").fetchall()
    conn.close()
    return Counter({topic: count for topic, count in rows})


def test_given_the_v1_store_when_rebuilt_with_verify_through_the_cli_then_it_exits_0(
    run: Any,
) -> None:
    result = run("rebuild", "--verify")

    assert result.exit_code == 0, result.output
    assert "rows identical" in result.output


def test_given_the_v1_store_then_every_event_type_of_v1_is_in_it() -> None:
    topics = stored_topics(fixture(STORE_V1))

    missing = [topic for topic in TOPICS_OF_V1 if topics[topic] == 0]
    assert missing == [], f"expected every one of {TOPICS_OF_V1}"
    assert sorted(topics) == sorted(TOPICS_OF_V1)


def test_given_the_v1_store_then_every_topic_in_it_is_read_as_an_event_class_of_today(
    store_copy: Path,
) -> None:
    topics = topics_in(store_copy)

    classes = {topic: resolve_topic(topic) for topic in topics}

    assert len(topics) == len(TOPICS_OF_V1)
    for topic, cls in classes.items():
        assert EVENT_CLASSES.get(topic) is cls, f"{topic} names no event class of today"
        assert topic in cls.stored_topics()
        assert version_problems(cls) == []
    assert classes["listing.Rendered.v1"].TOPIC == "listing.Rendered.v2"


def test_given_the_v1_store_when_rebuilt_then_a_users_catalog_is_what_its_views_held(
    run: Any,
) -> None:
    status = json.loads(run("status", "--json").output)
    assert status["projector_lag"] == 0  # the views in the file are at the head of the log
    before = run("catalog", "--user", USER, "--json")
    assert before.exit_code == 0, before.output

    rebuilt = run("rebuild")
    after = run("catalog", "--user", USER, "--json")

    assert rebuilt.exit_code == 0, rebuilt.output
    assert after.exit_code == 0, after.output
    catalog = json.loads(after.output)
    assert catalog["sources"][SOURCE]["apps"], "alice sees the market's apps"
    assert catalog == json.loads(before.output)
