"""The parked messages view: its rows, the projector's part in writing them, its reads."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from market_ledger.domain import parked_message as pm
from market_ledger.domain.canonical import format_instant
from market_ledger.domain.events import LedgerEvent
from market_ledger.projections.rows import Row, dumps, loads
from market_ledger.projections.schema import ViewTables
from market_ledger.projections.store import load_rows, upsert_rows


def parked_message_row(row: Row | None, event: pm.ParkedMessageEvent, position: int) -> Row:
    at = format_instant(event.timestamp)
    if isinstance(event, pm.MessageParked):
        return {
            "message_id": event.message_id,
            "status": pm.ParkedStatus.PARKED,
            "kind": event.kind,
            "failure": event.failure,
            "subject": event.subject,
            "payload": event.payload,
            "encoding": event.encoding,
            "truncated": event.truncated,
            "headers": dumps([[str(n), str(v)] for n, v in event.headers]),
            "reason": event.reason,
            "deliveries": event.deliveries,
            "times_parked": (row["times_parked"] if row else 0) + 1,
            "replay_failures": 0,
            "resolved_by": None,
            "parked_at": at,
            "updated_at": at,
            "position": position,
        }
    if row is None:
        raise ValueError(f"{type(event).__name__} at {position} for a message never parked")
    if isinstance(event, pm.ReplayFailed):
        return {
            **row,
            "reason": event.reason,
            "replay_failures": row["replay_failures"] + 1,
            "updated_at": at,
            "position": position,
        }
    if isinstance(event, pm.MessageReplayed | pm.MessageDiscarded):
        status = (
            pm.ParkedStatus.REPLAYED
            if isinstance(event, pm.MessageReplayed)
            else pm.ParkedStatus.DISCARDED
        )
        return {
            **row,
            "status": status,
            "resolved_by": event.requested_by,
            "updated_at": at,
            "position": position,
        }
    raise TypeError(f"not a parked message event: {event!r}")


class ParkedRows:
    """The rows of one projector batch: loaded, changed in memory, then written at once."""

    def __init__(self, table: sa.Table) -> None:
        self.table = table
        self.rows: dict[str, Row] = {}
        self.changed: set[str] = set()

    def load(self, conn: Connection, events: Iterable[tuple[int, LedgerEvent]]) -> None:
        keys = {e.message_id for _, e in events if isinstance(e, pm.ParkedMessageEvent)}
        if keys:
            self.rows = load_rows(conn, self.table, "message_id", keys)

    def apply(self, event: pm.ParkedMessageEvent, position: int) -> None:
        key = event.message_id
        self.rows[key] = parked_message_row(self.rows.get(key), event, position)
        self.changed.add(key)

    def write(self, conn: Connection) -> None:
        upsert_rows(conn, self.table, [self.rows[k] for k in sorted(self.changed)])


# --- reads ---------------------------------------------------------------------------------------


def shown(row: Row, *, with_payload: bool = True) -> dict[str, Any]:
    """A row as the CLI and the HTTP API show it."""
    shown_row: dict[str, Any] = {
        "id": row["message_id"],
        "status": row["status"],
        "kind": row["kind"],
        "failure": row["failure"],
        "subject": row["subject"],
        "reason": row["reason"],
        "deliveries": row["deliveries"],
        "times_parked": row["times_parked"],
        "replay_failures": row["replay_failures"],
        "parked_at": row["parked_at"],
        "updated_at": row["updated_at"],
        "resolved_by": row["resolved_by"],
        "truncated": bool(row["truncated"]),
        "encoding": row["encoding"],
        "headers": {str(n): str(v) for n, v in loads(row["headers"])},
    }
    if with_payload:
        shown_row["payload"] = row["payload"]
    return shown_row


def parked_messages(
    conn: Connection, tables: ViewTables, *, include_resolved: bool = False
) -> list[dict[str, Any]]:
    """Parked messages, oldest first (with ``include_resolved``, replayed and discarded too)."""
    t: sa.Table = tables.parked_messages
    query = sa.select(t).order_by(t.c.parked_at, t.c.message_id)
    if not include_resolved:
        query = query.where(t.c.status == pm.ParkedStatus.PARKED)
    return [shown(dict(r)) for r in conn.execute(query).mappings()]


def parked_message(conn: Connection, tables: ViewTables, message_id: str) -> dict[str, Any] | None:
    t: sa.Table = tables.parked_messages
    row = conn.execute(sa.select(t).where(t.c.message_id == message_id)).mappings().first()
    return None if row is None else shown(dict(row))


def parked_count(conn: Connection, tables: ViewTables) -> int:
    """How many messages wait in the parked state (for ``status``)."""
    t: sa.Table = tables.parked_messages
    query = sa.select(sa.func.count()).where(t.c.status == pm.ParkedStatus.PARKED)
    return int(conn.execute(query).scalar_one())
