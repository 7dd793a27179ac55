"""Data from outside that looks like the store's own envelopes reads back as it was written."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from eventsourcing.persistence import DatetimeAsISO, DecimalAsStr

from market_ledger.adapters.event_store.transcoder import ESCAPED, OrjsonTranscoder
from market_ledger.bootstrap import Ledger
from market_ledger.domain.installation import ObserveInstallationState
from market_ledger.domain.user import RegisterUser
from market_ledger.projections import queries
from market_ledger.projections.rows import loads

LOOKS_LIKE_A_DATETIME = {"_type_": "datetime_iso", "_data_": "2026-11-01T12:00:00+00:00"}
LOOKS_LIKE_NOTHING_KNOWN = {"_type_": "no-such-type", "_data_": [1, 2]}
LOOKS_LIKE_AN_ESCAPE = {"_type_": ESCAPED, "_data_": {"_type_": "decimal_str", "_data_": "1"}}


def transcoder() -> OrjsonTranscoder:
    coder = OrjsonTranscoder()
    coder.register(DatetimeAsISO())
    coder.register(DecimalAsStr())
    return coder


@pytest.mark.parametrize(
    "value",
    [
        {"entrances": [LOOKS_LIKE_A_DATETIME, LOOKS_LIKE_NOTHING_KNOWN]},
        {"top": LOOKS_LIKE_A_DATETIME},
        {"nested": {"deeper": [LOOKS_LIKE_AN_ESCAPE]}},
        {"_type_": "datetime_iso", "_data_": "2026-11-01T12:00:00+00:00"},
        {"text": '{"_type_": "datetime_iso", "_data_": "x"}'},
    ],
    ids=["in-a-list", "top-level", "an-escape-itself", "the-whole-state", "inside-a-string"],
)
def test_given_data_shaped_like_an_envelope_when_stored_then_it_reads_back_unchanged(
    value: dict[str, Any],
) -> None:
    coder = transcoder()
    assert coder.decode(coder.encode(value)) == value


def test_given_real_envelopes_beside_lookalikes_then_both_read_back_as_they_were() -> None:
    coder = transcoder()
    moment = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    value = {"at": moment, "price": Decimal("1.5"), "entrances": [LOOKS_LIKE_A_DATETIME]}
    assert coder.decode(coder.encode(value)) == value


def test_given_no_lookalike_then_the_encoding_is_the_librarys_own() -> None:
    coder = transcoder()
    value = {"at": datetime(2026, 11, 1, 12, 0, tzinfo=UTC), "names": ["a", "b"]}
    assert ESCAPED.encode() not in coder.encode(value)


def test_given_an_app_state_whose_entrances_look_like_envelopes_then_views_apply_and_rebuild(
    ledger: Ledger,
) -> None:
    # given: an entrance an app published with keys the store uses for its own envelopes
    ledger.handler.handle(RegisterUser("alice"))
    observed = ObserveInstallationState(
        "alice",
        "firefox",
        "running",
        datetime(2026, 11, 1, 11, 0, tzinfo=UTC),
        event_id="e1",
        source="market.olares",
        entrances=(LOOKS_LIKE_A_DATETIME, LOOKS_LIKE_NOTHING_KNOWN),
    )
    # when
    ledger.handler.handle(observed)
    ledger.catch_up()
    # then: the views hold it as it came, and a rebuild gives the same views
    installations = ledger.tables.installations
    with ledger.read() as conn:
        stored = conn.execute(
            sa.select(installations.c.entrances).where(installations.c.name == "firefox")
        ).scalar_one()
        history = queries.history(conn, ledger.tables, "alice", "firefox")
    assert loads(stored) == [LOOKS_LIKE_A_DATETIME, LOOKS_LIKE_NOTHING_KNOWN]
    assert [entry["event"] for entry in history] == ["state_observed"]
    assert ledger.rebuild(verify=True).differences == ()
