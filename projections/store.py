"""Reading and writing view rows in bulk, the same way on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from projections.rows import Row

#: how many keys go into one ``IN (...)`` list
CHUNK = 500


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def load_rows(
    conn: Connection, table: sa.Table, key: str, keys: Iterable[Any]
) -> dict[Any, Row]:
    wanted = sorted(set(keys))
    found: dict[Any, Row] = {}
    column = table.c[key]
    for part in chunks(wanted):
        for row in conn.execute(sa.select(table).where(column.in_(part))).mappings():
            found[row[key]] = dict(row)
    return found


def upsert_rows(conn: Connection, table: sa.Table, rows: Sequence[Row]) -> None:
    """Insert rows, replacing any row with the same primary key."""
    if not rows:
        return
    insert = sqlite.insert if conn.dialect.name == "sqlite" else postgresql.insert
    statement = insert(table)
    keys = [column.name for column in table.primary_key.columns]
    statement = statement.on_conflict_do_update(
        index_elements=keys,
        set_={c.name: statement.excluded[c.name] for c in table.columns if not c.primary_key},
    )
    for part in chunks(rows, 1000):
        conn.execute(statement, list(part))


def insert_rows(conn: Connection, table: sa.Table, rows: Sequence[Row]) -> None:
    for part in chunks(rows, 1000):
        if part:
            conn.execute(table.insert(), list(part))
