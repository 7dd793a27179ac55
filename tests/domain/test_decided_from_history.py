"""Rules decided from an aggregate's own events, never from a view that may lag; and what a
render stores."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder, Mapper, StoredEvent
from eventsourcing.utils import resolve_topic

from market_ledger.adapters.chart_repo.app_data import pending_entry_of
from market_ledger.adapters.local.renderer import render_in_process
from market_ledger.domain import identity
from market_ledger.domain.decider import DecisionContext
from market_ledger.domain.installation import (
    INSTALLATION,
    InstallationRemoved,
    ObserveInstallationState,
    RemoveInstallation,
    StateObserved,
)
from market_ledger.domain.listing import LISTING, Offered, Rendered
from market_ledger.domain.manifest import entry_with_labels
from market_ledger.domain.rendering import compact_rendered, expand_rendered
from market_ledger.domain.user import (
    USER,
    EnsureUserRegistered,
    RegisterUser,
    RemoveUser,
    UserRegistered,
)
from market_ledger.service.handler import DECIDERS, decider_for
from tests.support.builders import SOURCE, offer, render
from tests.support.decider import DeciderSpec

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
CONTEXT = DecisionContext(at=T0 + timedelta(hours=1))
installations: DeciderSpec[Any] = DeciderSpec(INSTALLATION, CONTEXT)
listings: DeciderSpec[Any] = DeciderSpec(LISTING, CONTEXT)
users: DeciderSpec[Any] = DeciderSpec(USER, CONTEXT)
LONG_TEXT = "A browser that respects its user. " * 40


def observe(seconds: float, *entrances: dict[str, Any], **fields: Any) -> ObserveInstallationState:
    return ObserveInstallationState(
        "alice",
        "firefox",
        "running",
        T0 + timedelta(seconds=seconds),
        source=SOURCE,
        entrances=entrances,
        **fields,
    )


# --- the entrances' invisible flag -------------------------------------------------------------


def test_given_an_invisible_entrance_when_a_message_omits_the_flag_then_it_stays_invisible() -> (
    None
):
    given = installations.given(observe(1, {"name": "www", "invisible": True}, origin="status"))
    then = given.when(observe(2, {"name": "www", "state": "running"}, progress="50")).then(
        StateObserved
    )
    assert then.events[0].entrances == [{"name": "www", "state": "running", "invisible": True}]


def test_given_an_entrance_flag_when_a_message_says_it_then_the_message_wins() -> None:
    given = installations.given(observe(1, {"name": "www", "invisible": True}))
    then = given.when(observe(2, {"name": "www", "invisible": False})).then(StateObserved)
    assert then.events[0].entrances == [{"name": "www", "invisible": False}]


def test_given_an_entrance_never_flagged_when_a_message_omits_the_flag_then_none_is_added() -> None:
    given = installations.given(observe(1, {"name": "www", "invisible": True}))
    then = given.when(observe(2, {"name": "admin"})).then(StateObserved)
    assert then.events[0].entrances == [{"name": "admin"}]


def test_given_a_removed_installation_then_its_entrances_keep_their_flags() -> None:
    given = installations.given(
        observe(1, {"name": "www", "invisible": True}),
        RemoveInstallation("alice", "firefox", T0 + timedelta(seconds=2)),
    )
    assert [type(e) for e in given.events] == [StateObserved, InstallationRemoved]
    then = given.when(observe(3, {"name": "www"})).then(StateObserved)
    assert then.events[0].entrances == [{"name": "www", "invisible": True}]


def test_given_a_flag_and_an_omission_agreeing_then_the_repeat_is_nothing_new() -> None:
    given = installations.given(observe(1, {"name": "www", "invisible": True}))
    given.when(observe(2, {"name": "www"})).then_nothing()


# --- the user-role reset -----------------------------------------------------------------------


def test_given_a_user_with_a_role_when_a_user_created_event_comes_again_then_the_role_stays() -> (
    None
):
    given = users.given(RegisterUser("bob", role="admin"))
    given.when(EnsureUserRegistered("bob")).then_nothing()
    assert given.state is not None and given.state.role == "admin"


def test_given_no_user_when_a_user_created_event_comes_then_the_user_is_registered() -> None:
    then = users.when(EnsureUserRegistered("bob")).then(UserRegistered)
    assert (then.events[0].name, then.events[0].role) == ("bob", "normal")


def test_given_a_removed_user_when_a_user_created_event_comes_then_the_user_is_registered() -> None:
    given = users.given(RegisterUser("bob", role="admin"), RemoveUser("bob"))
    then = given.when(EnsureUserRegistered("bob")).then(UserRegistered)
    assert then.events[0].role == "normal"


def test_given_an_invalid_name_when_a_user_created_event_comes_then_it_is_refused() -> None:
    users.when(EnsureUserRegistered("bo b")).then_rejected("invalid user name")


# --- newly ready, from the render event --------------------------------------------------------


def test_given_a_first_render_then_it_replaces_nothing_and_a_second_names_the_first() -> None:
    first = offer(version="1.0.0")
    then = listings.given(first).when(render(first)).then(Rendered)
    assert then.events[0].replaces is None
    second = offer(version="1.1.0")
    then = listings.given(first, render(first), second).when(render(second)).then(Rendered)
    assert then.events[0].replaces == "1.0.0"


def test_given_new_content_at_the_same_version_then_the_render_replaces_that_version() -> None:
    first = offer(version="1.0.0", description={"en-US": "old"})
    again = offer(version="1.0.0", description={"en-US": "new"})
    given = listings.given(first, render(first), again)
    assert [type(e) for e in given.events][-1] is Offered
    then = given.when(render(again)).then(Rendered)
    assert then.events[0].replaces == "1.0.0"


def test_given_a_render_stored_as_version_1_when_read_then_it_replaces_nothing() -> None:
    transcoder = JSONTranscoder()
    transcoder.register(DatetimeAsISO())
    mapper: Mapper[Any] = Mapper(transcoder=transcoder)
    state = {
        "timestamp": {"_type_": "datetime_iso", "_data_": T0.isoformat()},
        "app_version": "1.0.0",
        "digest": "d" * 64,
        "rendered": "{}",
        "images": {},
    }
    stored = StoredEvent(
        originator_id=identity.listing_id("alice", SOURCE, "firefox"),
        originator_version=2,
        topic="listing.Rendered.v1",
        state=json.dumps(state).encode(),
    )
    event = mapper.to_domain_event(stored)
    assert resolve_topic("listing.Rendered.v1") is Rendered
    assert isinstance(event, Rendered)
    assert (event.app_version, event.replaces) == ("1.0.0", None)
    assert Rendered.stored_topics() == ("listing.Rendered.v2", "listing.Rendered.v1")
    again = mapper.to_stored_event(event)
    assert again.topic == "listing.Rendered.v2"
    assert mapper.to_domain_event(again) == event


# --- a manifest is stored once -----------------------------------------------------------------


def test_given_an_in_process_render_then_the_stored_event_does_not_carry_the_entry_again() -> None:
    command = offer(description={"en-US": LONG_TEXT})
    entry = entry_with_labels(json.loads(command.manifest.content), command.manifest.labels)
    app_data = render_in_process(entry, SOURCE, "alice")
    # the renderer copies the entry twice, besides the summary it derives from it
    assert json.dumps(app_data).count(LONG_TEXT) == 3
    then = listings.given(command).when(render(command, **compact_rendered(app_data, entry)))
    stored = then.then(Rendered).events[0].rendered
    assert stored.count(LONG_TEXT) == 1  # the summary only
    assert "raw_data" not in json.loads(stored)
    assert expand_rendered(json.loads(stored), entry) == app_data


def test_given_a_chart_repo_render_of_the_normalised_entry_then_it_is_stored_once() -> None:
    command = offer(description={"en-US": LONG_TEXT})
    entry = entry_with_labels(json.loads(command.manifest.content), command.manifest.labels)
    pending = pending_entry_of(entry)
    app_data = {
        **pending,
        "type": "app-info-latest",
        "raw_package": "p.tgz",
        "rendered_package": "r",
        "app_info": {"app_entry": pending["raw_data"], "image_analysis": {"images": {}}},
    }
    compact = compact_rendered(app_data, entry)
    assert json.dumps(app_data).count(LONG_TEXT) == 2
    assert LONG_TEXT not in json.dumps(compact)
    assert expand_rendered(compact, entry) == app_data


# --- the command table -------------------------------------------------------------------------


def test_every_command_of_every_aggregate_is_in_the_table_once() -> None:
    assert decider_for(EnsureUserRegistered("bob")) is USER
    assert DECIDERS[RegisterUser] is USER and DECIDERS[ObserveInstallationState] is INSTALLATION
    assert len(DECIDERS) == 33  # the task aggregate decides ten
