"""Benchmark of the event-sourced core: append rates, rebuild rate, peak memory.

    .venv/bin/python bench/core_bench.py [--events 1000000] [--db var/bench.db]

1. single: one command per transaction (each a first offer, so one event each);
2. batched: commands handled in transactions of ``--chunk`` commands;
3. fills the store with the realistic workload up to ``--events`` events (batched);
4. runs ``market-ledger rebuild`` in a child process and reports its rate and the peak RSS
   of its two processes (the command's and the one filling the history table);
5. runs ``market-ledger rebuild --verify`` on the same store and reports its exit code.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.workload import T0, listing_commands, setup_commands
from market_ledger.adapters.config import Settings
from market_ledger.bootstrap import bootstrap
from market_ledger.domain.decider import Command
from market_ledger.domain.installation import ObserveInstallationState


def measure_single(ledger: object, count: int) -> tuple[float, float]:
    """One state observation per transaction (one event each): (commands/s, events/s)."""
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
    events = 0
    started = time.perf_counter()
    for command in commands:
        events += len(handler.handle(command).events)
    seconds = time.perf_counter() - started
    return count / seconds, events / seconds


def fill(ledger: object, args: argparse.Namespace) -> tuple[int, float]:
    """Append the workload in batched transactions; returns (events, events/s).

    Only the handler's work is timed, not the generation of the commands.
    """
    handler = ledger.handler  # type: ignore[attr-defined]
    events = 0
    spent = 0.0
    pending: list[Command] = []

    def flush() -> int:
        nonlocal spent
        started = time.perf_counter()
        written = len(handler.handle(*pending).events)
        spent += time.perf_counter() - started
        pending.clear()
        return written

    for group in listing_commands(args.users, args.sources, args.apps):
        pending.extend(group)
        if len(pending) >= args.chunk:
            events += flush()
            if events >= args.events:
                break
    if pending and events < args.events:
        events += flush()
    return events, events / spent


def run_child(args: list[str], env: dict[str, str]) -> tuple[int, float, str]:
    """Run a market-ledger command; returns (exit code, seconds, output)."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "market_ledger", *args], env=env, capture_output=True, text=True
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--sources", type=int, default=3)
    parser.add_argument("--apps", type=int, default=300, help="apps per source")
    parser.add_argument("--chunk", type=int, default=2000, help="commands per transaction")
    parser.add_argument("--single", type=int, default=5000)
    parser.add_argument("--db", default="var/bench/ledger.db")
    args = parser.parse_args()

    db = Path(args.db)
    db.parent.mkdir(parents=True, exist_ok=True)
    for leftover in db.parent.glob(db.name + "*"):
        leftover.unlink()
    url = f"sqlite:///{db}"
    ledger = bootstrap(Settings(database_url=url))
    ledger.handler.handle(*setup_commands(args.users, args.sources))

    single_commands, single = measure_single(ledger, args.single)
    print(
        f"append, 1 command per transaction: {single:,.0f} events/s "
        f"({single_commands:,.0f} commands/s, {args.single} commands)"
    )
    events, batched = fill(ledger, args)
    print(
        f"append, {args.chunk} commands per transaction: {batched:,.0f} events/s "
        f"({events:,} events)"
    )
    head = ledger.projector.head()
    ledger.close()
    size = sum(f.stat().st_size for f in db.parent.glob(db.name + "*"))
    print(f"log: {head:,} events, {size / 2**20:,.0f} MiB on disk ({size / head:,.0f} B/event)")

    env = {**os.environ, "LEDGER_DATABASE_URL": url}
    code, seconds, output = run_child(["rebuild"], env)
    rebuilt = (code, output)
    main_peak = peak_of(output, r"peak RSS of this process ([\d,]+) MiB")
    history_peak = peak_of(output, r"second process \(peak RSS ([\d,]+) MiB\)")
    print(
        f"rebuild: {last_line(output, 'rebuilt')} (exit {code}, {seconds:.1f} s wall; "
        f"+ {history_peak:,.0f} MiB for the history process: {main_peak + history_peak:,.0f} MiB "
        "in all, at most)"
    )
    code, seconds, output = run_child(["rebuild", "--verify"], env)
    print(f"rebuild --verify: exit {code} in {seconds:.1f} s; {last_line(output, 'verify:')}")
    for line in output.splitlines():  # the stages of the rebuild and the history process
        if "rebuild:" in line:
            print("  " + line.split("INFO ", 1)[-1])
    print(
        json.dumps(
            {
                "single_events_per_s": round(single),
                "batched_events_per_s": round(batched),
                "events": head,
                "verify_exit": code,
            }
        )
    )
    failed = [out for exit_code, out in (rebuilt, (code, output)) if exit_code]
    if failed:  # the figures of a failed rebuild measure nothing: say so by the exit status
        print("\n".join(failed), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
