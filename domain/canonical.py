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


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 kept as is."""
    return _ENCODER.encode(value)


def digest_of(value: Any) -> str:
    """The hex sha256 of the canonical encoding of ``value``."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


INSTANT_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


@lru_cache(maxsize=4096)  # the events of one transaction share their timestamp
def format_instant(moment: datetime) -> str:
    """A fixed-width UTC timestamp (``INSTANT_FORMAT``), so that string order is time order."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: instants must carry a timezone")
    if moment.utcoffset():
        moment = moment.astimezone(UTC)
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_instant(text: str) -> datetime:
    """Parse RFC 3339 leniently: any number of fraction digits, ``Z`` or an offset.

    The system this replaces parsed state timestamps with a layout that needed exactly nine
    fraction digits, so most of its ordering checks silently did nothing.
    """
    value = text.strip()
    if not value:
        raise ValueError("empty timestamp")
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
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
