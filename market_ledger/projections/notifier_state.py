"""The notifier's own state: how far it has announced the log, and what hash it announced.

These tables are not views: a rebuild neither drops nor refills them (that would announce
everything again), so they have their own metadata, and their own migration.
"""

from __future__ import annotations

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from market_ledger.projections.schema import ViewTables
from market_ledger.projections.store import upsert_rows


@attrs.frozen
class NotifierTables:
    metadata: sa.MetaData
    #: the log position up to which notifications are published, per notifier name
    position: sa.Table
    #: the last hash announced per user
    announced: sa.Table


def define_notifier_tables() -> NotifierTables:
    metadata = sa.MetaData()
    position = sa.Table(
        "notifier_position",
        metadata,
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("position", sa.BigInteger, nullable=False),
    )
    announced = sa.Table(
        "notifier_announced_hashes",
        metadata,
        sa.Column("user_name", sa.String(255), primary_key=True),
        sa.Column("hash", sa.Text, nullable=False),
    )
    return NotifierTables(metadata=metadata, position=position, announced=announced)


def read_notifier_position(conn: Connection, t: NotifierTables, name: str) -> int | None:
    """The notifier's position, or None before its first run."""
    value = conn.execute(sa.select(t.position.c.position).where(t.position.c.name == name)).scalar()
    return None if value is None else int(value)


def advance_notifier_position(
    conn: Connection, t: NotifierTables, name: str, *, expected: int, position: int
) -> bool:
    """Move from ``expected`` to ``position``; False if another notifier moved it meanwhile."""
    result = conn.execute(
        sa.update(t.position)
        .where(t.position.c.name == name, t.position.c.position == expected)
        .values(position=position)
    )
    return result.rowcount == 1


def start_notifier(
    conn: Connection, t: NotifierTables, views: ViewTables, name: str, position: int
) -> None:
    """First run: start at ``position`` and take every user's current hash as announced,
    so that a notifier added to a running ledger does not announce its past again."""
    upsert_rows(conn, t.position, [{"name": name, "position": position}])
    users = views.users
    rows = conn.execute(
        sa.select(users.c.user_name, users.c.hash).where(
            users.c.registered.is_(True), users.c.hash != ""
        )
    ).all()
    upsert_rows(conn, t.announced, [{"user_name": u, "hash": h} for u, h in rows])


def unannounced_hashes(
    conn: Connection, t: NotifierTables, views: ViewTables, forced: set[str] | None = None
) -> dict[str, str]:
    """``{user: hash}`` of registered users whose hash differs from the one last announced
    (or who are in ``forced``)."""
    users, announced = views.users, t.announced
    differs = sa.or_(announced.c.hash.is_(None), announced.c.hash != users.c.hash)
    if forced:
        differs = sa.or_(differs, users.c.user_name.in_(sorted(forced)))
    query = (
        sa.select(users.c.user_name, users.c.hash)
        .select_from(users.outerjoin(announced, announced.c.user_name == users.c.user_name))
        .where(users.c.registered.is_(True), users.c.hash != "", differs)
        .order_by(users.c.user_name)
    )
    return {str(user): str(hash_) for user, hash_ in conn.execute(query)}


def record_announced(conn: Connection, t: NotifierTables, hashes: dict[str, str]) -> None:
    upsert_rows(conn, t.announced, [{"user_name": u, "hash": h} for u, h in sorted(hashes.items())])
