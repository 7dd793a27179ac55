"""Use case: a user's catalog now, at a log position, or at a moment.

Now is read from the views. The past is replayed from the events of the user's streams (see
:mod:`market_ledger.projections.time_travel`) after the nearest checkpoint, so it is exact
whatever the views hold.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from market_ledger.domain.canonical import format_instant
from market_ledger.projections import queries, time_travel
from market_ledger.projections.projector import read_position
from market_ledger.service.use_case_ports import ViewsAndLog


class BeyondTheHead(ValueError):
    """The position asked for is not in the log yet."""

    def __init__(self, position: int, head: int) -> None:
        super().__init__(f"position {position} is beyond the head of the log ({head})")


class NotRegisteredThen(LookupError):
    """The user was not registered at the position asked for."""

    def __init__(self, user: str, position: int) -> None:
        super().__init__(f"{user!r} was not registered at position {position}")


def catalog_at(
    ledger: ViewsAndLog,
    user: str,
    *,
    position: int | None = None,
    moment: datetime | None = None,
    check: Callable[[Connection], Connection] | None = None,
) -> dict[str, Any]:
    """The catalog with the ``position`` it stands for (and ``at``, for a moment).

    ``check`` runs first on the connection the views are read with (the caller's access rule,
    a consistent snapshot) and returns the connection to read on.
    """
    if position is not None and moment is not None:
        raise ValueError("give either a position or a moment, not both")
    with ledger.read() as opened:
        conn = check(opened) if check is not None else opened
        if position is None and moment is None:
            now = read_position(conn, ledger.tables)
            return {**queries.catalog(conn, ledger.tables, user), "position": now}
        known = time_travel.known_streams(conn, ledger.tables, user)
        head = ledger.projector.head()
        if position is not None and position > head:
            raise BeyondTheHead(position, head)
        if position is not None:
            at = position
        else:
            assert moment is not None
            at = time_travel.position_at(ledger.application, moment, head)
        # on the connection ``known`` was read with: the checkpoint is one the views had passed
        start = time_travel.checkpoint_for(conn, ledger.tables, user, at, known)
    replayed = time_travel.replay_user(ledger.application, user, at, known, start)
    if not replayed.registered:
        raise NotRegisteredThen(user, at)
    view = queries.catalog_from_rows(
        user, replayed.hash, replayed.listings, replayed.installations, replayed.sources
    )
    view["position"] = at
    if moment is not None:
        view["at"] = format_instant(moment)
    return view
