"""Use case: retry a parked render (``market-ledger retry`` and ``POST .../ledger/retry``).

The listing is named by user and app; the source may be left out while the app is parked in
one source only. The listing itself decides whether the retry is accepted.
"""

from __future__ import annotations

import attrs

from market_ledger.domain.listing import RetryParked
from market_ledger.projections import queries
from market_ledger.service.use_case_ports import ViewsAndCommands


class NotParked(LookupError):
    """No parked render matches the user, app (and source)."""

    def __init__(self, user: str, app_id: str) -> None:
        super().__init__(f"{app_id!r} is not parked for {user!r}")


class ParkedInSeveral(ValueError):
    """The app is parked in more than one source: the caller must name one."""

    def __init__(self, app_id: str, sources: list[str]) -> None:
        super().__init__(f"{app_id!r} is parked in {', '.join(sources)}")
        self.app_id = app_id
        self.sources = sources


@attrs.frozen
class RetriedRender:
    user: str
    source: str
    app_id: str
    #: the log position of the retry's event (None when it caused none)
    position: int | None


def retry_parked_render(
    ledger: ViewsAndCommands,
    user: str,
    app_id: str,
    source: str | None = None,
    *,
    requested_by: str | None = None,
) -> RetriedRender:
    """Put a parked render back to pending; ``CommandRejected`` if the listing refuses."""
    with ledger.read() as conn:
        parked = [
            p
            for p in queries.parked(conn, ledger.tables)
            if p["user"] == user
            and p["app_id"] == app_id
            and (source is None or p["source"] == source)
        ]
    if not parked:
        raise NotParked(user, app_id)
    if len(parked) > 1:
        raise ParkedInSeveral(app_id, [p["source"] for p in parked])
    chosen = parked[0]["source"]
    command = (
        RetryParked(user, chosen, app_id)
        if requested_by is None
        else RetryParked(user, chosen, app_id, requested_by=requested_by)
    )
    outcome = ledger.handler.execute(command)
    return RetriedRender(user, chosen, app_id, outcome.position)
