"""The shared shape checks: every error names the path, nulls are absent, no type coercion."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from market_ledger.adapters.remote.shapes import (
    ShapeError,
    as_integer,
    as_objects,
    expect_array,
    fields,
    instant,
    map_of,
    number,
    string,
    text_field,
    texts_required,
    wrong_shape_is_remote,
)
from market_ledger.service.ports import RemoteError

APP = fields({"version": string, "rank": number, "title": map_of(string)})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"version": 3}, "apps[3].version must be a string, got number"),
        ({"rank": "1"}, "apps[3].rank must be a number, got string"),
        ({"rank": True}, "apps[3].rank must be a number, got boolean"),
        ({"title": {"en": 1}}, "apps[3].title.en must be a string, got number"),
        ("x", "apps[3] must be an object, got string"),
    ],
)
def test_given_a_value_of_the_wrong_type_when_checked_then_the_error_names_its_path(
    value: Any, message: str
) -> None:
    with pytest.raises(ShapeError) as caught:
        APP(value, "apps[3]")

    assert str(caught.value) == message


def test_given_nulls_and_unknown_fields_when_checked_then_they_pass_and_nothing_is_changed() -> (
    None
):
    entry = {"version": None, "rank": 2.5, "title": None, "extra": [1, {"x": 2}]}
    before = dict(entry)

    APP(entry, "apps[0]")

    assert entry == before


def test_given_an_array_with_a_bad_item_then_the_error_names_its_index() -> None:
    with pytest.raises(ShapeError, match=r"^spec\.entrances\[1\] must be an object, got array$"):
        as_objects([{}, []], "spec.entrances")


@pytest.mark.parametrize(
    ("value", "expected"), [(7, 7), (7.0, 7), (7.5, None), ("7", None), (True, None)]
)
def test_an_integer_may_be_an_integral_float_but_never_a_string_or_boolean(
    value: Any, expected: int | None
) -> None:
    assert as_integer(value) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({}, "app_data.source is missing"),
        ({"source": "  "}, "app_data.source is empty"),
        ({"source": 1}, "app_data.source must be a string, got number"),
    ],
)
def test_given_a_required_text_absent_blank_or_not_a_string_then_each_says_which(
    raw: dict[str, Any], message: str
) -> None:
    with pytest.raises(ShapeError) as caught:
        texts_required(raw, ("source",), "app_data")

    assert str(caught.value) == message


def test_given_required_texts_when_read_then_they_are_trimmed() -> None:
    assert texts_required({"a": " x ", "b": "y"}, ("a", "b"), "d") == {"a": "x", "b": "y"}


def test_given_an_absent_text_field_then_it_reads_as_empty() -> None:
    assert text_field({"name": None}, "name", "spec") == ""


@pytest.mark.parametrize(
    ("value", "strict", "message"),
    [
        (5, False, "t must be an RFC 3339 time, got number"),
        ("noon", False, "t must be an RFC 3339 time, got 'noon'"),
        ("2026-01-01", True, "t must be an RFC 3339 time, got '2026-01-01'"),
        ("9999-12-31T23:59:59-01:00", True, "t must be a usable RFC 3339 time: "),
    ],
)
def test_given_an_unusable_time_then_the_error_names_the_field_and_the_value(
    value: Any, strict: bool, message: str
) -> None:
    with pytest.raises(ShapeError) as caught:
        instant(value, "t", strict=strict)

    assert str(caught.value).startswith(message)


def test_given_a_time_without_a_zone_then_only_the_strict_reading_refuses_it() -> None:
    assert instant("2026-01-02T03:04:05", "t") == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    with pytest.raises(ShapeError):
        instant("2026-01-02T03:04:05", "t", strict=True)


def test_given_a_shape_error_inside_a_call_then_it_becomes_the_calls_remote_error() -> None:
    with pytest.raises(RemoteError) as caught, wrong_shape_is_remote("svc", "http://x/y", 200):
        string(1, "data.name")

    assert caught.value.reason == "wrong shape: data.name must be a string, got number"
    assert (caught.value.service, caught.value.url, caught.value.status) == (
        "svc",
        "http://x/y",
        200,
    )


def test_given_an_object_where_an_array_belongs_then_expect_array_names_what() -> None:
    with pytest.raises(RemoteError, match="wrong shape: data must be an array, got object"):
        expect_array({}, "svc", "http://x/y", "data")
