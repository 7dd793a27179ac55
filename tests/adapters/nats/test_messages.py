"""Inbound NATS messages: their wire formats, the commands they become, and the source of an
installed app."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from market_ledger.adapters.nats.intake import subject_matches
from market_ledger.adapters.nats.messages import (
    MalformedMessage,
    parse_app_state,
    parse_user_event,
)
from market_ledger.bootstrap import Ledger
from market_ledger.domain.installation import ObserveInstallationState, StateObserved
from market_ledger.domain.user import EnsureUserRegistered, RegisterUser, RemoveUser
from market_ledger.service.intake import (
    UserChange,
    apply_commands,
    command_for,
    with_resolved_sources,
)
from tests.support.builders import offer

#: an app-state message as app-service sends it: an install, running, with entrances
RUNNING = {
    "eventID": "alice-jellyfin-1750227533044",
    "createTime": "2025-06-18T06:18:53.044871265Z",
    "name": "jellyfin",
    "rawAppName": "jellyfin",
    "title": "Jellyfin",
    "type": "app",
    "opType": "install",
    "opID": "7f3c2a9e1b",
    "state": "running",
    "user": "alice",
    "progress": "",
    "entranceStatuses": [
        {
            "id": "5b8d1c2e",
            "name": "jellyfin",
            "state": "running",
            "statusTime": "2025-06-18T06:18:52Z",
            "reason": "Running",
            "url": "5b8d1c2e.alice.olares.com",
            "invisible": False,
        },
        {"name": "jellyfin-admin", "state": "running", "url": ""},
    ],
    "sharedEntrances": [{"name": "jellyfin-shared", "host": "jellyfin-svc", "port": 8096}],
}


def encode(payload: Any, **changes: Any) -> bytes:
    if isinstance(payload, dict):
        payload = {**payload, **changes}
        payload = {k: v for k, v in payload.items() if v is not ...}
    return json.dumps(payload).encode()


def test_given_the_reference_running_message_then_every_field_lands_in_the_command() -> None:
    command = parse_app_state(encode(RUNNING), subject="os.application.alice")
    assert command == ObserveInstallationState(
        user="alice",
        name="jellyfin",
        state="running",
        observed_at=datetime(2025, 6, 18, 6, 18, 53, 44871, tzinfo=UTC),
        op_type="install",
        op_id="7f3c2a9e1b",
        progress="",
        event_id="alice-jellyfin-1750227533044",
        origin="app-state",
        raw_app_name="jellyfin",
        title="Jellyfin",
        entrances=tuple(RUNNING["entranceStatuses"]),  # type: ignore[arg-type]
        shared_entrances=tuple(RUNNING["sharedEntrances"]),  # type: ignore[arg-type]
    )
    assert command.source == ""  # resolved from the views, not from the message


@pytest.mark.parametrize(
    ("create_time", "expected_micro"),
    [
        ("2025-06-18T06:17:40.9004512Z", 900451),  # trailing zeros trimmed: 7 digits
        ("2025-06-18T06:17:40Z", 0),  # second precision
        ("2025-06-18T08:17:40.5+02:00", 500000),  # an offset
    ],
)
def test_given_a_create_time_in_any_rfc3339_form_then_it_is_parsed_to_utc(
    create_time: str, expected_micro: int
) -> None:
    command = parse_app_state(encode(RUNNING, createTime=create_time))
    assert command.observed_at == datetime(2025, 6, 18, 6, 17, 40, expected_micro, tzinfo=UTC)


def test_given_a_numeric_progress_and_absent_optional_fields_then_defaults_are_used() -> None:
    command = parse_app_state(
        encode(
            RUNNING,
            progress=45.2,
            opType=...,
            title=None,
            entranceStatuses=None,
            sharedEntrances=...,
        )
    )
    assert (command.progress, command.op_type, command.title) == ("45.2", "", "")
    assert command.entrances == () and command.shared_entrances == ()


def test_given_no_user_in_the_payload_then_the_owner_comes_from_the_subject() -> None:
    command = parse_app_state(encode(RUNNING, user=...), subject="os.application.bob")
    assert command.user == "bob"


def test_given_no_event_id_then_the_nats_msg_id_header_stands_in() -> None:
    command = parse_app_state(encode(RUNNING, eventID=...), headers={"Nats-Msg-Id": "m-1"})
    assert command.event_id == "m-1"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (b"{not json", "payload"),
        (b"[1, 2]", "payload"),
        (encode(RUNNING, name=...), "name"),
        (encode(RUNNING, name="  "), "name"),
        (encode(RUNNING, state=3), "state"),
        (encode(RUNNING, user=...), "user"),
        (encode(RUNNING, createTime=...), "createTime"),
        (encode(RUNNING, createTime="yesterday"), "createTime"),
        (encode(RUNNING, entranceStatuses={"name": "x"}), "entranceStatuses"),
        (encode(RUNNING, entranceStatuses=[{"name": "x"}, "y"]), "entranceStatuses[1]"),
        (encode(RUNNING, progress=[1]), "progress"),
    ],
)
def test_given_a_malformed_app_state_message_then_the_error_names_the_field(
    data: bytes, field: str
) -> None:
    with pytest.raises(MalformedMessage) as raised:
        parse_app_state(data, subject="os.application.*")
    assert raised.value.field == field
    assert str(raised.value).startswith(f"{field}: ")


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"event_type": "user_created", "username": "carol"}, UserChange("carol", True)),
        ({"event_type": "USER_DELETED", "username": "carol"}, UserChange("carol", False)),
        (
            {"topic": "Create", "payload": {"user": "carol", "operator": "admin"}},
            UserChange("carol", True),
        ),
        ({"topic": "Delete", "payload": {"user": "carol"}}, UserChange("carol", False)),
        ({"event_type": "app_install", "username": "admin"}, None),
        ({"topic": "market_payment", "sign": {}, "user": "alice"}, None),
    ],
)
def test_given_a_user_event_then_it_reads_as_created_deleted_or_nothing(
    payload: dict[str, Any], expected: UserChange | None
) -> None:
    assert parse_user_event(encode(payload)) == expected


def test_given_a_user_change_then_created_ensures_the_user_and_deleted_removes_them() -> None:
    assert command_for(UserChange("carol", True)) == EnsureUserRegistered("carol")
    assert command_for(UserChange("carol", False)) == RemoveUser("carol")


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"username": "carol"}, "event_type"),
        ({"event_type": "user_created"}, "username"),
        ({"event_type": "user_created", "username": 7}, "username"),
        ({"topic": "Create", "payload": "carol"}, "payload"),
        ({"topic": "Create", "payload": {}}, "user"),
    ],
)
def test_given_a_malformed_user_event_then_the_error_names_the_field(
    payload: dict[str, Any], field: str
) -> None:
    with pytest.raises(MalformedMessage) as raised:
        parse_user_event(encode(payload))
    assert raised.value.field == field


@pytest.mark.parametrize(
    ("pattern", "subject", "matches"),
    [
        ("os.application.*", "os.application.alice", True),
        ("os.application.*", "os.application", False),
        ("os.application.*", "os.application.alice.x", False),
        ("os.>", "os.application.alice", True),
        ("os.users", "os.users", True),
        ("os.users", "os.user", False),
    ],
)
def test_subjects_match_nats_wildcards(pattern: str, subject: str, matches: bool) -> None:
    assert subject_matches(pattern, subject) is matches


# --- the source of an installed app ------------------------------------------------------------


def observed(name: str = "firefox", user: str = "alice", raw: str = "") -> ObserveInstallationState:
    return ObserveInstallationState(
        user, name, "running", datetime(2026, 11, 1, tzinfo=UTC), raw_app_name=raw
    )


def resolve(ledger: Ledger, command: ObserveInstallationState) -> str:
    ledger.catch_up()
    with ledger.read() as conn:
        (resolved,) = with_resolved_sources(conn, ledger.tables, [command])
    assert isinstance(resolved, ObserveInstallationState)
    return resolved.source


def test_given_an_app_listed_by_one_source_then_the_state_gets_that_source(ledger: Ledger) -> None:
    ledger.handler.handle(RegisterUser("alice"), offer("firefox", source="market.olares"))
    assert resolve(ledger, observed("firefox")) == "market.olares"


def test_given_a_clone_then_its_raw_app_name_finds_the_source(ledger: Ledger) -> None:
    ledger.handler.handle(RegisterUser("alice"), offer("jellyfin", source="market.olares"))
    assert resolve(ledger, observed("jellyfinb7e1", raw="jellyfin")) == "market.olares"


def test_given_the_app_in_two_sources_then_no_source_is_guessed(ledger: Ledger) -> None:
    ledger.handler.handle(offer("firefox", source="one"), offer("firefox", source="two"))
    assert resolve(ledger, observed("firefox")) == ""


def test_given_a_known_installation_then_its_own_source_wins(ledger: Ledger) -> None:
    ledger.handler.handle(
        offer("firefox", source="one"),
        offer("firefox", source="two"),
        ObserveInstallationState(
            "alice", "firefox", "installing", datetime(2026, 10, 1, tzinfo=UTC), source="two"
        ),
    )
    assert resolve(ledger, observed("firefox")) == "two"


def test_given_no_listing_or_installation_then_the_source_stays_empty(ledger: Ledger) -> None:
    ledger.handler.handle(offer("firefox", user="bob"))  # another user's listing
    assert resolve(ledger, observed("firefox")) == ""


def test_given_a_source_in_the_command_then_it_is_kept(ledger: Ledger) -> None:
    ledger.handler.handle(offer("firefox", source="one"))
    command = ObserveInstallationState(
        "alice", "firefox", "running", datetime(2026, 11, 1, tzinfo=UTC), source="mine"
    )
    assert resolve(ledger, command) == "mine"


def test_given_an_entrance_sent_without_its_flag_then_the_known_flag_is_kept_before_the_views(
    ledger: Ledger,
) -> None:
    at = datetime(2026, 11, 1, tzinfo=UTC)
    ledger.handler.execute(
        ObserveInstallationState(
            "alice",
            "firefox",
            "running",
            at,
            origin="status-correction",
            entrances=(
                {"name": "main", "state": "running", "invisible": False},
                {"name": "admin", "state": "running", "invisible": True},
            ),
        )
    )
    message = ObserveInstallationState(
        "alice",
        "firefox",
        "stopped",
        at,
        entrances=(
            {"name": "main", "state": "stopped"},
            {"name": "admin", "state": "stopped"},
            {"name": "new", "state": "stopped"},
            {"name": "api", "invisible": False},
        ),
    )
    # the views are not brought up to date: the flags come from the installation's history
    assert apply_commands(ledger, [message]).events == 1
    state = ledger.handler.state_of(message)
    assert state.state == "stopped"
    (completed,) = [
        e
        for e in ledger.application.events.get(message.aggregate_id)
        if isinstance(e, StateObserved) and e.state == "stopped"
    ]
    flags = {e["name"]: e.get("invisible") for e in completed.entrances}
    assert flags == {"main": False, "admin": True, "new": None, "api": False}
