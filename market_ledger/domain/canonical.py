"""Canonical JSON encoding and digests.

Every digest in the ledger (manifest digests, extras digests, user hashes) is a sha256 over
this one encoding, so equal content always gives an equal digest, whatever the key order of
the input or the process that computed it.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
#: the same encoding, refusing NaN and infinities, which JSON readers (and the views') refuse
_FINITE = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def canonical_json(value: Any, *, finite: bool = False) -> str:
    """Sorted keys, no whitespace, UTF-8 kept as is; ``finite``: ValueError on NaN."""
    return (_FINITE if finite else _ENCODER).encode(value)


def digest_of(value: Any) -> str:
    """The hex sha256 of the canonical encoding of ``value``."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


INSTANT_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


class InvalidInstant(ValueError):
    """A timestamp that cannot be used; the message names the value and why."""

    def __init__(self, value: object, reason: str) -> None:
        super().__init__(f"{value!r} is not a usable time: {reason}")
        self.value = value
        self.reason = reason


def _in_utc(moment: datetime, shown: object) -> datetime:
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        # 9999-12-31T23:59:59-01:00 is a valid RFC 3339 time that datetime cannot hold in UTC
        raise InvalidInstant(shown, "outside the years 1 to 9999 once in UTC") from None


@lru_cache(maxsize=4096)  # the events of one transaction share their timestamp
def format_instant(moment: datetime) -> str:
    """A fixed-width UTC timestamp (``INSTANT_FORMAT``), so that string order is time order."""
    if moment.tzinfo is None:
        raise InvalidInstant(moment, "a naive datetime: instants must carry a timezone")
    if moment.utcoffset():
        moment = _in_utc(moment, moment)
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_instant(text: str) -> datetime:
    """Parse RFC 3339 leniently: any number of fraction digits, ``Z`` or an offset.

    Anything that is not such a time, or is one outside what a UTC datetime can hold, raises
    :class:`InvalidInstant` naming the value.

    The system this replaces parsed state timestamps with a layout that needed exactly nine
    fraction digits, so most of its ordering checks silently did nothing.
    """
    value = text.strip()
    if not value:
        raise InvalidInstant(text, "empty")
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    date_part, sep, rest = value.partition("T")
    if sep and "." in rest:
        clock, _, tail = rest.partition(".")
        digits = ""
        for ch in tail:
            if ch.isdigit():
                digits += ch
            else:
                break
        zone = tail[len(digits) :]
        value = f"{date_part}T{clock}.{(digits + '000000')[:6]}{zone}"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as error:
        raise InvalidInstant(text, str(error)) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return _in_utc(parsed, text)
