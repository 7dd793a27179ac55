"""Every reader of the log sees the events of the v1 store in today's shape.

``listing.Rendered`` changed shape after the fixture was written: version 2 names the version
it replaces, and a version 1 event is upcast on read as replacing nothing (``upcast_v1_v2``).
Each reader is checked on a copy of the fixture: the log reader (its own fast decoding and the
library's), the projector and a rebuild (serial, and with the history filled by a second
process), ``market-ledger history``, time travel, and the notifier.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from market_ledger.adapters.cli.commands import build_cli
from market_ledger.bootstrap import Ledger, bootstrap
from market_ledger.domain import listing
from market_ledger.domain.events import LedgerEvent
from market_ledger.projections.log_reader import LogReader
from market_ledger.projections.rebuild import rebuild
from market_ledger.projections.time_travel import position_at
from market_ledger.service.catalog_at import catalog_at
from tests.support.store_v1 import (
    RENDERED_V1,
    copy_of_store_v1,
    field_names,
    listings,
    new_apps_ready,
    open_store,
    stored,
    stream_of,
)

SOURCE = "market.olares"
#: the registered users of the fixture (carol was removed)
USERS = ("alice", "bob")


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    return copy_of_store_v1(tmp_path)


@pytest.fixture
def ledger(copy: Path) -> Iterator[Ledger]:
    opened = open_store(copy)
    yield opened
    opened.close()


def read_all(reader: LogReader, topics: Sequence[str] = ()) -> dict[int, LedgerEvent]:
    return dict(reader.read(0, None, 100_000, topics=topics))


def cli_json(copy: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> Any:
    monkeypatch.setenv("LEDGER_DATABASE_URL", f"sqlite:///{copy}")
    result = CliRunner().invoke(build_cli(bootstrap), [*args, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def apps_of(catalog: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {app["app_id"]: app for app in catalog["sources"][SOURCE]["apps"]}


def test_given_v1_renders_when_the_projector_reads_them_then_each_is_of_today_replacing_nothing(
    copy: Path, ledger: Ledger
) -> None:
    v1 = stored(copy, RENDERED_V1)

    events = read_all(ledger.projector.reader)

    assert len(v1) == 61
    for position, stream, state in v1:
        event = events[position]
        assert isinstance(event, listing.Rendered)
        assert event.originator_id.hex == stream
        assert (event.app_version, event.digest) == (state["app_version"], state["digest"])
        assert event.replaces is None
    # every event of the store, whatever its topic, has exactly the fields of its class today
    assert [p for p, e in events.items() if set(vars(e)) != field_names(e)] == []


def test_given_the_v1_store_when_read_by_topic_or_one_by_one_then_the_library_agrees(
    copy: Path, ledger: Ledger
) -> None:
    reader = ledger.projector.reader
    fast = read_all(reader)

    by_topic = read_all(reader, topics=listing.Rendered.stored_topics())
    one_by_one = {n.id: reader.decode(n) for n in reader.notifications(0, None, 100_000)}

    assert sorted(by_topic) == [position for position, _, _ in stored(copy, RENDERED_V1)]
    assert all(isinstance(e, listing.Rendered) and e.replaces is None for e in by_topic.values())
    assert by_topic == {p: fast[p] for p in by_topic}
    assert one_by_one == fast


@pytest.mark.parametrize("history_in_a_second_process", [False, True], ids=["serial", "parallel"])
def test_given_the_v1_store_when_rebuilt_then_the_views_are_those_old_code_left(
    ledger: Ledger, copy: Path, history_in_a_second_process: bool
) -> None:
    parallel = (f"sqlite:///{copy}", None) if history_in_a_second_process else None

    report = rebuild(
        ledger.application, ledger.writer, ledger.tables, verify=True, parallel=parallel
    )

    assert report.position == 217
    assert [d.describe() for d in report.differences] == []
    assert report.compared_rows > 217  # the history alone has a row per listing event


def test_given_v1_renders_when_the_apps_history_is_read_then_they_are_in_it_as_before(
    copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calibre = stream_of(copy, "alice", "calibre")
    renders = [(p, state) for p, stream, state in stored(copy, RENDERED_V1) if stream == calibre]
    before = cli_json(copy, monkeypatch, "history", "--user", "alice", "--app", "calibre")

    rebuilt = CliRunner().invoke(build_cli(bootstrap), ["rebuild"], catch_exceptions=False)
    after = cli_json(copy, monkeypatch, "history", "--user", "alice", "--app", "calibre")

    assert rebuilt.exit_code == 0, rebuilt.output
    shown = [(e["position"], e["version"], e["digest"]) for e in after if e["event"] == "rendered"]
    assert shown == [(p, state["app_version"], state["digest"]) for p, state in renders]
    assert len(shown) == 2 and shown[0][1] == shown[1][1] == "1.0.0"  # re-rendered, same version
    assert after == before


def test_given_a_v1_render_when_travelling_to_before_and_at_it_then_pending_then_latest(
    copy: Path, ledger: Ledger
) -> None:
    comfyui = stream_of(copy, "alice", "comfyui")
    position, _, state = next(
        r for r in stored(copy, RENDERED_V1) if r[1] == comfyui and r[2]["app_version"] == "1.1.7"
    )

    before = apps_of(catalog_at(ledger, "alice", position=position - 1))["comfyui"]
    at = apps_of(catalog_at(ledger, "alice", position=position))["comfyui"]

    assert (before["status"], before["pending_version"]) == ("pending", "1.1.7")
    assert before["latest_version"] != "1.1.7"
    assert (at["status"], at["latest_version"], at["pending_version"]) == ("latest", "1.1.7", None)
    assert state["app_version"] == "1.1.7"


def test_given_the_v1_store_when_travelling_to_its_head_or_a_moment_then_it_matches(
    copy: Path, ledger: Ledger
) -> None:
    position, _, state = stored(copy, RENDERED_V1)[-1]
    decided = datetime.fromisoformat(state["timestamp"]["_data_"])
    now = catalog_at(ledger, "alice")

    at_head = catalog_at(ledger, "alice", position=217)
    at_moment = position_at(ledger.application, decided, 217)

    assert at_head == {**now, "position": 217}
    assert position <= at_moment < 217
    assert ledger.projector.reader.read(at_moment, None, 1)[0][1].timestamp > decided


def test_given_a_notifier_behind_v1_renders_when_it_catches_up_then_it_announces_new_versions_only(
    copy: Path, ledger: Ledger
) -> None:
    """A v1 render is read as replacing nothing; whether it made a new version latest is
    found in the history, so a re-render of the same version is not announced as new."""
    listed = listings(copy)
    previous: dict[str, str] = {}
    expected: list[tuple[int, str, str, str]] = []
    for position, stream, state in stored(copy, RENDERED_V1):
        user, app_id = listed[stream]
        if position > 163 and user in USERS and previous.get(stream) != state["app_version"]:
            expected.append((position, user, app_id, state["app_version"]))
        previous[stream] = state["app_version"]

    ready = new_apps_ready(ledger, after=163)

    assert [(n.user, n.app_name, n.app_version) for n in ready] == [e[1:] for e in expected]
    assert ("alice", "calibre", "1.0.0") not in [e[1:] for e in expected]  # re-rendered as is
    assert [n.at for n in ready] == [ledger_event_time(ledger, e[0]) for e in expected]


def ledger_event_time(ledger: Ledger, position: int) -> datetime:
    ((_, event),) = ledger.projector.reader.read(position - 1, position, 1)
    return event.timestamp
