"""The check that a listing's view row says what its aggregate says, shared by view tests."""

from __future__ import annotations

from uuid import UUID

import sqlalchemy as sa

from market_ledger.bootstrap import Ledger
from market_ledger.domain.listing import LISTING
from market_ledger.projections.rows import loads


def assert_listing_rows_agree_with_the_domain(ledger: Ledger) -> None:
    """The views follow a listing's life through the domain's own evolve; they must say what
    the aggregate itself says."""
    with ledger.read() as conn:
        rows = [dict(r) for r in conn.execute(sa.select(ledger.tables.listings)).mappings()]
    for row in rows:
        state = ledger.handler.load(UUID(row["listing_id"]), LISTING)
        assert (
            row["status"],
            row["pending_version"],
            row["pending_digest"],
            row["latest_version"],
            row["latest_digest"],
            row["attempts"],
            row["delisted"],
            row["withdrawn"],
            tuple(loads(row["labels"])),
        ) == (
            state.status.value,
            state.pending_version,
            state.pending_digest,
            state.latest_version,
            state.latest_digest,
            state.attempts,
            state.delisted,
            state.withdrawn,
            state.labels,
        ), row["listing_id"]
