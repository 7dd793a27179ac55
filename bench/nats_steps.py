"""The steps of the NATS benchmark: a publisher at a fixed offered rate, and what was done.

Shared by the project's side (:mod:`bench.nats_bench`) and the bare consumer's
(:mod:`bench.nats_bare`): the same publisher, the same offered rates, the same rule for a
sustained step.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import threading
import time
from datetime import UTC, datetime
from multiprocessing.sharedctypes import Synchronized
from typing import Protocol

import attrs

from market_ledger.domain.canonical import format_instant

SUSTAINED_RATIO = 0.95
DRAIN_LIMIT_SECONDS = 1.0
GIVE_UP_DRAIN_SECONDS = 30.0


class Sink(Protocol):
    """Where the side under test counts the messages it is done with, and their latencies."""

    lock: threading.Lock
    latencies: list[float]
    projected: int
    last_at: float


# --- the publisher (a separate process, as app-service is) ----------------------------------


@attrs.frozen
class Publication:
    """What one publisher process sends: ``rate`` msg/s for ``seconds``, numbered from
    ``first``, on ``<prefix>.<user>``; it reports through the shared values."""

    url: str
    prefix: str
    rate: int
    seconds: float
    users: int
    apps: int
    first: int
    sent: Synchronized  # type: ignore[type-arg]
    began: Synchronized  # type: ignore[type-arg]
    ended: Synchronized  # type: ignore[type-arg]


def publish_at_rate(job: Publication) -> None:
    asyncio.run(_publish(job))


async def _publish(job: Publication) -> None:
    import nats

    client = await nats.connect(job.url)
    tick = 0.005
    total = int(job.rate * job.seconds)
    job.began.value = time.time()
    started = time.monotonic()
    first = number = job.first
    try:
        while number - first < total:
            due = min(total, int((time.monotonic() - started) * job.rate) + 1)
            while number - first < due:
                user = f"user{number % job.users:03d}"
                app = f"app{(number // job.users) % job.apps:03d}"
                payload = {
                    "eventID": f"{user}-{app}-{number}",
                    "createTime": format_instant(datetime.now(UTC)),
                    "name": app,
                    "rawAppName": app,
                    "title": app,
                    "opType": "install",
                    "state": "downloading",
                    "user": user,
                    "progress": str(number),  # every message changes something
                }
                await client.publish(f"{job.prefix}.{user}", json.dumps(payload).encode())
                number += 1
            await client.flush()
            await asyncio.sleep(tick)
    finally:
        job.sent.value = number - first
        job.ended.value = time.time()
        await client.close()


# --- a step -------------------------------------------------------------------------------------


@attrs.frozen
class Step:
    offered: int
    sent: int
    projected: int
    seconds: float
    drain: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    #: the publisher's own rate: below the offered one, the publisher could not keep up
    published: float = math.nan
    #: the project's publish-to-commit p99 (the intake's transaction), when measured
    commit_p99_ms: float = math.nan

    @property
    def achieved(self) -> float:
        return self.projected / self.seconds if self.seconds else 0.0

    @property
    def sustained(self) -> bool:
        return (
            self.projected >= self.sent
            and self.achieved >= SUSTAINED_RATIO * self.offered
            and self.drain <= DRAIN_LIMIT_SECONDS
        )


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def run_step(
    url: str,
    prefix: str,
    sink: Sink,
    rate: int,
    seconds: float,
    args: argparse.Namespace,
    first: int,
    commits: Sink | None = None,
) -> Step:
    """Publish ``rate`` msg/s for ``seconds``; wait until ``sink`` has done them all (or
    gives up); the latencies ``commits`` saw meanwhile give ``commit_p99_ms``."""
    context = multiprocessing.get_context("spawn")
    sent = context.Value("i", 0)
    began = context.Value("d", 0.0)
    ended = context.Value("d", 0.0)
    job = Publication(url, prefix, rate, seconds, args.users, args.apps, first, sent, began, ended)
    process = context.Process(target=publish_at_rate, args=(job,))
    process.start()
    counted: list[float] = []
    committed: list[float] = []
    projected = 0
    while process.is_alive():
        await asyncio.sleep(0.05)
        got, latencies = _take(sink)
        projected += got
        counted.extend(latencies)
    process.join()
    waited_from = time.time()
    while projected < sent.value and time.time() - waited_from < GIVE_UP_DRAIN_SECONDS:
        await asyncio.sleep(0.005)
        got, latencies = _take(sink)
        projected += got
        counted.extend(latencies)
    if commits is not None:
        committed = _take(commits)[1]
    last_at = sink.last_at
    return Step(
        offered=rate,
        sent=sent.value,
        projected=projected,
        seconds=max(last_at - began.value, 1e-9),
        drain=max(last_at - ended.value, 0.0),
        p50_ms=1000 * percentile(counted, 0.50),
        p99_ms=1000 * percentile(counted, 0.99),
        max_ms=1000 * max(counted, default=float("nan")),
        published=sent.value / max(ended.value - began.value, 1e-9),
        commit_p99_ms=1000 * percentile(committed, 0.99),
    )


def _take(sink: Sink) -> tuple[int, list[float]]:
    with sink.lock:
        taken = (sink.projected, sink.latencies)
        sink.projected, sink.latencies = 0, []
    return taken


HEADER = (
    f"{'offered':>8} {'achieved':>9} {'sent':>7} {'projected':>9} "
    f"{'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'drain s':>7}  {'sustained':<14} "
    f"{'pub/s':>7} {'commit p99 ms':>13}"
)


def row(step: Step) -> str:
    return (
        f"{step.offered:>8} {step.achieved:>9.0f} {step.sent:>7} {step.projected:>9} "
        f"{step.p50_ms:>8.1f} {step.p99_ms:>8.1f} {step.max_ms:>8.1f} {step.drain:>7.2f}  "
        f"{'yes' if step.sustained else 'NO (saturated)':<14} {step.published:>7.0f} "
        f"{step.commit_p99_ms:>13.1f}"
    )


async def step_through(
    url: str,
    prefix: str,
    sink: Sink,
    rates: list[int],
    args: argparse.Namespace,
    commits: Sink | None = None,
) -> list[Step]:
    """A warm-up (not reported: every installation exists afterwards), then a step per rate
    until one is not sustained; a row per step."""
    warmup = 2 * args.users * args.apps / 500
    first = (await run_step(url, prefix, sink, 500, warmup, args, 0, commits)).sent
    steps: list[Step] = []
    for rate in rates:
        step = await run_step(url, prefix, sink, rate, args.seconds, args, first, commits)
        first += step.sent
        steps.append(step)
        print(row(step), flush=True)
        if not step.sustained:
            break
    return steps
