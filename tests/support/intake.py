"""Helpers of the NATS intake's tests: an intake on a test server, and reads of what it took in."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from nats.aio.client import Client

from market_ledger.adapters.metrics import NATS_INTAKE
from market_ledger.adapters.nats.connection import NatsConnection
from market_ledger.adapters.nats.intake import NatsIntake
from market_ledger.bootstrap import Ledger
from tests.conftest import StoreFactory
from tests.support.nats_server import Nats, eventually


def intake_for(
    ledger: Ledger, store: StoreFactory, env: Nats, connection: NatsConnection, **options: Any
) -> NatsIntake:
    options = {"fetch_timeout": 0.1, **options}
    return NatsIntake(
        ledger,
        env.settings(store.url),
        connection=connection,
        stream=env.names.stream,
        durable=env.names.durable,
        **options,
    )


def installations(ledger: Ledger, user: str = "alice") -> dict[str, dict[str, Any]]:
    ledger.catch_up()
    t = ledger.tables.installations
    with ledger.read() as conn:
        rows = conn.execute(sa.select(t).where(t.c.user_name == user)).mappings()
        return {r["name"]: dict(r) for r in rows}


def installation_history(ledger: Ledger, user: str = "alice") -> list[str]:
    ledger.catch_up()
    h = ledger.tables.history
    with ledger.read() as conn:
        query = (
            sa.select(h.c.event)
            .where(h.c.user_name == user, h.c.kind == "installation")
            .order_by(h.c.position)
        )
        return list(conn.execute(query).scalars())


def counted(kind: str, outcome: str) -> float:
    return NATS_INTAKE.labels(kind, outcome)._value.get()


async def publish(client: Client, subject: str, *messages: bytes) -> None:
    for data in messages:
        await client.publish(subject, data)
    await client.flush()


async def stored(client: Client, env: Nats, count: int) -> None:
    """Wait until the stream holds ``count`` messages (a core publish has no ack)."""

    async def check() -> bool:
        try:
            info = await client.jetstream().stream_info(env.names.stream)
        except Exception:
            return False
        return info.state.messages >= count

    await eventually(check, what=f"{count} messages in the stream")
