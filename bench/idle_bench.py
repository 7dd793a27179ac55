"""Benchmark of an idle service: the CPU that `serve` and its projector child use doing nothing.

    .venv/bin/python bench/idle_bench.py [--seconds 30] [--settle 10]

Starts `market-ledger serve` on a fresh SQLite store with the example catalog as its source
(as `make run` does, NATS off), lets the first cycle finish (``--settle`` seconds), then reads
the CPU time of the service and of each of its child processes from /proc before and after
``--seconds`` of idling. Linux only.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CATALOG = ROOT / "market_ledger" / "examples" / "catalog.json"
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def role_of(pid: int) -> str:
    """What a child of the service is, from its command line."""
    try:
        line = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return f"pid {pid} (gone)"
    if "spawn_main" in line:
        return "projector"
    if "resource_tracker" in line:
        return "resource tracker"
    return line[:60]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="idle time measured")
    parser.add_argument("--settle", type=float, default=10.0, help="time for the first cycle")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="idle-bench-") as work:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("NATS_", "LEDGER_"))}
        env.update(LEDGER_DATABASE_URL=f"sqlite:///{work}/ledger.db", PIPELINE_INTERVAL="30")
        ledger = [sys.executable, "-m", "market_ledger"]
        subprocess.run(
            [
                *ledger,
                "source",
                "add",
                "market.olares",
                "--type",
                "remote",
                "--url",
                CATALOG.as_uri(),
            ],
            env=env,
            cwd=work,
            check=True,
            capture_output=True,
        )
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        with open(Path(work) / "serve.log", "w") as log:
            service = subprocess.Popen(
                [*ledger, "serve", "--http", f"127.0.0.1:{port}"],
                env=env,
                cwd=work,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            time.sleep(args.settle)
            pids = [service.pid, *children_of(service.pid)]
            names = {pid: role_of(pid) for pid in pids}
            names[service.pid] = "serve"
            before = {pid: cpu_seconds(pid) for pid in pids}
            time.sleep(args.seconds)
            after = {pid: cpu_seconds(pid) for pid in pids}
        finally:
            service.send_signal(signal.SIGTERM)
            service.wait(30)
        report = {}
        for pid in pids:
            name = names[pid]
            used = after[pid] - before[pid]
            report[name] = round(100 * used / args.seconds, 2)
            share = report[name]
            print(f"{name}: {used:.2f} CPU s in {args.seconds:g} s = {share:.1f} % of a core")
        print(json.dumps({"idle_seconds": args.seconds, "percent_of_a_core": report}))


if __name__ == "__main__":
    main()
