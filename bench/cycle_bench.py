"""Benchmark of the pipeline cycle on the real catalog at scale.

    .venv/bin/python bench/cycle_bench.py [--users 20] [--latency 0.02] [--concurrency 16]

A fake market (the newest state of the real Olares catalog history) and a fake chart-repo
answering every render after ``--latency`` seconds run in a second process, over loopback
HTTP. The ledger (SQLite under var/) is offered the catalog for ``--users`` users. Reported:
the first cycle against its lower bound (renders x latency / concurrency), the same renders
posted again by a bare client (:mod:`bench.cycle_bare`: what the fake and the machine allow),
and a cycle in which nothing changed.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.cycle_bare import bare_replay
from bench.pairs import Pair, print_pairs
from market_ledger.adapters.config import Settings
from market_ledger.adapters.health import HealthBoard
from market_ledger.bootstrap import bootstrap, connection_pool, remote_systems
from market_ledger.domain.market_source import ConfigureSource
from market_ledger.domain.user import RegisterUser
from market_ledger.projector_process import ProjectorProcess
from market_ledger.runtime import standard_cycle
from market_ledger.service.context import CycleContext
from market_ledger.service.handler import utc_now
from market_ledger.watched_handler import WatchedHandler


def serve_fakes(latency: float, pipe: Any, stop: Any) -> None:
    """In the second process: the market and chart-repo fakes, until told to stop; asked
    ``"renders"`` on the pipe, it answers the bodies of the render calls it was sent."""
    from tests.support.fakes.chart_repo import FakeChartRepo
    from tests.support.fakes.market import FakeMarket, load_timeline

    market = FakeMarket.from_timeline(up_to_seq=len(load_timeline()))
    with market, FakeChartRepo(render_latency=latency) as chart_repo:
        pipe.send((market.url, chart_repo.host_port, len(market.apps)))
        while not stop.is_set():
            if pipe.poll(0.1) and pipe.recv() == "renders":
                pipe.send([request.body for request in chart_repo.requests_to("sync-app")])


async def cycle(ledger: Any, settings: Settings, pipeline: Any) -> dict[str, Any]:
    async with connection_pool(settings.hydration_concurrency) as http:
        remote = remote_systems(settings, http)
        context = CycleContext(ledger, remote, clock=utc_now)
        return await pipeline.run(context)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--folder", default="var/bench-cycle")
    args = parser.parse_args()

    context = multiprocessing.get_context("spawn")
    pipe, fakes_end = context.Pipe()
    stop = context.Event()
    fakes = context.Process(target=serve_fakes, args=(args.latency, fakes_end, stop), daemon=True)
    fakes.start()
    market_url, chart_repo_host, app_count = pipe.recv()

    folder = Path(args.folder)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    settings = Settings(
        database_url=f"sqlite:///{folder}/ledger.db",
        chart_repo_host=chart_repo_host,
        hydration_concurrency=args.concurrency,
        sync_interval=3600,
        detail_batch_pause=0.0,
    )
    ledger = bootstrap(settings)
    ledger.handler.handle(
        ConfigureSource("market.olares", "remote", market_url),
        *(RegisterUser(f"user{u:02d}") for u in range(args.users)),
    )
    pipeline = standard_cycle(ledger)  # one cycle object, as ``serve`` keeps it
    projector = ProjectorProcess(settings)  # the views follow in their own process, as in serve
    projector.start()
    # and every commit wakes it, as in serve
    ledger.handler = WatchedHandler(
        ledger.handler, HealthBoard(), on_commit=lambda _position: projector.wake()
    )
    try:
        started, cpu = time.perf_counter(), time.process_time()
        first = asyncio.run(cycle(ledger, settings, pipeline))
        first_seconds = time.perf_counter() - started
        first_cpu = time.process_time() - cpu
        renders = first["phases"]["hydrate"]["rendered"] + first["phases"]["hydrate"]["failed"]
        bound = renders * args.latency / args.concurrency
        quiet_times = []
        for _ in range(5):
            started = time.perf_counter()
            quiet = asyncio.run(cycle(ledger, settings, pipeline))
            quiet_times.append(time.perf_counter() - started)
        assert quiet["phases"]["hydrate"]["due"] == 0, quiet
        projector.stop()
        pipe.send("renders")
        bodies = pipe.recv()
        bare_seconds = bare_replay(chart_repo_host, bodies, args.concurrency)
    finally:
        projector.stop()
        ledger.close()
        stop.set()
        fakes.join(5)
    phases = {name: report["seconds"] for name, report in first["phases"].items()}
    print(
        f"catalog: {app_count} apps, {args.users} users; chart-repo latency "
        f"{args.latency * 1000:.0f} ms, concurrency {args.concurrency}"
    )
    print(f"CPU of the pipeline's process in the first cycle: {first_cpu:.2f} s")
    print(
        f"first cycle: {first_seconds:.2f} s for {renders} renders; lower bound "
        f"{bound:.2f} s; ratio {first_seconds / bound:.2f} (phases: {phases})"
    )
    print(
        f"a bare client posting the same {len(bodies)} renders again: {bare_seconds:.2f} s; "
        f"ratio to the bound {bare_seconds / bound:.2f}; the first cycle takes "
        f"{first_seconds - bare_seconds:.2f} s more"
    )
    quiet_times.sort()
    print(
        f"no-change cycle: median {quiet_times[2] * 1000:.0f} ms, "
        f"worst {quiet_times[-1] * 1000:.0f} ms (5 runs)"
    )
    report = {
        "first_cycle_s": round(first_seconds, 2),
        "lower_bound_s": round(bound, 2),
        "ratio": round(first_seconds / bound, 2),
        "no_change_median_ms": round(quiet_times[2] * 1000),
        "bare_replay_s": round(bare_seconds, 2),
    }
    pairs = [
        Pair("first cycle vs its lower bound", first_seconds, bound, "s", False, 1 / 1.15),
        Pair("first cycle vs a bare client's renders", first_seconds, bare_seconds, "s", False),
    ]
    print_pairs(pairs, report)


if __name__ == "__main__":
    main()
