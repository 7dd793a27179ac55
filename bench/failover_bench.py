"""Failover and scale-out figures of several ``serve`` instances on one PostgreSQL.

* failover per role: from kill -9 of the role's holder until another instance holds the
  role in ``role_leases`` AND its job is seen working (cycle: the catalog timeline's next
  change set offered; projector: the views' position past the head at the kill; notifier: a
  notification of a message published after the kill; tasks: the sweep timing out an
  accepted task whose deadline passed), with the default lease settings; ``--trials`` per role.
* intake throughput with 1, 2, 3 instances: N app-state messages published as fast as
  possible, until all are in the log.
* HTTP read throughput of ``/market/hash`` spread over 1, 2, 3 instances.

    python bench/failover_bench.py --postgres postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.failover_scale import APPS, publish, scale
from tests.e2e.test_several_instances import install, offered, task_outcome
from tests.support.fakes.app_service import FakeAppService
from tests.support.instances import ROLES, USER, Instances, cluster_env, fresh_schema
from tests.support.nats_server import nats_for_test
from tests.support.nats_traffic import Traffic
from tests.support.timeline_catalog import TimelineCatalog

SILENT_APP = "alist"


def job_checks(
    cluster: Instances, traffic: Traffic, app: str, timeline: TimelineCatalog
) -> dict[str, Any]:
    """Per role, the check that its job works, armed at the kill."""
    changed = timeline.advance()
    head = cluster.head()
    notices = len(traffic.notices_now())
    asyncio.run(publish(traffic.nats, [f"fo-{time.monotonic_ns()}"], app))
    return {
        "cycle": lambda: all(offered(cluster, a, v) == 1 for a, v in changed.items()),
        "projector": lambda: cluster.projected() > head,
        "notifier": lambda: len(traffic.notices_now()) > notices,
    }


def failover(
    cluster: Instances, traffic: Traffic, trials: int, timeline: TimelineCatalog
) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {role: [] for role in ROLES}
    while min(len(t) for t in times.values()) < trials:
        role = min(ROLES, key=lambda r: len(times[r]))
        held = cluster.wait_roles_held(60)
        victim = cluster.by_name(held[role])
        lost = [r for r in ROLES if held[r] == victim.name]
        survivor = next(m for m in cluster.live() if m is not victim)
        task_id = install(survivor, SILENT_APP)
        time.sleep(1.2)  # accepted and past its deadline: only a sweep ends it now
        swept_before = task_outcome(survivor, task_id) == "timed_out"
        victim.kill()
        started = time.monotonic()
        checks = job_checks(cluster, traffic, APPS[0], timeline)
        checks["tasks"] = lambda m=survivor, t=task_id: task_outcome(m, t) == "timed_out"
        pending = [r for r in lost if not (r == "tasks" and swept_before)]
        while pending:
            held_now = cluster.holders()
            for r in list(pending):
                taken = held_now[r] not in (None, victim.name)
                if taken and checks[r]():
                    times[r].append(time.monotonic() - started)
                    pending.remove(r)
            if time.monotonic() - started > 60:
                raise SystemExit(f"no failover of {pending} within 60 s")
            time.sleep(0.05)
        victim.start()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", required=True, help="postgresql://... (a schema is made)")
    parser.add_argument("--trials", type=int, default=3, help="failovers measured per role")
    parser.add_argument("--messages", type=int, default=500, help="messages per intake run")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per read run")
    parser.add_argument("--ttl", default="6", help="LEDGER_LEASE_TTL")
    parser.add_argument("--retry", default="1", help="LEDGER_LEASE_RETRY")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        with (
            nats_for_test(workdir, own=True) as nats,
            FakeAppService(nats_url=nats.url, subject_prefix=nats.names.app_state[:-2]) as fake,
            fresh_schema(args.postgres) as url,
        ):
            fake.accept_silently(SILENT_APP)
            env = cluster_env(
                url, nats, workdir, LEDGER_LEASE_TTL=args.ttl, LEDGER_LEASE_RETRY=args.retry,
                PIPELINE_INTERVAL="1", LEDGER_TASK_SWEEP_INTERVAL="30", LEDGER_TASK_DEADLINE="1",
                LEDGER_TASK_SYNC_WAIT="0", APP_SERVICE_SERVICE_HOST=fake.host,
                APP_SERVICE_SERVICE_PORT=str(fake.port), REPO_URL_HOST="chart-repo.test",
            )  # fmt: skip
            cluster = Instances(env, workdir).start()
            try:
                with Traffic(nats, USER, APPS).running() as traffic:
                    timeline = TimelineCatalog(cluster.catalog, keep=[SILENT_APP, *APPS])
                    times = failover(cluster, traffic, args.trials, timeline)
                figures = scale(cluster, nats, args.messages, args.seconds)
            finally:
                cluster.close()
    print(f"failover, kill -9 of the holder (ttl {args.ttl} s, retry {args.retry} s):")
    report: dict[str, Any] = {"failover_s": {}, **figures}
    for role in ROLES:
        spans = sorted(times[role])
        low, mid, high = spans[0], statistics.median(spans), spans[-1]
        report["failover_s"][role] = {"min": low, "median": mid, "max": high, "n": len(spans)}
        print(f"  {role:<10} min {low:5.2f} s  median {mid:5.2f} s  max {high:5.2f} s")
    for what, unit in (
        ("intake_msgs_per_s", "messages/s"),
        ("intake_conflicts", "writes decided again after losing a race"),
        ("hash_reads_per_s", "reads/s"),
    ):
        rates = ", ".join(f"{n}: {rate}" for n, rate in figures[what].items())
        print(f"{what.split('_')[0]} with 1, 2, 3 instances ({unit}): {rates}")
    print(f"failed reads/s: {figures['failed']}, parked messages: {figures['parked']}")
    report["load_average"] = [round(load, 2) for load in os.getloadavg()]
    print(f"load average (1, 5, 15 min) at the end: {report['load_average']}")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
