"""Values the views cannot hold are refused by the domain, whatever the entry point."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from market_ledger.adapters.http_api.common import BadRequest, name_value
from market_ledger.adapters.market.catalog import parse_catalog_document
from market_ledger.bootstrap import Ledger
from market_ledger.domain.admission import NAME_FIELDS, check_command
from market_ledger.domain.decider import Command
from market_ledger.domain.feed_cursor import ConsumeFeed
from market_ledger.domain.installation import ObserveInstallationState, RemoveInstallation
from market_ledger.domain.limits import DIGEST_LENGTH, MAX_NAME, MAX_NAME_BYTES, LimitExceeded
from market_ledger.domain.listing import OfferApp, RenderFailed
from market_ledger.domain.manifest import InvalidManifest, Manifest
from market_ledger.domain.manifest_record import ManifestRecorded
from market_ledger.domain.market_source import ConfigureSource, ObserveCatalog
from market_ledger.domain.user import RegisterUser
from market_ledger.projections import queries
from market_ledger.projections.schema import define_tables
from market_ledger.service.handler import DECIDERS
from tests.conftest import FakeClock
from tests.support.builders import SOURCE, fail, manifest, offer

TOO_LONG = "a" * (MAX_NAME + 1)
#: MAX_NAME characters, but 4 bytes each: more than the views' indexes take
TOO_WIDE = "🎉" * MAX_NAME
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("command", "field", "limit"),
    [
        (RegisterUser(TOO_LONG), "name", "255 characters"),
        (RegisterUser(TOO_WIDE), "name", f"{MAX_NAME_BYTES} bytes"),
        (ConfigureSource(TOO_LONG, "remote", "https://m"), "source_id", "255 characters"),
        (offer(user=TOO_LONG), "user", "255 characters"),
        (offer(source=TOO_WIDE), "source", f"{MAX_NAME_BYTES} bytes"),
        (ObserveInstallationState("alice", TOO_LONG, "running", T0), "name", "255 characters"),
        (ObserveInstallationState(TOO_LONG, "firefox", "running", T0), "user", "255"),
        (
            ObserveInstallationState("alice", "firefox", "running", T0, source=TOO_LONG),
            "source",
            "255 characters",
        ),
        (RemoveInstallation("alice", TOO_LONG, T0), "name", "255 characters"),
        (ConsumeFeed(TOO_LONG, 1), "feed", "255 characters"),
    ],
)
def test_given_a_name_longer_than_the_views_hold_when_handled_then_it_is_refused_naming_field(
    ledger: Ledger, command: Command, field: str, limit: str
) -> None:
    ledger.handler.handle(RegisterUser("alice"), ConfigureSource(SOURCE, "remote", "https://m"))

    outcome = ledger.handler.handle(command)

    # an offer's content is recorded on its own, under its digest: only the offer is refused
    assert [e for e in outcome.events if not isinstance(e, ManifestRecorded)] == []
    [rejection] = outcome.rejections
    assert f"field {field!r} is longer than" in rejection.reason and limit in rejection.reason
    ledger.catch_up()
    assert ledger.projector.position() == ledger.projector.head()


@pytest.mark.parametrize(
    ("command", "field", "problem"),
    [
        (
            ObserveInstallationState("alice", "firefox", "running", T0, title="a\x00b"),
            "title",
            "NUL",
        ),
        (RegisterUser("alice", zone="\ud800"), "zone", "lone surrogate"),
        (ConfigureSource("m", "remote", "https://m", priority=2**31), "priority", "outside"),
        (ObserveCatalog(SOURCE, "h", "v", -1), "app_count", "outside"),
        (ConsumeFeed("chart-repo", 2**63), "up_to_id", "outside"),
        (
            ObserveInstallationState(
                "alice", "firefox", "running", datetime(2026, 11, 1)
            ),  # no timezone
            "observed_at",
            "no timezone",
        ),
        (
            RemoveInstallation(
                "alice", "firefox", datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1)))
            ),
            "observed_at",
            "years 1 to 9999",
        ),
    ],
)
def test_given_a_value_no_column_can_hold_when_checked_then_it_is_refused_naming_the_field(
    command: Command, field: str, problem: str
) -> None:
    with pytest.raises(LimitExceeded) as refused:
        check_command(command)

    assert refused.value.field == field and problem in refused.value.reason


def test_given_the_longest_names_in_three_byte_characters_then_they_are_accepted(
    ledger: Ledger,
) -> None:
    name = "用" * MAX_NAME  # exactly MAX_NAME_BYTES
    ledger.handler.handle(RegisterUser(name), ConfigureSource(name, "remote", "https://m"))

    outcome = ledger.handler.handle(OfferApp(name, name, manifest(name)))

    assert outcome.rejections == () and len(outcome.events) == 2
    ledger.catch_up()
    with ledger.read() as conn:
        apps = queries.catalog(conn, ledger.tables, name)["sources"][name]["apps"]
    assert [app["app_id"] for app in apps] == [name]


def test_given_nul_in_a_render_failure_reason_then_the_failure_is_kept_with_it_replaced(
    ledger: Ledger,
) -> None:
    offered = offer()
    ledger.handler.handle(RegisterUser("alice"), ConfigureSource(SOURCE, "remote", "https://m"))
    ledger.handler.handle(offered)

    outcome = ledger.handler.handle(fail(offered, reason="HTTP 500: \x00\x00 body"))

    [failed] = [e for e in outcome.events if isinstance(e, RenderFailed)]
    assert failed.reason == "HTTP 500: \ufffd\ufffd body"
    ledger.catch_up()
    with ledger.read() as conn:
        [parked_or_failed] = queries.catalog(conn, ledger.tables, "alice")["sources"][SOURCE][
            "apps"
        ]
    assert parked_or_failed["status"] == "failed"


def test_given_a_catalog_entry_key_too_long_then_it_is_refused_by_the_domain() -> None:
    with pytest.raises(InvalidManifest, match=r"app key \('id'\) is longer than 255"):
        Manifest.from_entry({"id": TOO_LONG, "version": "1.0.0"})


def test_given_a_catalog_with_one_entry_id_too_long_then_that_entry_is_skipped_and_reported(
    clock: FakeClock,
) -> None:
    document = {
        "version": "1",
        "hash": "h",
        "data": {
            "apps": {
                "firefox": {"id": "firefox", "name": "firefox", "version": "1.0.0"},
                "long": {"id": TOO_LONG, "name": "long", "version": "1.0.0"},
                "wide": {"id": "wide", "name": "wide", "version": "1.0.0", "title": "\ud800"},
                "nan": {"id": "nan", "name": "nan", "version": "1.0.0", "price": float("nan")},
            }
        },
    }

    catalog = parse_catalog_document(document, "market", "https://m")

    assert list(catalog.apps) == ["firefox"]
    assert "longer than 255 characters" in catalog.rejected["long"]
    assert "lone surrogate" in catalog.rejected["wide"]
    assert "NaN or infinity" in catalog.rejected["nan"]


def test_given_the_http_layer_then_it_refuses_names_by_the_domains_limits() -> None:
    assert name_value("用" * MAX_NAME, "parameter 'app'") == "用" * MAX_NAME
    with pytest.raises(BadRequest, match="longer than 255 characters"):
        name_value(TOO_LONG, "parameter 'app'")
    with pytest.raises(BadRequest, match=f"longer than {MAX_NAME_BYTES} bytes"):
        name_value(TOO_WIDE, "parameter 'app'")


def test_every_command_type_says_which_of_its_fields_are_names() -> None:
    assert set(DECIDERS) <= set(NAME_FIELDS)


#: bounded columns that are not names: values of fixed width the ledger makes itself
FIXED_WIDTH = {
    "projector_position.name": 64,  # the projector's own name for its position
    "listings.listing_id": 32,  # stream ids in hex
    "installations.installation_id": 32,
    "listings.status": 16,  # a ListingStatus
    "history.kind": 16,  # "listing" or "installation"
    "history.event": 64,  # an event's HISTORY_NAME (see test_extreme_values)
    # instants, 27 characters (market_ledger.domain.canonical.format_instant)
    "listings.retry_at": 32,
    "listings.updated_at": 32,
    "installations.observed_at": 32,
    "history.at": 32,
    "manifests.digest": DIGEST_LENGTH,
    # a digest in hex (market_ledger.domain.parked_message.message_key)
    "parked_messages.message_id": 64,
    "parked_messages.status": 16,  # a ParkedStatus
    "parked_messages.kind": 16,  # refused longer by the ParkedMessage decider
    "parked_messages.failure": 16,  # one of FAILURES
    "parked_messages.encoding": 16,  # TEXT or BASE64
    "parked_messages.parked_at": 32,
    "parked_messages.updated_at": 32,
    # a task's wire id (refused unless YYYYMMDDhhmmss-xxxxxx), kind, statuses and instants
    "tasks.task_id": 32,
    "tasks.kind": 16,
    "tasks.state": 24,
    "tasks.status": 16,
    "tasks.outcome": 16,
    "tasks.created_at": 32,
    "tasks.started_at": 32,
    "tasks.accepted_at": 32,
    "tasks.completed_at": 32,
    "last_installed.kind": 16,
    "last_installed.task_id": 32,
    "last_installed.at": 32,
    "checkpoints.kind": 16,  # listings, installations, users or sources
}


def test_every_bounded_column_of_the_views_is_a_name_or_a_value_of_fixed_width() -> None:
    bounded = {
        f"{table.name}.{column.name}": column.type.length
        for table in define_tables().all
        for column in table.columns
        if isinstance(column.type, sa.String) and column.type.length is not None
    }

    names = {column for column, length in bounded.items() if column not in FIXED_WIDTH}

    assert {column: bounded[column] for column in FIXED_WIDTH} == FIXED_WIDTH
    assert {bounded[column] for column in names} == {MAX_NAME}
    assert names == {
        "users.user_name",
        "sources.source_id",
        "listings.user_name",
        "listings.source",
        "listings.app_id",
        "installations.user_name",
        "installations.name",
        "history.user_name",
        "history.source",
        "history.app",
        "feed_cursors.feed",
        "manifests.app_id",
        "tasks.user_name",
        "tasks.app_name",
        "tasks.source",
        "last_installed.user_name",
        "last_installed.app_name",
        "last_installed.source",
        # a user name, a source id or a stream id in hex; the row's user name
        "checkpoints.row_key",
        "checkpoints.user_name",
    }
