"""What a value may be for the views to hold it: the one home of the ledger's limits.

The log accepts anything the event store can encode, but the views cannot: a name is a key
column of bounded width, indexed on PostgreSQL (whose btree index takes at most 2704 bytes
per entry), a count is a 32-bit column, and no text column of PostgreSQL can hold a NUL
character. An event the views cannot hold, once appended, stops the projector at that
position for good, so the domain refuses such a command before anything is written. The
views' schema and the HTTP layer read their limits from here, so the rule has one home.

Keys are refused, never shortened: two different long names cut to one would be one stream.
Diagnostic text (why a render failed, why an app was delisted) is not a key: it is kept,
with what the views cannot hold replaced (:func:`printable`), since refusing it would lose
the fact it reports.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from market_ledger.domain.decider import CommandRejected

#: longest user name, app id or name, source id or feed name, in characters (the width of
#: the views' key columns)
MAX_NAME = 255
#: longest such name in UTF-8 bytes: any 255 characters of the Basic Multilingual Plane fit,
#: and the three names of a listing's unique index stay within PostgreSQL's 2704 bytes
MAX_NAME_BYTES = 3 * MAX_NAME
#: a content digest: sha256 in hex
DIGEST_LENGTH = 64
#: the range of the views' integer columns (source priority, catalog app count)
INT32 = (-(2**31), 2**31 - 1)
#: the range of the views' big integer columns (feed positions)
INT64 = (-(2**63), 2**63 - 1)
#: how far ahead of the receiving clock a reported time may be and still be believed
MAX_CLOCK_AHEAD = timedelta(days=1)
#: what replaces a character the views cannot hold in diagnostic text
REPLACEMENT = "\ufffd"


class LimitExceeded(CommandRejected):
    """A command carries a value the views cannot hold; the reason names field and limit."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"field {field!r} {reason}")
        self.field = field


# --- single values ----------------------------------------------------------------------------


_NUL = "contains a NUL character, which no text column can hold"
_SURROGATE = "is not valid Unicode (it holds a lone surrogate)"


def text_problem(value: str) -> str | None:
    """Why the views cannot store ``value`` as text, or None when they can."""
    if "\x00" in value:
        return _NUL
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return _SURROGATE
    return None


def name_problem(value: str) -> str | None:
    """Why ``value`` cannot be a name (a key of the views), or None when it can."""
    if len(value) > MAX_NAME:
        return f"is longer than {MAX_NAME} characters ({len(value)} given)"
    if "\x00" in value:
        return _NUL
    if value.isascii():
        return None
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        return _SURROGATE
    if size > MAX_NAME_BYTES:
        return f"is longer than {MAX_NAME_BYTES} bytes in UTF-8 ({size} given)"
    return None


def printable(value: str) -> str:
    """Diagnostic text as the views can hold it: NUL and lone surrogates replaced."""
    if text_problem(value) is None:
        return value
    return "".join(
        REPLACEMENT if ch == "\x00" or "\ud800" <= ch <= "\udfff" else ch for ch in value
    )


def check_name(field: str, value: str) -> None:
    problem = name_problem(value)
    if problem is not None:
        raise LimitExceeded(field, problem)


def check_text(field: str, value: str) -> None:
    problem = text_problem(value)
    if problem is not None:
        raise LimitExceeded(field, problem)


def check_integer(field: str, value: int, bounds: tuple[int, int]) -> None:
    low, high = bounds
    if not low <= value <= high:
        raise LimitExceeded(field, f"is outside {low}..{high} ({value} given)")


def check_instant(field: str, value: datetime) -> None:
    """A time the views can show: with a timezone, and a UTC time within years 1 to 9999."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise LimitExceeded(field, f"has no timezone ({value.isoformat()})")
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise LimitExceeded(
            field, f"is outside the years 1 to 9999 in UTC ({value.isoformat()})"
        ) from None


def latest_believable(received_at: datetime) -> datetime:
    """The latest time a report received at ``received_at`` may claim and be believed."""
    try:
        return received_at + MAX_CLOCK_AHEAD
    except OverflowError:
        return datetime.max.replace(tzinfo=UTC)
