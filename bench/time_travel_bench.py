"""Benchmark of time travel: a user's catalog in the past, from checkpoints and from position 0.

    flock /work/notes/bench.lock .venv/bin/python bench/time_travel_bench.py \
        [--events 1000000] [--every 10000] [--db var/bench/time-travel.db] [--reuse]

1. fills a SQLite store with the realistic workload (bench/workload.py) up to ``--events``
   events, or, with ``--reuse``, takes the store already at ``--db``;
2. rebuilds the views, checkpoints every ``--every`` positions included, and reports the
   checkpoints' rows and the rebuild's time;
3. for one user, at the head and at a few earlier positions (and at one moment), times the
   catalog the use case gives (from the nearest checkpoint: the median of ``--runs``) and a
   replay of the same catalog from position 0 (once), and checks that they are equal;
4. times ``market-ledger catalog --user U --position HEAD --json`` as a command, start-up
   included.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa

from bench.core_bench import fill
from bench.workload import setup_commands
from market_ledger.adapters.config import Settings
from market_ledger.bootstrap import Ledger, bootstrap
from market_ledger.projections import queries, time_travel
from market_ledger.projections.log_reader import LogReader
from market_ledger.service.catalog_at import catalog_at


def from_zero(ledger: Ledger, user: str, position: int) -> dict[str, Any]:
    """The reference: the same catalog, replayed from position 0 without a checkpoint."""
    with ledger.read() as conn:
        known = time_travel.known_streams(conn, ledger.tables, user)
    rows = time_travel.replay_user(ledger.application, user, position, known)
    view = queries.catalog_from_rows(
        user, rows.hash, rows.listings, rows.installations, rows.sources
    )
    return {**view, "position": position}


def timed(act: Any, runs: int) -> tuple[float, Any]:
    """The median seconds of ``runs`` calls of ``act``, and its last result."""
    seconds = []
    result = None
    for _ in range(runs):
        started = time.perf_counter()
        result = act()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), result


def build(args: argparse.Namespace, url: str) -> None:
    db = Path(args.db)
    db.parent.mkdir(parents=True, exist_ok=True)
    for leftover in db.parent.glob(db.name + "*"):
        leftover.unlink()
    ledger = bootstrap(Settings(database_url=url, checkpoint_every=args.every))
    try:
        ledger.handler.handle(*setup_commands(args.users, args.sources))
        events, growth, _ = fill(ledger, None, args)
        print(f"store: {events:,} events appended ({growth.rate:,.0f} events/s)")
    finally:
        ledger.close()


def checkpoint_rows(ledger: Ledger) -> tuple[int, float]:
    """The checkpoint rows and the megabytes of their row text."""
    table = ledger.tables.checkpoints
    with ledger.read() as conn:
        count, size = conn.execute(
            sa.select(
                sa.func.count(), sa.func.coalesce(sa.func.sum(sa.func.length(table.c.row)), 0)
            )
        ).one()
    return int(count), int(size) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=460)
    parser.add_argument("--sources", type=int, default=3)
    parser.add_argument("--apps", type=int, default=300, help="apps per source")
    parser.add_argument("--chunk", type=int, default=2000, help="commands per transaction")
    parser.add_argument("--every", type=int, default=10_000, help="positions between checkpoints")
    parser.add_argument("--runs", type=int, default=3, help="runs per position, from checkpoints")
    parser.add_argument("--db", default="var/bench/time-travel.db")
    parser.add_argument("--reuse", action="store_true", help="take the store already at --db")
    args = parser.parse_args()

    url = f"sqlite:///{args.db}"
    if not (args.reuse and Path(args.db).is_file()):
        build(args, url)
    ledger = bootstrap(Settings(database_url=url, checkpoint_every=args.every))
    try:
        started = time.perf_counter()
        report = ledger.rebuild()
        rows, megabytes = checkpoint_rows(ledger)
        print(
            f"rebuild with checkpoints every {args.every:,}: {report.events:,} events in "
            f"{time.perf_counter() - started:.1f} s; {rows:,} checkpoint rows "
            f"({megabytes:,.1f} MiB of row text)"
        )
        head = ledger.projector.head()
        user = f"user{args.users // 2:04d}"
        positions = sorted({head, head - 1, head * 3 // 4 + 7, head // 2 + 3, head // 4 + 1})
        print(f"user {user}, log head {head:,}")
        print(f"{'position':>10}  {'checkpoints':>12}  {'from 0':>9}  equal")
        figures: dict[str, Any] = {"head": head, "every": args.every, "user": user, "at": {}}
        for position in positions:
            with_checkpoints, view = timed(
                lambda p=position: catalog_at(ledger, user, position=p), args.runs
            )
            replay_started = time.perf_counter()
            reference = from_zero(ledger, user, position)
            replayed = time.perf_counter() - replay_started
            equal = view == reference
            print(f"{position:>10,}  {with_checkpoints:>10.3f} s  {replayed:>7.3f} s  {equal}")
            figures["at"][str(position)] = {
                "checkpoints_s": round(with_checkpoints, 4),
                "from_zero_s": round(replayed, 4),
                "equal": equal,
            }
            if not equal:
                sys.exit(f"the catalog at {position} differs from its replay from 0")
        reader = LogReader(ledger.application)
        at = reader.decode(reader.notifications(head // 2, head, 1)[0]).timestamp
        seconds, view = timed(lambda: catalog_at(ledger, user, moment=at), args.runs)
        print(
            f"at the moment of event {head // 2 + 1:,} ({at.isoformat()}): the catalog at "
            f"{view['position']:,} (the last event of that moment) in {seconds:.3f} s"
        )
        figures["moment_s"] = round(seconds, 4)
    finally:
        ledger.close()
    env = {**os.environ, "LEDGER_DATABASE_URL": url}
    command = ["catalog", "--user", user, "--position", str(head), "--json"]
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "market_ledger", *command], env=env, capture_output=True, text=True
    )
    wall = time.perf_counter() - started
    if done.returncode:
        sys.exit(f"market-ledger {' '.join(command)} exited {done.returncode}: {done.stderr}")
    print(f"market-ledger {' '.join(command)}: {wall:.2f} s wall, start-up included")
    figures["cli_head_s"] = round(wall, 3)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
