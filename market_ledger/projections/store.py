"""Reading and writing view rows in bulk, the same way on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from market_ledger.projections.rows import Row

#: how many keys go into one ``IN (...)`` list
CHUNK = 500


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def load_rows(conn: Connection, table: sa.Table, key: str, keys: Iterable[Any]) -> dict[Any, Row]:
    wanted = sorted(set(keys))
    found: dict[Any, Row] = {}
    column = table.c[key]
    for part in chunks(wanted):
        for row in conn.execute(sa.select(table).where(column.in_(part))).mappings():
            found[row[key]] = dict(row)
    return found


def _statement(conn: Connection, table: sa.Table, *, upsert: bool) -> tuple[str, list[str]]:
    """Plain SQL for one row of ``table``; executed many times with tuples, it skips the
    per-row parameter processing that dominates bulk writes through the expression layer."""
    quote = conn.dialect.identifier_preparer.quote
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    columns = [c.name for c in table.columns]
    sql = (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "
        f"VALUES ({', '.join(mark for _ in columns)})"
    )
    if upsert:
        keys = [c.name for c in table.primary_key.columns]
        updates = ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in columns if c not in keys)
        sql += f" ON CONFLICT ({', '.join(quote(k) for k in keys)}) DO UPDATE SET {updates}"
    return sql, columns


def _write(conn: Connection, table: sa.Table, rows: Sequence[Row], *, upsert: bool) -> None:
    if not rows:
        return
    sql, columns = _statement(conn, table, upsert=upsert)
    conn.exec_driver_sql(sql, [tuple(row[c] for c in columns) for row in rows])


def upsert_rows(conn: Connection, table: sa.Table, rows: Sequence[Row]) -> None:
    """Insert rows, replacing any row with the same primary key."""
    _write(conn, table, rows, upsert=True)


def insert_rows(conn: Connection, table: sa.Table, rows: Sequence[Row]) -> None:
    _write(conn, table, rows, upsert=False)
