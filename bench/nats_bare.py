"""The bare anchor of the NATS benchmark: the raw libraries doing the intake's bare work.

A JetStream pull consumer on nats-py alone fetches the app-state messages a batch at a time
(as the intake does: the first message waited for, then what else arrives within a few
milliseconds, up to the batch size), writes one event per message through the same store
(the eventsourcing library's SQLite application recorder on a fresh file, with the project's
page cache and the project's orjson transcoder), one transaction per batch, then acks each
message. Nothing else: no parsing into commands, no deciding against the installation's
state, no views, no projection. It runs single-threaded, on the event loop of the bench
process; the latency of a message is the time from its ``createTime`` to the commit of its
batch. :mod:`bench.nats_bench` drives it with the same publisher and the same offered rates
as the project, and prints both figures side by side (:mod:`bench.pairs`).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import nats
import nats.errors
import orjson
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    InfrastructureFactory,
    JSONTranscoder,
    StoredEvent,
    UUIDAsHex,
)
from eventsourcing.utils import Environment
from nats.js import api

from bench.nats_steps import Step
from bench.pairs import Pair
from market_ledger.adapters.event_store.settings import event_store_env

#: the topic of the bare events (only ever written, never read back as objects)
BARE_TOPIC = "bench.nats_bare:AppStateObserved"
#: the store's namespace for the streams of the bare events
NAMESPACE = uuid.UUID("6f1b2a52-4c59-4d8e-9a53-0b8d4b3f7c11")


class Tally:
    """Messages done and their latencies, taken by the bench a step at a time."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.projected = 0
        #: when the newest message was done (wall clock)
        self.last_at = 0.0

    def record(self, now: float, measured: list[float]) -> None:
        with self.lock:
            self.latencies.extend(measured)
            self.projected += len(measured)
            self.last_at = now


class BareStore:
    """The eventsourcing recorder over a fresh SQLite file, with the project's transcoder."""

    def __init__(self, database_url: str) -> None:
        self.factory = InfrastructureFactory.construct(
            Environment(env=event_store_env(database_url))
        )
        self.recorder = self.factory.application_recorder()  # its table created
        transcoder = self.factory.transcoder()
        assert isinstance(transcoder, JSONTranscoder)
        for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
            transcoder.register(transcoding)
        self.transcoder = transcoder
        #: the newest version of each stream (one stream per user and app, as installations)
        self.versions: dict[uuid.UUID, int] = {}

    def write(self, payloads: Sequence[dict[str, Any]]) -> None:
        """One event per payload, in one transaction."""
        events = []
        now = datetime.now(UTC)
        for payload in payloads:
            stream = uuid.uuid5(NAMESPACE, f"{payload['user']}/{payload['name']}")
            version = self.versions.get(stream, 0) + 1
            self.versions[stream] = version
            state = {**payload, "createTime": payload["observed_at"], "timestamp": now}
            del state["observed_at"]
            events.append(StoredEvent(stream, version, BARE_TOPIC, self.transcoder.encode(state)))
        self.recorder.insert_events(events)

    def close(self) -> None:
        self.factory.close()


async def consume(
    url: str,
    subject: str,
    store: BareStore,
    tally: Tally,
    stop: asyncio.Event,
    *,
    batch_size: int,
    ready: asyncio.Event,
    fetch_timeout: float = 0.5,
    gather_timeout: float = 0.005,
) -> None:
    """Fetch, write, ack, until ``stop``; the stream is created here and deleted on the way out."""
    client = await nats.connect(url)
    js = client.jetstream(timeout=5.0)
    stream = f"BARE{uuid.uuid4().hex[:8].upper()}"
    try:
        await js.add_stream(
            api.StreamConfig(
                name=stream,
                subjects=[subject],
                retention=api.RetentionPolicy.LIMITS,
                storage=api.StorageType.FILE,
                max_age=600.0,
            )
        )
        # the intake's consumer settings, so that only the work after the fetch differs
        subscription = await js.pull_subscribe(
            subject,
            durable=stream.lower(),
            stream=stream,
            config=api.ConsumerConfig(
                ack_policy=api.AckPolicy.EXPLICIT,
                deliver_policy=api.DeliverPolicy.ALL,
                max_deliver=-1,
                max_ack_pending=max(4 * batch_size, 1000),
            ),
            pending_msgs_limit=16 * batch_size,
        )
        ready.set()
        while not stop.is_set():
            try:
                messages = await subscription.fetch(1, timeout=fetch_timeout)
            except (TimeoutError, nats.errors.TimeoutError):
                continue
            if batch_size > 1:
                with contextlib.suppress(TimeoutError, nats.errors.TimeoutError):
                    messages += await subscription.fetch(batch_size - 1, timeout=gather_timeout)
            payloads = []
            for message in messages:
                payload = orjson.loads(message.data)
                payload["observed_at"] = datetime.fromisoformat(payload.pop("createTime"))
                payloads.append(payload)
            store.write(payloads)
            committed = time.time()
            tally.record(committed, [committed - p["observed_at"].timestamp() for p in payloads])
            for message in messages:
                await message.ack()
    finally:
        with contextlib.suppress(Exception):
            await js.delete_stream(stream)
        await client.close()


# --- the pairs ----------------------------------------------------------------------------------


def saturation(steps: Sequence[Step]) -> tuple[float, bool]:
    """(the achieved rate at the first step not sustained, True), or, when every step was
    sustained, (the last step's achieved rate, False): a lower bound only."""
    for step in steps:
        if not step.sustained:
            return step.achieved, True
    return (steps[-1].achieved if steps else 0.0), False


def nats_pairs(project: Sequence[Step], bare: Sequence[Step], pair_rate: int) -> list[Pair]:
    """The pairs of issue 14: p99 at ``pair_rate`` (the project's to the catalog view, and
    its publish-to-commit), and saturation vs the bare consumer's single-threaded rate.

    Without a step at ``pair_rate`` on both sides (a short run), the p99 pairs are taken at
    the highest rate both sides sustained; the measure names the rate."""
    pairs = []
    both = {s.offered for s in project if s.sustained} & {s.offered for s in bare if s.sustained}
    rate = pair_rate if pair_rate in both else max(both, default=None)
    ours = next((s for s in project if s.offered == rate), None)
    theirs = next((s for s in bare if s.offered == rate), None)
    if ours is not None and theirs is not None and theirs.p99_ms > 0:
        pairs.append(
            Pair(
                f"nats: p99 at {rate} msg/s, publish to catalog view (project) vs to commit (bare)",
                ours.p99_ms,
                theirs.p99_ms,
                "ms",
                higher_is_better=False,
                target=0.5,
            )
        )
        if math.isfinite(ours.commit_p99_ms):
            pairs.append(
                Pair(
                    f"nats: p99 at {rate} msg/s, publish to commit (both)",
                    ours.commit_p99_ms,
                    theirs.p99_ms,
                    "ms",
                    higher_is_better=False,
                    target=0.5,
                )
            )
    ours_rate, ours_reached = saturation(project)
    theirs_rate, theirs_reached = saturation(bare)
    if theirs_rate > 0:
        reached = {"project": ours_reached, "bare": theirs_reached}
        unreached = [side for side, done in reached.items() if not done]
        note = f" ({' and '.join(unreached)} not saturated: a lower bound)" if unreached else ""
        pairs.append(
            Pair(
                f"nats: saturation msg/s vs bare single-threaded{note}",
                ours_rate,
                theirs_rate,
                "msg/s",
                higher_is_better=True,
                target=2.0,
            )
        )
    return pairs
