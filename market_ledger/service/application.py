"""The event store, as the eventsourcing library's application object.

Which persistence module it uses (SQLite or PostgreSQL) is entirely a matter of the ``env``
the composition root passes in; the domain does not know.
"""

from __future__ import annotations

from typing import ClassVar
from uuid import UUID

from eventsourcing.application import Application

# Import every aggregate so that all event topics are registered before any replay.
from market_ledger.domain import (  # noqa: F401
    feed_cursor,
    installation,
    listing,
    manifest_record,
    market_source,
    parked_message,
    task_events,
    user,
)


class LedgerApplication(Application[UUID]):
    name = "MarketLedger"
    env: ClassVar[dict[str, str]] = {
        # Recently used aggregate states stay in memory and are fast-forwarded on load.
        "AGGREGATE_CACHE_MAXSIZE": "20000",
        "DEEPCOPY_FROM_AGGREGATE_CACHE": "n",
    }
