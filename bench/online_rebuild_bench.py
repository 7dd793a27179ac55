"""HTTP read latency while ``market-ledger rebuild`` runs beside a serving ``serve``.

    .venv/bin/python bench/online_rebuild_bench.py [--events 1000000] [--rate 50]
                                                   [--idle 20] [--append 20] [--verify]

1. fills a fresh SQLite store (``--db``; ``--keep`` reuses one), or a PostgreSQL schema
   (``--postgres URL``, in ``--schema``, default ``bench_online``), with the realistic
   workload up to ``--events`` events (as bench/core_bench.py does) and builds its views
   with one ``rebuild``;
2. starts ``market-ledger serve`` on it (HTTP on a loopback port, no NATS, no cycles) and a
   writer process appending ``--append`` installation events/s for the whole run, which the
   service projects as it goes;
3. sends ``GET /market/hash`` and ``GET /market/data`` alternately at ``--rate`` requests/s,
   open loop (bench/http_bench.py's client), from ``--settle`` seconds after serve started:
   ``--idle`` seconds with no rebuild, then for as long as a ``market-ledger rebuild``
   started from another process runs (at niceness ``--nice``), then 5 s after;
4. prints p50, p99 and max and the failed requests per phase, the rebuild's own report
   line, and (``--verify``) the exit code of ``rebuild --verify`` once the writer stopped.
   Exits 1 when a request failed or the rebuild did.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import psycopg

from bench.churn import start_churn, stop_churn
from bench.core_bench import fill
from bench.http_bench import ROUTES, USER, Connection
from bench.workload import setup_commands
from market_ledger.adapters.config import Settings
from market_ledger.adapters.http_api.common import USER_HEADER
from market_ledger.bootstrap import bootstrap

AFTER_SECONDS = 5.0
#: the schema the store is made in with --postgres (dropped first unless --keep)
POSTGRES_SCHEMA = "bench_online"


def fresh_postgres_schema(postgres_url: str, schema: str, *, keep: bool) -> bool:
    """Make the bench's schema; whether it is new (to be filled)."""
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        found = conn.execute(
            "SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (schema,)
        ).fetchone()
        if found and keep:
            return False
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return True


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "market_ledger", *args]


async def phased_load(base_url: str, rate: float, phase: dict[str, str]) -> dict[str, Any]:
    """Open-loop load until ``phase["now"]`` is ``done``; latencies by the phase in which
    each request was due."""
    host, port = base_url.removeprefix("http://").split(":")
    headers = {USER_HEADER: USER}
    names = list(ROUTES)
    idle: list[Connection] = []
    opened: list[Connection] = []
    latencies: dict[str, list[float]] = {}
    failures: dict[str, list[str]] = {}
    loop = asyncio.get_running_loop()

    async def exchange(name: str) -> int:
        connection = idle.pop() if idle else None
        if connection is not None:
            try:
                status, _ = await connection.get(ROUTES[name], headers)
                idle.append(connection)
                return status
            except (OSError, asyncio.IncompleteReadError):
                connection.close()
        connection = await Connection.open(host, int(port))
        opened.append(connection)
        status, _ = await connection.get(ROUTES[name], headers)
        idle.append(connection)
        return status

    async def one(name: str, due: float, when: str) -> None:
        try:
            outcome: int | str = await exchange(name)
        except (OSError, asyncio.IncompleteReadError, ValueError) as error:
            outcome = type(error).__name__
        if outcome == 200:
            latencies.setdefault(when, []).append((loop.time() - due) * 1000)
        else:
            failures.setdefault(when, []).append(f"{name}: {outcome}")

    tasks = []
    start = loop.time() + 0.05
    i = 0
    while phase["now"] != "done":
        due = start + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(names[i % len(names)], due, phase["now"])))
        i += 1
    await asyncio.gather(*tasks)
    for connection in opened:
        connection.close()
    report: dict[str, Any] = {}
    for when in ("idle", "rebuild", "after"):
        values = sorted(latencies.get(when, []))
        report[when] = {
            "requests": len(values) + len(failures.get(when, [])),
            "failed": len(failures.get(when, [])),
            "failures": failures.get(when, [])[:5],
            "p50_ms": round(statistics.median(values), 2) if values else None,
            "p99_ms": round(values[int(0.99 * (len(values) - 1))], 2) if values else None,
            "max_ms": round(values[-1], 2) if values else None,
        }
    return report


async def scenario(args: argparse.Namespace, base_url: str, env: dict[str, str]) -> dict[str, Any]:
    phase = {"now": "idle"}
    load = asyncio.create_task(phased_load(base_url, args.rate, phase))
    await asyncio.sleep(args.idle)
    phase["now"] = "rebuild"
    started = time.perf_counter()
    niced = ["nice", "-n", str(args.nice)] if args.nice else []
    child = await asyncio.create_subprocess_exec(
        *niced,
        *command("rebuild"),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await child.communicate()
    seconds = time.perf_counter() - started
    phase["now"] = "after"
    await asyncio.sleep(AFTER_SECONDS)
    phase["now"] = "done"
    report = await load
    lines = output.decode(errors="replace").splitlines()
    report["rebuild_exit"] = child.returncode
    report["rebuild_seconds"] = round(seconds, 1)
    report["rebuild_line"] = next((x for x in reversed(lines) if x.startswith("rebuilt")), "")
    report["rebuild_switch"] = [
        x.split("INFO ", 1)[-1] for x in lines if "switch" in x or "swapped" in x
    ]
    report["rebuild_nice"] = args.nice
    return report


def wait_listening(base_url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"serve stopped: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("serve did not answer within 120 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--sources", type=int, default=3)
    parser.add_argument("--apps", type=int, default=300, help="apps per source")
    parser.add_argument("--chunk", type=int, default=2000, help="commands per transaction")
    parser.add_argument("--rate", type=float, default=50.0, help="HTTP requests/s")
    parser.add_argument("--idle", type=float, default=20.0, help="seconds measured before")
    parser.add_argument("--settle", type=float, default=20.0, help="seconds after serve starts")
    parser.add_argument("--nice", type=int, default=0, help="run the rebuild at this niceness")
    parser.add_argument("--keep", action="store_true", help="reuse the store at --db if any")
    parser.add_argument("--append", type=float, default=20.0, help="events/s appended")
    parser.add_argument("--verify", action="store_true", help="rebuild --verify at the end")
    parser.add_argument("--db", default="var/bench-online/ledger.db", help="and serve's log")
    parser.add_argument("--postgres", metavar="URL", help="the store in a schema of this database")
    parser.add_argument("--schema", default=POSTGRES_SCHEMA, help="with --postgres")
    parser.add_argument("--port", type=int, default=0, help="serve's HTTP port (0: a free one)")
    args = parser.parse_args()

    db = Path(args.db)
    db.parent.mkdir(parents=True, exist_ok=True)
    if args.postgres:
        url = f"{args.postgres}?schema={args.schema}"
        fresh = fresh_postgres_schema(args.postgres, args.schema, keep=args.keep)
    else:
        url = f"sqlite:///{db}"
        fresh = not (args.keep and db.exists())
        if fresh:
            for leftover in db.parent.glob(db.name + "*"):
                leftover.unlink()
    if fresh:
        ledger = bootstrap(Settings(database_url=url))
        ledger.handler.handle(*setup_commands(args.users, args.sources))
        fill(ledger, None, args)
        ledger.close()
    ledger = bootstrap(Settings(database_url=url))
    head = ledger.projector.head()
    ledger.close()
    env = {**os.environ, "LEDGER_DATABASE_URL": url, "PIPELINE_INTERVAL": "86400"}
    for name in [n for n in env if n.startswith("NATS_")]:
        del env[name]
    built = subprocess.run(command("rebuild"), env=env, capture_output=True, text=True)
    print(f"store: {head:,} events; views built: {built.stdout.strip()}", flush=True)

    log = db.parent / "serve.log"
    if not args.port:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            args.port = int(sock.getsockname()[1])
    base_url = f"http://127.0.0.1:{args.port}"
    with log.open("w") as output:
        server = subprocess.Popen(
            command("serve", "--http", f"127.0.0.1:{args.port}"),
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    writer = start_churn(url, USER, args.append, catch_up=False)  # the service projects them
    try:
        wait_listening(base_url, server, log)
        time.sleep(args.settle)  # serve's start-up work (the notifier's first pass) is done
        report = asyncio.run(scenario(args, base_url, env))
    finally:
        appended = stop_churn(writer)
    verify_exit = None
    if args.verify:
        verified = subprocess.run(
            command("rebuild", "--verify"), env=env, capture_output=True, text=True
        )
        verify_exit = verified.returncode
    server.terminate()
    server.wait(60)
    report.update(events=head, appended=appended, verify_exit=verify_exit)
    for when in ("idle", "rebuild", "after"):
        shown = report[when]
        print(
            f"{when:>8}: {shown['requests']} requests, {shown['failed']} failed, "
            f"p50 {shown['p50_ms']} ms, p99 {shown['p99_ms']} ms, max {shown['max_ms']} ms"
        )
    print(
        f"rebuild: exit {report['rebuild_exit']} in {report['rebuild_seconds']} s wall; "
        f"{report['rebuild_line']}"
    )
    for line in report["rebuild_switch"]:
        print("  " + line)
    print(json.dumps(report))
    failed = sum(report[w]["failed"] for w in ("idle", "rebuild", "after"))
    if failed or report["rebuild_exit"] != 0 or verify_exit not in (None, 0):
        sys.exit(1)


if __name__ == "__main__":
    main()
