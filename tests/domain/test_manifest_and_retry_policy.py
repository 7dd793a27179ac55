"""The canonical app key, manifest validation and the retry policy."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from market_ledger.domain.canonical import format_instant, parse_instant
from market_ledger.domain.events import EVENT_CLASSES, LedgerEvent
from market_ledger.domain.manifest import InvalidManifest, Manifest
from market_ledger.domain.rendering import CHANGES, compact_rendered, expand_rendered
from market_ledger.domain.retry_policy import RetryPolicy
from market_ledger.service import application  # noqa: F401  (registers every event)


@pytest.mark.parametrize(
    ("entry", "key"),
    [
        ({"id": "a", "appID": "b", "name": "c", "version": "1"}, "a"),
        ({"appID": "b", "name": "c", "version": "1"}, "b"),
        ({"appID": "0", "name": "c", "version": "1"}, "c"),
        ({"name": "c", "version": "1"}, "c"),
    ],
)
def test_the_app_key_is_id_then_app_id_then_name(entry: dict[str, str], key: str) -> None:
    assert Manifest.from_entry(entry).app_id == key


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ([], "must be an object"),
        ({"version": "1"}, "none of 'id', 'appID' or 'name'"),
        ({"id": "a"}, "'a' has no 'version'"),
        ({"id": {"x": 1}, "version": "1"}, "'id' must be a string"),
        ({"id": "a", "version": "1", "appLabels": "suspend"}, "'appLabels' must be a list"),
    ],
)
def test_a_broken_entry_is_refused_with_a_message_naming_the_field(
    entry: object, message: str
) -> None:
    with pytest.raises(InvalidManifest, match=message):
        Manifest.from_entry(entry)


def test_the_digest_ignores_key_order_and_labels_but_not_content() -> None:
    a = Manifest.from_entry({"id": "a", "version": "1", "title": "x", "appLabels": ["new"]})
    b = Manifest.from_entry({"title": "x", "version": "1", "id": "a"})
    c = Manifest.from_entry({"id": "a", "version": "1", "title": "y"})
    assert a.digest == b.digest != c.digest


def test_retry_delays_grow_stay_within_bounds_and_are_reproducible() -> None:
    policy = RetryPolicy(base_seconds=1.0, max_seconds=30.0, max_attempts=10)
    for attempt in range(1, 10):
        ceiling = min(30.0, 2 ** (attempt - 1))
        delay = policy.delay(attempt, "listing-1")
        assert timedelta(seconds=ceiling / 2) <= delay <= timedelta(seconds=ceiling)
        assert delay == policy.delay(attempt, "listing-1")
    spread = {policy.delay(5, f"listing-{i}") for i in range(20)}
    assert len(spread) > 10  # jitter spreads simultaneous failures


def test_a_retry_policy_with_impossible_bounds_is_refused() -> None:
    with pytest.raises(ValueError, match="below the base"):
        RetryPolicy(base_seconds=10, max_seconds=5)
    with pytest.raises(ValueError, match="at least 1"):
        RetryPolicy(max_attempts=0)


@pytest.mark.parametrize(
    "text",
    [
        "2026-06-18T03:16:48Z",
        "2026-06-18T03:16:48.5Z",
        "2026-06-18T03:16:48.123456789Z",
        "2026-06-18T05:16:48.1+02:00",
    ],
)
def test_state_timestamps_parse_with_any_number_of_fraction_digits(text: str) -> None:
    parsed = parse_instant(text)
    assert format_instant(parsed).startswith("2026-06-18T03:16:48")


def test_a_render_stores_entry_copies_once_and_reads_back_whole() -> None:
    entry = {"id": "a", "version": "1", "title": {"en-US": "A"}}
    app_data = {
        "raw_data": entry,
        "app_info": {"app_entry": entry, "image_analysis": {}},
        "rendered_package": "/r/a",
    }
    compact = compact_rendered(app_data, entry)
    assert "raw_data" not in compact and "app_entry" not in compact["app_info"]
    assert expand_rendered(compact, entry) == app_data
    changed = {**app_data, "raw_data": {**entry, "versionHistory": []}}
    compact_changed = compact_rendered(changed, entry)
    assert compact_changed[CHANGES] == {"raw_data": {"set": {"versionHistory": []}}}
    assert expand_rendered(compact_changed, entry) == changed


def test_every_stored_event_names_an_explicit_versioned_topic() -> None:
    def concrete(cls: type) -> list[type]:
        found = []
        for sub in cls.__subclasses__():
            found += concrete(sub)
            if "TOPIC" in sub.__dict__:
                found.append(sub)
        return found

    classes = concrete(LedgerEvent)
    assert len(classes) >= 20
    for cls in classes:
        assert re.fullmatch(r"[a-z_]+\.[A-Za-z]+\.v\d+", cls.TOPIC), cls
        assert EVENT_CLASSES[cls.TOPIC] is cls
        assert cls.HISTORY_NAME, cls
    assert len({cls.TOPIC for cls in classes}) == len(classes)
