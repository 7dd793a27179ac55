"""Leases on the singleton roles (cycle, projector, notifier, tasks), kept in the database.

One row per role: who holds it, until when, and a fencing token that grows by one every time
the role changes hands. Times are the database's own clock (seconds since the epoch), so the
instances' clocks never have to agree. A lease is taken only when it has expired (or was never
taken), renewed only by its holder with its token, and a write that must come from the holder
checks the row in its own transaction (:func:`holds`), locking it against a takeover until the
transaction ends: a holder that was paused past its lease finds its token stale and writes
nothing.

Like the notifier's state these rows are not views: a rebuild neither drops nor refills them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from market_ledger.domain.canonical import format_instant

ROLES = ("cycle", "projector", "notifier", "tasks")


@attrs.frozen
class Lease:
    role: str
    holder: str
    token: int
    #: when the holder took it, and until when it holds it (database clock, epoch seconds)
    since: float
    expires_at: float


class LeaseLost(RuntimeError):
    """A write on behalf of a role whose lease this instance no longer holds."""

    def __init__(self, lease: Lease) -> None:
        super().__init__(
            f"the {lease.role} role's lease (token {lease.token}) is no longer held by "
            f"{lease.holder}: the write is refused"
        )
        self.lease = lease


def check_held(conn: Connection, lease: Lease | None) -> None:
    """Raise LeaseLost unless ``lease`` (when given) is live, inside the caller's transaction."""
    if lease is not None and not holds(conn, lease):
        raise LeaseLost(lease)


def define_lease_table(metadata: sa.MetaData | None = None) -> sa.Table:
    return sa.Table(
        "role_leases",
        metadata or sa.MetaData(),
        sa.Column("role", sa.String(16), primary_key=True),
        sa.Column("holder", sa.String(255), nullable=False),
        sa.Column("token", sa.BigInteger, nullable=False),
        sa.Column("since", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )


LEASES = define_lease_table()
#: every running instance, with the last time it said it was alive (database clock)
INSTANCES = sa.Table(
    "instances",
    LEASES.metadata,
    sa.Column("instance_id", sa.String(255), primary_key=True),
    sa.Column("seen_at", sa.Float, nullable=False),
)


def database_now(conn: Connection) -> float:
    """The database's clock, in seconds since the epoch."""
    if conn.dialect.name == "sqlite":
        query = sa.text("SELECT (julianday('now') - 2440587.5) * 86400.0")
    else:
        query = sa.text("SELECT extract(epoch FROM clock_timestamp())::float8")
    return float(conn.execute(query).scalar_one())


def _lease(row: Mapping[Any, Any] | None) -> Lease | None:
    if row is None:
        return None
    return Lease(
        role=row["role"],
        holder=row["holder"],
        token=int(row["token"]),
        since=float(row["since"]),
        expires_at=float(row["expires_at"]),
    )


def _row(conn: Connection, role: str, *, lock: bool = False) -> Lease | None:
    query = sa.select(LEASES).where(LEASES.c.role == role)
    if lock and conn.dialect.name != "sqlite":
        query = query.with_for_update()
    return _lease(conn.execute(query).mappings().first())


def try_acquire(
    conn: Connection, role: str, holder: str, ttl: float, *, steal: bool = False
) -> Lease | None:
    """Take ``role`` for ``holder`` if nobody holds it (its lease expired, or it was never
    taken); the new lease has the next token. None when another holder's lease runs.

    ``steal``: take it even then (a store only one instance may serve, whose previous
    holder is known to be gone)."""
    now = database_now(conn)
    current = _row(conn, role, lock=True)
    if current is not None and current.expires_at > now and not steal:
        return current if current.holder == holder else None
    token = (current.token if current is not None else 0) + 1
    values = {"holder": holder, "token": token, "since": now, "expires_at": now + ttl}
    if current is None:
        try:
            with conn.begin_nested():
                conn.execute(sa.insert(LEASES).values(role=role, **values))
        except sa.exc.IntegrityError:
            return None  # another instance took it a moment ago
    else:
        taken = conn.execute(
            sa.update(LEASES)
            .where(LEASES.c.role == role, LEASES.c.token == current.token)
            .values(**values)
        )
        if taken.rowcount != 1:
            return None
    return Lease(role, holder, token, now, now + ttl)


def renew(conn: Connection, lease: Lease, ttl: float) -> Lease | None:
    """Extend a held lease; None when it is no longer this holder's (it expired and was
    taken, or its token is stale)."""
    now = database_now(conn)
    renewed = conn.execute(
        sa.update(LEASES)
        .where(
            LEASES.c.role == lease.role,
            LEASES.c.holder == lease.holder,
            LEASES.c.token == lease.token,
            LEASES.c.expires_at > now,
        )
        .values(expires_at=now + ttl)
    )
    if renewed.rowcount != 1:
        return None
    return attrs.evolve(lease, expires_at=now + ttl)


def release(conn: Connection, lease: Lease) -> None:
    """Give the role up at once (a clean stop), so the next instance need not wait."""
    conn.execute(
        sa.update(LEASES)
        .where(LEASES.c.role == lease.role, LEASES.c.token == lease.token)
        .values(expires_at=0.0)
    )


def holds(conn: Connection, lease: Lease) -> bool:
    """Whether ``lease`` is still the live one, checked inside the caller's transaction and
    locked (on PostgreSQL) so that nobody takes the role before that transaction ends."""
    current = _row(conn, lease.role, lock=True)
    return (
        current is not None
        and current.token == lease.token
        and current.holder == lease.holder
        and current.expires_at > database_now(conn)
    )


def current_leases(conn: Connection) -> dict[str, Lease]:
    """Every role's lease as recorded, live or expired."""
    rows = conn.execute(sa.select(LEASES)).mappings()
    return {lease.role: lease for lease in (_lease(row) for row in rows) if lease is not None}


def heartbeat(conn: Connection, instance_id: str) -> None:
    """Record that ``instance_id`` is alive now."""
    now = database_now(conn)
    updated = conn.execute(
        sa.update(INSTANCES).where(INSTANCES.c.instance_id == instance_id).values(seen_at=now)
    )
    if updated.rowcount == 0:
        conn.execute(sa.insert(INSTANCES).values(instance_id=instance_id, seen_at=now))


def live_instances(conn: Connection, within: float) -> set[str]:
    """The instances that said they were alive in the last ``within`` seconds."""
    since = database_now(conn) - within
    query = sa.select(INSTANCES.c.instance_id).where(INSTANCES.c.seen_at > since)
    return {str(name) for name in conn.execute(query).scalars()}


def forget_instance(conn: Connection, instance_id: str) -> None:
    """A clean stop: the instance is gone at once."""
    conn.execute(sa.delete(INSTANCES).where(INSTANCES.c.instance_id == instance_id))


def roles_shown(conn: Connection) -> dict[str, dict[str, str | None]]:
    """Who holds each role now and since when (RFC 3339): what ``status`` and ``/readyz``
    show; a role whose lease ran out (or was never taken) has no holder."""
    now = database_now(conn)
    recorded = current_leases(conn)
    shown: dict[str, dict[str, str | None]] = {}
    for role in ROLES:
        lease = recorded.get(role)
        if lease is None or lease.expires_at <= now:
            shown[role] = {"holder": None, "since": None, "token": None}
        else:
            since = datetime.fromtimestamp(lease.since, UTC)
            shown[role] = {
                "holder": lease.holder,
                "since": format_instant(since),
                "token": str(lease.token),
            }
    return shown
