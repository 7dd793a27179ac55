"""Latency of the market reads over HTTP under open-loop load.

    .venv/bin/python bench/http_bench.py [--listings 1000] [--rate 200] [--seconds 10]
                                         [--routes hash,data] [--churn 0] [--check]

1. fills a fresh store (SQLite under ``--db``) with one user's catalog of ``--listings`` apps
   from the realistic workload (renders in chart-repo's shape, failures, parked renders,
   upgrades, installed apps), and brings the views to the head of the log;
2. starts the API in a second process (``serve_http`` on a loopback port), so the load
   generator does not share its interpreter;
3. sends ``GET /market/hash`` and ``GET /market/data`` alternately at ``--rate`` requests/s
   in all, open loop: each request leaves at its scheduled time whether or not the earlier
   ones have been answered, and its latency counts from that time, so queueing shows. The
   client is a minimal keep-alive HTTP/1.1 client on asyncio streams, so that the load
   generator, which shares the CPUs, costs little per request;
4. with ``--churn N``, a third process appends N events/s for the user meanwhile
   (installation progress) and keeps the views caught up, as the service does: every event
   is a commit and moves the views' position, so the answers kept for an unchanged store
   and for a views position are read again (:mod:`bench.churn`);
5. prints p50, p99 and max per route after a one-second warm-up, the CPU each process spent
   per request, and the load average (other work on the machine shows in the tail);
   ``--check`` exits 1 when a target of :mod:`bench.http_bare` is missed (hash p99 <= 5 ms,
   data p99 <= 10 ms);
6. then, in the same run and with the same churn, the bare anchor (:mod:`bench.http_bare`):
   the same load on a route of the same server process (uvicorn + Starlette, the same
   settings) that answers a constant body as large as each route's answer; the last line is
   the JSON report with the bare figures (``bare``) and the pairs (:mod:`bench.pairs`).
   ``--no-bare`` skips it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from bench.churn import start_churn, stop_churn
from bench.http_bare import (
    ABSOLUTE_TARGETS_MS,
    absolute_targets,
    bare_app,
    bare_paths,
    http_pairs,
)
from bench.pairs import print_pairs
from bench.workload import listing_commands, setup_commands
from market_ledger.adapters.config import Settings
from market_ledger.adapters.http_api.common import USER_HEADER
from market_ledger.adapters.http_api.server import create_app, serve_http
from market_ledger.bootstrap import Ledger, bootstrap
from market_ledger.domain.decider import Command

USER = "user0000"
ROUTES = {
    "hash": "/app-store/api/v2/market/hash",
    "data": "/app-store/api/v2/market/data",
}
#: commands per transaction while the store is filled
FILL_CHUNK = 2000


def fill(url: str, listings: int) -> tuple[Ledger, int]:
    ledger = bootstrap(Settings(database_url=url))
    commands: list[Command] = list(setup_commands(1, 1))
    for group in listing_commands(1, 1, listings):
        commands.extend(group)
    for start in range(0, len(commands), FILL_CHUNK):  # in transactions, as core_bench does
        ledger.handler.handle(*commands[start : start + FILL_CHUNK])
    ledger.catch_up()
    return ledger, ledger.projector.head()


def serve(url: str) -> None:
    """The server process: the API over the store at ``url`` and the bare route on a port of
    its own, until stdin closes."""
    ledger = bootstrap(Settings(database_url=url))
    app = create_app(ledger)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_reader(sys.stdin.fileno(), stop.set)  # the parent closes our stdin
        bare_port: asyncio.Future[Any] = loop.create_future()
        bare = asyncio.create_task(
            serve_http(bare_app(), "127.0.0.1", 0, stop, on_listening=bare_port.set_result)
        )
        await asyncio.wait({bare, bare_port}, return_when=asyncio.FIRST_COMPLETED)
        if bare.done():
            bare.result()  # it stopped before listening: say why

        def listening(port: int) -> None:
            print(f"listening {port} bare {bare_port.result()}", flush=True)

        await serve_http(app, "127.0.0.1", 0, stop, on_listening=listening)
        await bare

    asyncio.run(run())
    ledger.close()


def start_server(url: str) -> tuple[subprocess.Popen[str], str, str]:
    """The server process, the API's base URL and the bare route's."""
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    line = server.stdout.readline().strip()
    if not line.startswith("listening "):
        server.kill()
        raise SystemExit(f"the server did not start: {line!r}")
    words = line.split()
    return server, f"http://127.0.0.1:{words[1]}", f"http://127.0.0.1:{words[3]}"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Connection:
    """One keep-alive HTTP/1.1 connection: a minimal client, so that the load generator
    spends little CPU per request and measures the server rather than itself."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def get(self, path: str, headers: dict[str, str]) -> tuple[int, int]:
        """(status, body length) of ``GET path``."""
        lines = [f"GET {path} HTTP/1.1", "Host: bench"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        length = 0
        for line in header_lines:
            name, _, value = line.partition(":")
            if name.lower() == "content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return int(status_line.split()[1]), length

    def close(self) -> None:
        self.writer.close()


async def load(
    base_url: str,
    names: list[str],
    rate: float,
    seconds: float,
    warmup: float,
    routes: dict[str, str] = ROUTES,
) -> dict[str, Any]:
    """Open-loop load on ``routes[name]`` for each of ``names`` in turn; each request takes a
    free connection (opening one when none is)."""
    latencies: dict[str, list[float]] = {name: [] for name in names}
    failures: dict[str, int] = dict.fromkeys(names, 0)
    failed_statuses: dict[str, int] = {}
    headers = {USER_HEADER: USER}
    host, port = base_url.removeprefix("http://").split(":")
    idle: list[Connection] = []
    opened: list[Connection] = []
    loop = asyncio.get_running_loop()

    async def fresh() -> Connection:
        connection = await Connection.open(host, int(port))
        opened.append(connection)
        return connection

    async def exchange(name: str) -> int:
        connection = idle.pop() if idle else None
        if connection is not None:
            try:
                status, _ = await connection.get(routes[name], headers)
                idle.append(connection)
                return status
            except (OSError, asyncio.IncompleteReadError):
                connection.close()  # the server closed it while idle: as any client, retry
        connection = await fresh()
        status, _ = await connection.get(routes[name], headers)
        idle.append(connection)
        return status

    async def one(name: str, due: float, counted: bool) -> None:
        outcome: int | str
        try:
            outcome = await exchange(name)
        except (OSError, asyncio.IncompleteReadError, ValueError) as error:
            outcome = type(error).__name__
        ok = outcome == 200
        if not ok:
            failed_statuses[str(outcome)] = failed_statuses.get(str(outcome), 0) + 1
        elapsed = loop.time() - due
        if counted:
            if ok:
                latencies[name].append(elapsed * 1000)
            else:
                failures[name] += 1

    total = int((warmup + seconds) * rate)
    cpu_before = time.process_time()
    start = loop.time() + 0.05
    tasks = []
    for i in range(total):
        due = start + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        counted = i >= warmup * rate
        tasks.append(asyncio.create_task(one(names[i % len(names)], due, counted)))
    await asyncio.gather(*tasks)
    elapsed = loop.time() - start
    client_cpu = time.process_time() - cpu_before
    for connection in opened:
        connection.close()
    report: dict[str, Any] = {
        "achieved_rate": round(total / elapsed, 1),
        "connections": len(opened),
        "client_cpu_ms_per_request": round(client_cpu * 1000 / total, 3),
        "failed_statuses": failed_statuses,
    }
    for name in names:
        values = sorted(latencies[name])
        report[name] = {
            "requests": len(values),
            "failures": failures[name],
            "p50_ms": round(statistics.median(values), 2) if values else None,
            "p99_ms": round(values[int(0.99 * (len(values) - 1))], 2) if values else None,
            "max_ms": round(values[-1], 2) if values else None,
        }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listings", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=200.0, help="requests/s, both routes")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured duration")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--churn", type=float, default=0.0, help="events/s for the user")
    parser.add_argument(
        "--routes", default="hash,data", help="which routes, taken in turn (hash, data)"
    )
    parser.add_argument("--db", default="var/bench/http.db")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--no-bare", action="store_true", help="skip the bare anchor")
    parser.add_argument("--serve", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return

    db = Path(args.db)
    db.parent.mkdir(parents=True, exist_ok=True)
    for leftover in db.parent.glob(db.name + "*"):
        leftover.unlink()
    url = f"sqlite:///{db}"
    started = time.perf_counter()
    ledger, head = fill(url, args.listings)
    print(
        f"store: {args.listings} listings for {USER}, {head:,} events, filled in "
        f"{time.perf_counter() - started:.1f} s"
    )
    server, base_url, bare_url = start_server(url)
    ledger.close()
    churner = start_churn(url, USER, args.churn) if args.churn > 0 else None
    try:
        names = [name.strip() for name in args.routes.split(",") if name.strip()]
        sizes = {
            name: len(httpx.get(base_url + ROUTES[name], headers={USER_HEADER: USER}).content)
            for name in {*names, "data"}
        }
        size = sizes["data"]
        cpu_before = cpu_seconds(server.pid)
        report = asyncio.run(load(base_url, names, args.rate, args.seconds, args.warmup))
        server_cpu = cpu_seconds(server.pid) - cpu_before
        bare = None
        if not args.no_bare:  # right after, the same load and churn, on the bare route
            paths = bare_paths(sizes)
            bare = asyncio.run(load(bare_url, names, args.rate, args.seconds, args.warmup, paths))
            bare.update(paths={name: paths[name] for name in names})
    finally:
        churned = 0 if churner is None else stop_churn(churner)
        assert server.stdin is not None
        server.stdin.close()
        server.wait(15)
    report.update(
        rate=args.rate,
        seconds=args.seconds,
        listings=args.listings,
        data_bytes=size,
        churn_events=churned,
        cpus=os.cpu_count(),
        load_average=[round(x, 2) for x in os.getloadavg()],
        server_cpu_ms_per_request=round(
            server_cpu * 1000 / max(sum(report[name]["requests"] for name in names), 1),
            2,
        ),
    )
    print(
        f"{args.rate:.0f} requests/s for {args.seconds:.0f} s (achieved "
        f"{report['achieved_rate']}/s), data answer {size / 1024:.0f} KiB, "
        f"churn {args.churn} events/s"
    )
    print(
        f"CPU per request: server {report['server_cpu_ms_per_request']} ms, load generator "
        f"{report['client_cpu_ms_per_request']} ms; {report['connections']} connections; "
        f"load average {report['load_average'][0]} on {report['cpus']} CPUs"
    )
    missed = []
    for name in names:
        r = report[name]
        print(
            f"  {ROUTES[name]:<32} p50 {r['p50_ms']} ms  p99 {r['p99_ms']} ms  "
            f"max {r['max_ms']} ms  ({r['requests']} answered, {r['failures']} failed)"
        )
        if r["p99_ms"] is None or r["p99_ms"] > ABSOLUTE_TARGETS_MS[name] or r["failures"]:
            missed.append(name)
    if bare is None:
        print(json.dumps(report))
    else:
        for name in names:
            r = bare[name]
            print(
                f"  bare {bare['paths'][name]:<27} p50 {r['p50_ms']} ms  p99 {r['p99_ms']} ms  "
                f"max {r['max_ms']} ms  ({r['requests']} answered, {r['failures']} failed)"
            )
        pairs = http_pairs(report, bare, names)
        report.update(bare=bare, absolute_targets=absolute_targets(report, names))
        print_pairs(pairs, report)
    if args.check and missed:
        print(f"target missed: {', '.join(missed)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
