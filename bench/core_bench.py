"""Benchmark of the event-sourced core: append rates, rebuild rate, peak memory.

    .venv/bin/python bench/core_bench.py [--events 1000000] [--db var/bench.db] [--postgres URL]

1. single: one command per transaction (each a first offer, so one event each);
2. batched: commands handled in transactions of ``--chunk`` commands;
3. fills the store with the realistic workload up to ``--events`` events (batched);
4. runs ``market-ledger rebuild`` in a child process and reports its rate and the peak RSS
   of its two processes (the command's and the one filling the history table);
5. runs ``market-ledger rebuild --verify`` on the same store and reports its exit code.

With ``--rebuild-only`` it measures steps 4 and 5 alone, on the store already at ``--db``
(built once without the append measurements when there is none, and kept): a million
events take minutes to append, a rebuild of them about one.

Each figure has its anchor, measured in the same run (bench/core_anchors.py): the library's
plain application appending the same events (one per transaction; ``--raw-batch`` per
transaction), and reading the whole log raw. The last line is JSON with the ``pairs``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.core_anchors import Growth, RawAppender, Work
from bench.pairs import Pair, print_pairs
from bench.workload import T0, listing_commands, setup_commands
from market_ledger.adapters.config import Settings
from market_ledger.bootstrap import bootstrap
from market_ledger.domain.decider import Command
from market_ledger.domain.installation import ObserveInstallationState

#: the peak memory a rebuild of a million events may take, both its processes together
BUDGET_MIB = 300.0


def measure_single(
    ledger: object, raw: RawAppender, count: int, store: str, rounds: int = 20
) -> tuple[float, Pair]:
    """One state observation per transaction (one event each), in ``rounds`` turns with the
    raw library appending the same events: (commands/s, the pair of their events/s)."""
    handler = ledger.handler  # type: ignore[attr-defined]
    commands = [
        ObserveInstallationState(
            f"user{i % 50:04d}",
            f"app{i % 97}",
            "running",
            T0 + timedelta(seconds=i),
            source="market0",
            event_id=f"single-{i}",
        )
        for i in range(count)
    ]
    events, seconds = 0, 0.0
    step = max(1, -(-count // rounds))
    for start in range(0, count, step):
        decided = []
        started = time.perf_counter()
        for command in commands[start : start + step]:
            decided.extend(handler.handle(command).events)
        seconds += time.perf_counter() - started
        events += len(decided)
        raw.single(Work.of(decided))
    measure = f"append, 1 event per transaction ({store})"
    return count / seconds, Pair(measure, events / seconds, raw.rate, "events/s", True, 0.9)


def fill(
    ledger: object, raw: RawAppender | None, args: argparse.Namespace
) -> tuple[int, Growth, Growth]:
    """Append the workload in batched transactions, each batch followed by the raw library
    appending the same events ``--raw-batch`` per transaction (unless ``raw`` is None);
    returns (events, growths).

    Only the handler's work (and the library's, for the raw side) is timed, not the
    generation of the commands.
    """
    handler = ledger.handler  # type: ignore[attr-defined]
    project, bare = Growth(), Growth()
    events = 0
    pending: list[Command] = []

    def flush() -> int:
        started = time.perf_counter()
        written = handler.handle(*pending).events
        project.add(len(written), time.perf_counter() - started)
        pending.clear()
        if raw is not None:
            bare.add(len(written), raw.batched(Work.of(written), args.raw_batch))
        return len(written)

    for group in listing_commands(args.users, args.sources, args.apps):
        pending.extend(group)
        if len(pending) >= args.chunk:
            events += flush()
            if events >= args.events:
                break
    if pending and events < args.events:
        events += flush()
    return events, project, bare


def fresh(command: list[str]) -> list[str]:
    """``command`` started by a small shell that forks it, not by this process.

    A child's peak RSS (``ru_maxrss``) is at least the RSS of the process it was forked from,
    kept across ``exec``: started from here, after the fill, every child would report at least
    this process's couple of hundred MiB. The shell's fork starts the count from the shell's.
    """
    return ["/bin/sh", "-c", '"$@"; exit $?', "sh", *command]


def run_child(args: list[str], env: dict[str, str]) -> tuple[int, float, str]:
    """Run a market-ledger command; returns (exit code, seconds, output)."""
    started = time.perf_counter()
    done = subprocess.run(
        fresh([sys.executable, "-m", "market_ledger", *args]),
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    return done.returncode, seconds, (done.stdout + done.stderr).strip()


def last_line(output: str, start: str) -> str:
    """The command's result line (its log lines come first)."""
    lines = [line for line in output.splitlines() if line.startswith(start)]
    return lines[-1] if lines else output.splitlines()[-1] if output else ""


def peak_of(output: str, pattern: str) -> float:
    """A peak RSS (MiB) a rebuild reported in its output, 0 if it is not there."""
    found = re.search(pattern, output)
    return float(found.group(1).replace(",", "")) if found else 0.0


def show(pair: Pair, what: str) -> None:
    """The raw figure of a pair, under the project's."""
    print(f"  raw library, {what}: {pair.raw:,.0f} {pair.unit}; ratio {pair.ratio:.0%}")


def postgres_single(url: str, count: int, users: int, sources: int) -> Pair:
    """The single-command pair on PostgreSQL: the ledger and the raw library each in a fresh
    schema of the database at ``url`` (dropped afterwards)."""
    suffix = uuid.uuid4().hex[:8]
    schemas = [f"bench_core_{suffix}", f"bench_raw_{suffix}"]
    with psycopg.connect(url, autocommit=True) as conn:
        for schema in schemas:
            conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        ledger = bootstrap(Settings(database_url=url), schema=schemas[0])
        raw = RawAppender(f"{url}?schema={schemas[1]}")
        try:
            ledger.handler.handle(*setup_commands(users, sources))
            commands, pair = measure_single(ledger, raw, count, "PostgreSQL")
        finally:
            ledger.close()
            raw.close()
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            for schema in schemas:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    print(
        f"append on PostgreSQL, 1 command per transaction: {pair.project:,.0f} events/s "
        f"({commands:,.0f} commands/s, {count} commands)"
    )
    show(pair, "1 event per transaction")
    return pair


def rebuild_pairs(url: str, head: int) -> tuple[list[Pair], list[tuple[int, str]], int]:
    """Rebuild every view, and read the log raw, each in a child process: the pairs, the
    (exit code, output) of each rebuild and the exit code of ``rebuild --verify``."""
    started = time.perf_counter()
    done = subprocess.run(
        fresh([sys.executable, str(Path(__file__).with_name("core_anchors.py")), "read", url]),
        capture_output=True,
        text=True,
    )
    raw_seconds = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"the raw read of the log failed:\n{done.stdout}\n{done.stderr}")
    raw = json.loads(done.stdout.splitlines()[-1])
    if raw["events"] != head:
        raise RuntimeError(f"the raw read saw {raw['events']} events, the log has {head}")

    env = {**os.environ, "LEDGER_DATABASE_URL": url}
    code, seconds, output = run_child(["rebuild"], env)
    rebuilt = (code, output)
    main_peak = peak_of(output, r"peak RSS of this process ([\d,]+) MiB")
    history_peak = peak_of(output, r"second process \(peak RSS ([\d,]+) MiB\)")
    peak = main_peak + history_peak
    print(
        f"rebuild: {last_line(output, 'rebuilt')} (exit {code}, {seconds:.1f} s wall; "
        f"+ {history_peak:,.0f} MiB for the history process: {peak:,.0f} MiB "
        "in all, at most)"
    )
    pairs = [
        Pair(
            "rebuild every view vs read the log",
            head / seconds,
            head / raw_seconds,
            "events/s",
            True,
            0.5,
        ),
        Pair("rebuild peak RSS vs the 300 MiB budget", peak, BUDGET_MIB, "MiB", False, 1.0),
        Pair("rebuild peak RSS vs read the log", peak, raw["peak_rss_mib"], "MiB", False),
    ]
    show(pairs[0], f"select and decode the whole log ({raw_seconds:.1f} s wall)")
    print(f"  raw library, peak RSS of that read: {raw['peak_rss_mib']:,.0f} MiB")
    code, seconds, output = run_child(["rebuild", "--verify"], env)
    print(f"rebuild --verify: exit {code} in {seconds:.1f} s; {last_line(output, 'verify:')}")
    for line in output.splitlines():  # the stages of the rebuild and the history process
        if "rebuild:" in line:
            print("  " + line.split("INFO ", 1)[-1])
    return pairs, [rebuilt, (code, output)], code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--sources", type=int, default=3)
    parser.add_argument("--apps", type=int, default=300, help="apps per source")
    parser.add_argument("--chunk", type=int, default=2000, help="commands per transaction")
    parser.add_argument("--raw-batch", type=int, default=400, help="raw events per transaction")
    parser.add_argument("--single", type=int, default=5000)
    parser.add_argument("--db", default="var/bench/ledger.db")
    parser.add_argument("--postgres", metavar="URL", help="also measure single appends there")
    parser.add_argument(
        "--rebuild-only",
        action="store_true",
        help="only the rebuild pair, on the store at --db (built, and kept, if there is none)",
    )
    args = parser.parse_args()

    if args.rebuild_only:
        rebuild_only(args)
        return
    db = Path(args.db)
    db.parent.mkdir(parents=True, exist_ok=True)
    for leftover in db.parent.glob(db.name + "*"):
        leftover.unlink()
    raw_db = db.with_name(db.name + "-raw.db")  # removed with the leftovers above
    url = f"sqlite:///{db}"
    ledger = bootstrap(Settings(database_url=url))
    raw = RawAppender(f"sqlite:///{raw_db}")
    setup = ledger.handler.handle(*setup_commands(args.users, args.sources)).events
    raw.batched(Work.of(setup), args.raw_batch)  # the streams the workload then appends to
    raw.seconds, raw.events = 0.0, 0

    single_commands, single = measure_single(ledger, raw, args.single, "SQLite")
    print(
        f"append, 1 command per transaction: {single.project:,.0f} events/s "
        f"({single_commands:,.0f} commands/s, {args.single} commands)"
    )
    show(single, "1 event per transaction")
    raw.seconds, raw.events = 0.0, 0
    events, growth, raw_growth = fill(ledger, raw, args)
    batched = Pair(
        "append, batched", events / sum(s for _, s in growth.steps), raw.rate, "events/s", True, 0.6
    )
    print(
        f"append, {args.chunk} commands per transaction: {batched.project:,.0f} events/s "
        f"({events:,} events, {events / len(growth.steps):,.0f} per transaction)"
    )
    show(batched, f"{args.raw_batch} events per transaction")
    (first, last), (raw_first, raw_last) = growth.first_and_last, raw_growth.first_and_last
    growing = Pair(
        "append, batched: last 10 % vs first 10 % of the log", last, first, "events/s", True, 0.8
    )
    print(
        f"  as the log grows: {first:,.0f} events/s over its first 10 %, {last:,.0f} over its "
        f"last 10 % ({growing.ratio:.0%}; raw library {raw_first:,.0f} -> {raw_last:,.0f}, "
        f"{raw_last / raw_first if raw_first else 0:.0%})"
    )
    head = ledger.projector.head()
    ledger.close()
    raw.close()
    size = sum(f.stat().st_size for f in db.parent.glob(db.name + "*") if f.name.find("-raw") < 0)
    print(f"log: {head:,} events, {size / 2**20:,.0f} MiB on disk ({size / head:,.0f} B/event)")

    pairs = [single, batched, growing]
    if args.postgres:
        pairs.append(postgres_single(args.postgres, args.single, args.users, args.sources))
    rebuild, runs, code = rebuild_pairs(url, head)
    pairs += rebuild
    report = {
        "single_events_per_s": round(single.project),
        "batched_events_per_s": round(batched.project),
        "events": head,
        "verify_exit": code,
    }
    print_pairs(pairs, report)
    failed = [out for exit_code, out in runs if exit_code]
    if failed:  # the figures of a failed rebuild measure nothing: say so by the exit status
        print("\n".join(failed), file=sys.stderr)
        sys.exit(1)


def rebuild_only(args: argparse.Namespace) -> None:
    """The rebuild pair on the store at ``--db``, filled first (no raw side) if it is new."""
    db = Path(args.db)
    db.parent.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{db}"
    ledger = bootstrap(Settings(database_url=url))
    try:
        head = ledger.projector.head()
        if head == 0:
            ledger.handler.handle(*setup_commands(args.users, args.sources))
            events, growth, _ = fill(ledger, None, args)
            print(f"store: {events:,} events appended ({growth.rate:,.0f} events/s), kept")
            head = ledger.projector.head()
        else:
            print(f"store: {head:,} events, reused")
    finally:
        ledger.close()
    pairs, runs, code = rebuild_pairs(url, head)
    print_pairs(pairs, {"events": head, "verify_exit": code})
    failed = [out for exit_code, out in runs if exit_code]
    if failed:
        print("\n".join(failed), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
