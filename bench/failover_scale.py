"""Scale-out figures of several ``serve`` instances: app-state intake and ``/market/hash``
reads with 1, 2 and 3 of them running.

Each step is bounded: one that does not finish in time raises :class:`StepTimedOut`, saying
what was still missing (messages not in the log, messages parked, the stream's own count).
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from nats.errors import Error as NatsError

from tests.support.instances import API, USER, Instances
from tests.support.nats_server import Nats, connect, state_message

APPS = ["affine", "anythingllm"]
#: the intake's throughput is measured over this many apps: messages about one app are
#: decided one at a time (one stream), so a few apps measure contention, not the intake
INTAKE_APPS = [f"bench-app-{n:02d}" for n in range(50)]
STATES = ("downloading", "installing", "initializing", "running")


#: what the command handler logs when a concurrent write won and it decides again
CONFLICT = "concurrent write on one of"


class StepTimedOut(SystemExit):
    """A bench step that did not finish in its time, with what it was waiting for."""


async def publish(nats: Nats, ids: list[str], app: str | None = None, window: int = 200) -> int:
    """Publish one app-state message per id to the intake stream, ``window`` unacknowledged
    at most; a message whose ack does not come is sent again (the stream dedupes it by
    ``Nats-Msg-Id``). Each message differs from the one before (its progress), so each
    is a new observation and leaves an event. The number of resends."""
    client = await connect(nats.url)
    js = client.jetstream()
    at = datetime.now(UTC)
    subject = nats.names.app_state_of(USER)
    resent = 0

    async def one(n: int, event_id: str) -> None:
        nonlocal resent
        name = app or INTAKE_APPS[n % len(INTAKE_APPS)]
        state = STATES[(n // len(INTAKE_APPS)) % len(STATES)]
        message = state_message(
            USER, name, state, at + timedelta(milliseconds=n), event_id=event_id,
            progress=event_id,
        )  # fmt: skip
        for _ in range(5):
            try:
                await js.publish(subject, message, timeout=5, headers={"Nats-Msg-Id": event_id})
                return
            except (TimeoutError, NatsError):
                resent += 1
        raise StepTimedOut(f"message {event_id} not acknowledged by the stream after 5 tries")

    try:
        for start in range(0, len(ids), window):
            chunk = list(enumerate(ids))[start : start + window]
            await asyncio.gather(*(one(n, event_id) for n, event_id in chunk))
    finally:
        await client.close()
    return resent


def taken_in(cluster: Instances, prefix: str) -> int:
    """How many distinct messages with ids starting with ``prefix`` the log took in."""
    with cluster.connect() as conn:
        row = conn.execute(
            "SELECT count(DISTINCT e.id) FROM ("
            " SELECT convert_from(state, 'UTF8')::json->>'event_id' AS id"
            " FROM marketledger_events WHERE topic LIKE 'installation.%%') e"
            " WHERE e.id LIKE %s",
            (f"{prefix}%",),
        ).fetchone()
    return int(row[0]) if row else 0


def parked(cluster: Instances) -> list[tuple[str, str]]:
    with cluster.connect() as conn:
        rows = conn.execute("SELECT message_id, reason FROM parked_messages").fetchall()
    return [(str(m), str(r)) for m, r in rows]


async def stream_count(nats: Nats) -> int:
    client = await connect(nats.url)
    try:
        info = await client.jetstream().stream_info(nats.names.stream)
        return int(info.state.messages)
    finally:
        await client.close()


def intake_rate(
    cluster: Instances, nats: Nats, count: int, label: str, timeout: float = 120.0
) -> float:
    """Messages per second from the first publish until every message is in the log."""
    ids = [f"{label}-{n}" for n in range(count)]
    started = time.monotonic()
    asyncio.run(publish(nats, ids))
    deadline = started + timeout
    while (seen := taken_in(cluster, f"{label}-")) < count:
        if time.monotonic() > deadline:
            raise StepTimedOut(
                f"intake {label}: {seen} of {count} messages in the log after {timeout:g} s;"
                f" stream holds {asyncio.run(stream_count(nats))} messages;"
                f" parked: {parked(cluster)[:5]}"
            )
        time.sleep(0.05)
    return count / (time.monotonic() - started)


def read_rate(cluster: Instances, seconds: float, threads: int = 4) -> dict[str, float]:
    """``/market/hash`` answered per second, the requests spread evenly over the running
    instances by ``threads`` client threads; and the failures per second."""
    urls = [f"{m.service.base_url}{API}/market/hash" for m in cluster.live() if m.service]
    done = [0] * threads
    failed = [0] * threads
    stop = time.monotonic() + seconds

    def hammer(n: int) -> None:
        with httpx.Client(headers={"X-Bfl-User": USER}, timeout=5) as client:
            sent = n
            while time.monotonic() < stop:
                try:
                    ok = client.get(urls[sent % len(urls)]).status_code == 200
                except httpx.HTTPError:
                    ok = False
                sent += 1
                if ok:
                    done[n] += 1
                else:
                    failed[n] += 1

    workers = [threading.Thread(target=hammer, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(seconds + 10)
    return {"reads_per_s": sum(done) / seconds, "failed_per_s": sum(failed) / seconds}


def run_with(cluster: Instances, count: int) -> None:
    """Exactly the first ``count`` instances running, every role held, the same hash."""
    for n, member in enumerate(cluster.members):
        if n < count and not member.running:
            member.start()
        elif n >= count and member.running:
            member.stop()
    cluster.wait_roles_held(60)
    cluster.same_hash(60)


def scale(cluster: Instances, nats: Nats, messages: int, seconds: float) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "intake_msgs_per_s": {},
        "intake_conflicts": {},
        "hash_reads_per_s": {},
        "failed": {},
    }
    for count in (1, 2, 3):
        run_with(cluster, count)
        before = cluster.logs().count(CONFLICT)
        rate = intake_rate(cluster, nats, messages, f"tp{count}")
        figures["intake_msgs_per_s"][count] = round(rate, 1)
        # writes that lost the race to another instance's on the same streams, and retried
        figures["intake_conflicts"][count] = cluster.logs().count(CONFLICT) - before
        reads = read_rate(cluster, seconds)
        figures["hash_reads_per_s"][count] = round(reads["reads_per_s"], 1)
        figures["failed"][count] = round(reads["failed_per_s"], 1)
    figures["parked"] = len(parked(cluster))
    return figures
