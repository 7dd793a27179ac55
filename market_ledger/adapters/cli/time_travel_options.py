"""``--position`` and ``--at`` of ``catalog`` and ``hash``: what a user saw at an earlier
position of the log, or at a moment (the use case the HTTP API's time travel calls)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol, TypeVar

import click

from market_ledger.domain.canonical import parse_instant
from market_ledger.service.catalog_at import BeyondTheHead, NotRegisteredThen, catalog_at
from market_ledger.service.use_case_ports import ViewsAndLog

F = TypeVar("F", bound=Callable[..., Any])


class Travelling(ViewsAndLog, Protocol):
    def catch_up(self) -> int: ...


class Instant(click.ParamType):  # type: ignore[type-arg]
    """An RFC 3339 time, read as the HTTP API reads ``at``."""

    name = "TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, datetime):
            return value
        try:
            return parse_instant(str(value))
        except (ValueError, OverflowError):
            self.fail(f"{value!r} is not an RFC 3339 time, e.g. 2026-11-01T12:00:00Z", param, ctx)


def travel_options(command: F) -> F:
    """Add ``--position`` and ``--at`` to a command (its ``position`` and ``moment``)."""
    command = click.option(
        "--at",
        "moment",
        type=Instant(),
        default=None,
        help="As it was at this moment (RFC 3339), e.g. 2026-11-01T12:00:00Z.",
    )(command)
    return click.option(
        "--position",
        type=click.IntRange(min=0),
        default=None,
        help="As it was when the views stood at this position of the log.",
    )(command)


def travelled(
    ledger: Callable[[], AbstractContextManager[Travelling]],
    user_name: str,
    position: int | None,
    moment: datetime | None,
) -> dict[str, Any] | None:
    """The catalog at ``position`` or ``moment`` (with "position", and "at" for a moment),
    as ``catalog --json`` shows it; None when neither is given (the catalog now)."""
    if position is None and moment is None:
        return None
    if position is not None and moment is not None:
        raise click.UsageError("give either --position or --at, not both")
    with ledger() as opened:
        opened.catch_up()  # the checkpoints and the user's streams as of the head
        try:
            return catalog_at(opened, user_name, position=position, moment=moment)
        except (BeyondTheHead, NotRegisteredThen) as refused:
            raise click.ClickException(str(refused)) from None


def when(view: dict[str, Any]) -> str:
    """What the text output adds to its first line for a catalog in the past."""
    if "position" not in view:
        return ""
    moment = f"  at {view['at']}" if "at" in view else ""
    return f"  position {view['position']}{moment}"
