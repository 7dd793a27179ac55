"""The task routes' request bodies, decoded as the market's clients send them.

Keys match case-insensitively (the last of two spellings wins) and unknown keys are ignored,
as the replaced system's decoder did. Install, clone and upgrade need a JSON object (400
``Invalid request format`` otherwise); cancel and uninstall read whatever body there is and
take a missing or broken one as no options.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import orjson

from market_ledger.service.app_operations import EnvValue

INVALID = "Invalid request format"


class InvalidBody(ValueError):
    """The body cannot be read; ``message`` is the client's."""

    def __init__(self, message: str = INVALID) -> None:
        super().__init__(message)
        self.message = message


@attrs.frozen
class TaskBody:
    source: str = ""
    app_name: str = ""
    version: str = ""
    sync: bool = False
    envs: tuple[EnvValue, ...] = ()
    title: str = ""
    entrances: tuple[tuple[str, str], ...] = ()
    all: bool = False
    delete_data: bool = False


def _folded(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidBody()
    return {str(key).lower(): item for key, item in value.items()}


def _text(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidBody()
    return value


def _flag(body: Mapping[str, Any], key: str, *, strict: bool) -> bool:
    value = body.get(key)
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if strict:
        raise InvalidBody()
    return False


def _list(body: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidBody()
    return [_folded(item) for item in value]


def _env(item: Mapping[str, Any]) -> EnvValue:
    source = item.get("valuefrom")
    value_from = _text(_folded(source), "envname") if source is not None else None
    value = item.get("value")
    if value is not None and not isinstance(value, str):
        raise InvalidBody()
    return EnvValue(_text(item, "envname"), value, value_from or None)


def operation_body(raw: bytes) -> TaskBody:
    """The body of install, clone or upgrade."""
    try:
        decoded = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidBody() from None
    body = _folded(decoded)
    return TaskBody(
        source=_text(body, "source").strip(),
        app_name=_text(body, "app_name").strip(),
        version=_text(body, "version").strip(),
        sync=_flag(body, "sync", strict=True),
        envs=tuple(_env(item) for item in _list(body, "envs")),
        title=_text(body, "title"),
        entrances=tuple(
            (_text(item, "name"), _text(item, "title")) for item in _list(body, "entrances")
        ),
    )


def options_body(raw: bytes) -> TaskBody:
    """The optional body of cancel or uninstall: ``sync``, ``all``, ``deleteData`` and
    ``version``; anything missing or unreadable is false or empty."""
    try:
        body = _folded(orjson.loads(raw)) if raw.strip() else {}
    except (orjson.JSONDecodeError, InvalidBody):
        body = {}
    version = body.get("version")
    return TaskBody(
        sync=_flag(body, "sync", strict=False),
        all=_flag(body, "all", strict=False),
        delete_data=_flag(body, "deletedata", strict=False),
        version=version.strip() if isinstance(version, str) else "",
    )
