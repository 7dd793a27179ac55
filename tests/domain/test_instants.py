"""Any unusable timestamp is one clear error naming the value, wherever it is read."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from market_ledger.adapters.market.catalog import parse_catalog_document
from market_ledger.adapters.nats.messages import MalformedMessage, parse_app_state
from market_ledger.domain.canonical import InvalidInstant, format_instant, parse_instant
from market_ledger.service.ports import RemoteError

#: valid RFC 3339, but outside what a UTC datetime can hold
OVERFLOWING = ("9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00")


@pytest.mark.parametrize("text", [*OVERFLOWING, "", "noon", "2026-13-01T00:00:00Z"])
def test_given_an_unusable_timestamp_when_parsed_then_one_error_names_the_value(
    text: str,
) -> None:
    with pytest.raises(InvalidInstant) as error:
        parse_instant(text)

    assert isinstance(error.value, ValueError) and repr(text) in str(error.value)


def test_given_the_extreme_utc_times_then_they_parse_and_format_at_fixed_width() -> None:
    latest = parse_instant("9999-12-31T23:59:59.999999Z")
    earliest = parse_instant("0001-01-01T00:00:00Z")

    assert latest == datetime.max.replace(tzinfo=UTC)
    assert [format_instant(latest), format_instant(earliest)] == [
        "9999-12-31T23:59:59.999999Z",
        "0001-01-01T00:00:00.000000Z",
    ]


@pytest.mark.parametrize("create_time", OVERFLOWING)
def test_given_an_app_state_with_an_overflowing_create_time_then_it_is_malformed_with_a_reason(
    create_time: str,
) -> None:
    data = {"user": "alice", "name": "firefox", "state": "running", "createTime": create_time}

    with pytest.raises(MalformedMessage) as error:
        parse_app_state(json.dumps(data).encode())

    assert error.value.field == "createTime"
    assert create_time in error.value.reason and "years 1 to 9999" in error.value.reason


def test_given_a_catalog_whose_last_updated_overflows_then_the_fetch_fails_naming_the_field() -> (
    None
):
    document = {
        "version": "1",
        "hash": "h",
        "last_updated": OVERFLOWING[0],
        "data": {"apps": {"firefox": {"id": "firefox", "version": "1.0.0"}}},
    }

    with pytest.raises(RemoteError, match="last_updated must be a usable RFC 3339 time"):
        parse_catalog_document(document, "market", "https://m")
