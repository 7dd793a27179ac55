"""The one set of JSON shape checks for what the remote systems answer.

Every client reads decoded JSON (dicts, lists, strings, numbers) through these functions, so a
payload of the wrong shape fails the same way everywhere: a :class:`ShapeError` whose message
names the path of the value and what was wrong with it, e.g.
``data.tops[2].rank must be a number, got string``. The clients turn it into a
``RemoteError`` ("wrong shape: ...") or into a skipped entry with that reason.

Three rules hold throughout, because the remote systems rely on them:

- a ``null`` field is an absent one (the remotes write both);
- a check never copies or trims the value it looks at: what is stored is the payload as given,
  unknown fields included;
- no coercion between JSON types (a number is never read as a string or the other way round),
  except that an integer may be written as an integral float (``3.0``), as JSON allows.

Why these are written by hand rather than declared with a schema library is in the README
("Choices: checking remote payloads").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from market_ledger.domain.canonical import InvalidInstant, parse_instant
from market_ledger.service.ports import RemoteError

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


class ShapeError(ValueError):
    """A decoded value that is not what the remote system promised; the message names it."""


#: a check of one value at a path; ``None`` (absent) always passes
Check = Callable[[Any, str], None]


def json_type(value: object) -> str:
    """The JSON name of a decoded value's type, for "wrong shape" reasons."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _wrong(where: str, expected: str, value: object) -> ShapeError:
    return ShapeError(f"{where} must be {expected}, got {json_type(value)}")


# --- one value, present: the value as its type, or a ShapeError --------------------------------


def as_string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise _wrong(where, "a string", value)
    return value


def as_object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _wrong(where, "an object", value)
    return value


def as_array(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise _wrong(where, "an array", value)
    return value


def as_objects(value: Any, where: str) -> list[dict[str, Any]]:
    """An array whose every item is an object; a bad item is named by its index."""
    items = as_array(value, where)
    for index, item in enumerate(items):
        as_object(item, f"{where}[{index}]")
    return items


def as_integer(value: Any) -> int | None:
    """An integer, also when written as an integral float; ``None`` for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def required_text(value: Any, where: str) -> str:
    """A string with something in it; absent, another type or blank each say so."""
    if value is None:
        raise ShapeError(f"{where} is missing")
    text = as_string(value, where)
    if not text.strip():
        raise ShapeError(f"{where} is empty")
    return text


def instant(value: Any, where: str, *, strict: bool = False) -> datetime | None:
    """A time string, parsed; ``None`` when absent.

    ``strict`` demands the RFC 3339 layout exactly (a zone, a ``T``); otherwise the domain's
    lenient reading applies. Either way an unparsable or out-of-range time is an error.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise _wrong(where, "an RFC 3339 time", value)
    layout_ok = _RFC3339.match(value.strip()) is not None
    if strict and not layout_ok:
        raise ShapeError(f"{where} must be an RFC 3339 time, got {value!r}")
    try:
        return parse_instant(value)
    except InvalidInstant as error:
        if layout_ok:
            raise ShapeError(f"{where} must be a usable RFC 3339 time: {error}") from None
        raise ShapeError(f"{where} must be an RFC 3339 time, got {value!r}") from None


# --- checks that leave the value as it is (None passes), composable into declarations ----------


def string(value: Any, where: str) -> None:
    if value is not None:
        as_string(value, where)


def number(value: Any, where: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise _wrong(where, "a number", value)


def boolean(value: Any, where: str) -> None:
    if value is not None and not isinstance(value, bool):
        raise _wrong(where, "a boolean", value)


def map_of(check: Check) -> Check:
    """An object whose every value passes ``check`` (named ``where.key``)."""

    def checked(value: Any, where: str) -> None:
        if value is None:
            return
        for key, item in as_object(value, where).items():
            check(item, f"{where}.{key}")

    return checked


def fields(spec: Mapping[str, Check]) -> Check:
    """An object whose listed fields pass their checks; other fields are not looked at."""

    def checked(value: Any, where: str) -> None:
        if value is None:
            return
        found = as_object(value, where)
        for field, check in spec.items():
            check(found.get(field), f"{where}.{field}")

    return checked


# --- one field of an object, absent meaning the type's empty value -----------------------------


def _path(where: str, field: str) -> str:
    return f"{where}.{field}" if where else field


def text_field(raw: Mapping[str, Any], field: str, where: str, *, required: bool = False) -> str:
    """``raw[field]`` as a string, ``""`` when absent; ``required`` refuses absent and blank."""
    value = raw.get(field)
    if required:
        return required_text(value, _path(where, field))
    return "" if value is None else as_string(value, _path(where, field))


def flag_field(raw: Mapping[str, Any], field: str, where: str) -> bool:
    value = raw.get(field)
    boolean(value, _path(where, field))
    return bool(value)


def time_field(raw: Mapping[str, Any], field: str, where: str) -> datetime | None:
    """A time, ``None`` when absent or empty (app-service writes ``""`` for "not yet")."""
    value = raw.get(field)
    return None if value == "" else instant(value, _path(where, field))


def object_field(raw: Mapping[str, Any], field: str, where: str) -> dict[str, Any]:
    value = raw.get(field)
    return {} if value is None else as_object(value, _path(where, field))


def objects_field(raw: Mapping[str, Any], field: str, where: str) -> list[dict[str, Any]]:
    value = raw.get(field)
    return [] if value is None else as_objects(value, _path(where, field))


def texts_required(raw: Any, names: tuple[str, ...], where: str) -> dict[str, str]:
    """The named fields of an object, each a non-blank string, trimmed."""
    found = as_object(raw, where)
    return {name: text_field(found, name, where, required=True).strip() for name in names}


def text_or_empty(raw: Mapping[str, Any], field: str) -> str:
    """A field read for display only: anything but a string counts as absent."""
    value = raw.get(field)
    return value if isinstance(value, str) else ""


# --- as a remote failure -----------------------------------------------------------------------


@contextmanager
def wrong_shape_is_remote(service: str, url: str, status: int | None = None) -> Iterator[None]:
    """Inside, a :class:`ShapeError` becomes the call's ``RemoteError`` ("wrong shape: ...")."""
    try:
        yield
    except ShapeError as error:
        raise RemoteError(service, url, f"wrong shape: {error}", status=status) from error


def expect_object(value: Any, service: str, url: str, what: str) -> dict[str, Any]:
    """``value`` as a JSON object, else the call's "wrong shape" error naming ``what``."""
    with wrong_shape_is_remote(service, url):
        return as_object(value, what)


def expect_array(value: Any, service: str, url: str, what: str) -> list[Any]:
    """``value`` as a JSON array, else the call's "wrong shape" error naming ``what``."""
    with wrong_shape_is_remote(service, url):
        return as_array(value, what)
