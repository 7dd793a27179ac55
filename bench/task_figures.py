"""What the task benchmark measures and how it shows it: the requests it sent, the
notifications it received, the tasks as the views show them, and the table of a run's figures.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
from collections.abc import Sequence
from typing import Any

import attrs
import httpx
from nats.aio.msg import Msg

from market_ledger.domain.canonical import parse_instant

TASKS_PATH = "/app-store/api/v2/ledger/tasks"


@attrs.frozen
class Order:
    user: str
    app: str
    version: str


class Notices:
    """When each task's ``task_execute`` and ``task_outcome`` notification arrived."""

    def __init__(self) -> None:
        self.executed: dict[str, float] = {}
        self.outcomes: dict[str, tuple[float, str]] = {}
        self.changed = asyncio.Event()
        #: when the last message of any kind arrived
        self.last = time.monotonic()

    async def quiet(self, seconds: float) -> None:
        """Until no message has come for ``seconds`` (what the first cycle announces has gone
        out before anything is measured)."""
        while (wait := self.last + seconds - time.monotonic()) > 0:
            await asyncio.sleep(wait)

    async def receive(self, message: Msg) -> None:
        now = self.last = time.monotonic()
        payload = json.loads(message.data)
        point = payload.get("point")
        task_id = (payload.get("extensions") or {}).get("task_id")
        if not task_id:
            return
        if point == "task_execute":
            self.executed.setdefault(task_id, now)
        elif point == "task_outcome":
            self.outcomes.setdefault(task_id, (now, payload["extensions"].get("outcome", "")))
            self.changed.set()


@attrs.define
class Request:
    order: Order
    sent: float = 0.0
    #: the wall clock when it was sent, to compare with the service's recorded times
    sent_wall: float = 0.0
    answered: float = 0.0
    status: int = 0
    task_id: str = ""


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@attrs.frozen
class Viewed:
    """A task as the ``tasks`` view shows it."""

    started_at: str
    completed_at: str
    outcome: str | None


def tasks_in_views(base_url: str, users: list[str]) -> dict[str, Viewed]:
    """Every task of ``users`` in the ``tasks`` view, read over HTTP."""
    found: dict[str, Viewed] = {}
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for user in users:
            answer = client.get(TASKS_PATH, headers={"X-Bfl-User": user})
            answer.raise_for_status()
            for task in answer.json()["data"]:
                found[task["task_id"]] = Viewed(
                    task["started_at"] or "", task["completed_at"] or "", task["outcome"]
                )
    return found


def wall_seconds(instant: str) -> float:
    return parse_instant(instant).timestamp()


def figures(
    every: list[Request],
    notices: Notices,
    views: dict[str, Viewed],
    start: float,
    wall_start: float,
) -> dict[str, Any]:
    """The run's figures, from the requests, the notifications and the views."""
    ids = {r.task_id for r in every if r.task_id}
    notified = [notices.outcomes[t] for t in ids if t in notices.outcomes]
    viewed = [views[t] for t in ids if t in views]
    done = [wall_seconds(v.completed_at) for v in viewed if v.outcome == "succeeded"]
    executed = [
        notices.executed[r.task_id] - r.sent for r in every if r.task_id in notices.executed
    ]
    dispatched = [
        wall_seconds(views[r.task_id].started_at) - r.sent_wall
        for r in every
        if r.task_id in views and views[r.task_id].started_at
    ]
    answered = [r.answered - r.sent for r in every if r.status == 200]
    #: dispatch to outcome: a few times the fake's lifecycle, unless an outcome was missed
    running = [
        wall_seconds(v.completed_at) - wall_seconds(v.started_at)
        for v in viewed
        if v.completed_at and v.started_at
    ]

    def ms(values: list[float], fraction: float) -> float:
        return round(1000 * percentile(values, fraction), 1)

    return {
        "tasks": len(every),
        "answered_200": len(answered),
        "succeeded_notified": sum(1 for _, outcome in notified if outcome == "succeeded"),
        "succeeded_in_views": len(done),
        "without_outcome": len(ids) - len(notified),
        "drain_notified_s": round(max(at for at, _ in notified) - start, 3) if notified else None,
        "drain_log_s": round(max(done) - wall_start, 3) if done else None,
        "submitted_s": round(max(r.answered for r in every) - start, 3),
        "execute_p50_ms": ms(executed, 0.50),
        "execute_p99_ms": ms(executed, 0.99),
        "dispatch_p50_ms": ms(dispatched, 0.50),
        "dispatch_p99_ms": ms(dispatched, 0.99),
        "answer_p50_ms": ms(answered, 0.50),
        "answer_p99_ms": ms(answered, 0.99),
        "slowest_outcome_s": round(max(running), 3) if running else None,
    }


ROWS = (("no hang", "without"), ("one app hangs", "with_hang"))


COLUMNS = (
    ("drain s", "drain_notified_s", ".3f"),
    ("log s", "drain_log_s", ".3f"),
    ("disp p50", "dispatch_p50_ms", ".1f"),
    ("disp p99", "dispatch_p99_ms", ".1f"),
    ("exec p50", "execute_p50_ms", ".1f"),
    ("exec p99", "execute_p99_ms", ".1f"),
    ("ans p50", "answer_p50_ms", ".1f"),
    ("ans p99", "answer_p99_ms", ".1f"),
    ("submit s", "submitted_s", ".3f"),
    ("slow s", "slowest_outcome_s", ".3f"),
    ("serve CPU", "serve_cpu_s", ".2f"),
    ("proj CPU", "projector_cpu_s", ".2f"),
)
LEGEND = """\
drain s: first request to the last task_outcome notification; ratio: drain / bound;
log s: first request to the last outcome's time in the log (completed_at in the tasks view);
disp: request to the task's TaskDispatched in the log (started_at in the view), ms;
exec: request to its task_execute notification, ms; ans: request to the HTTP answer, ms;
submit s: first request to the last answer; slow s: the longest from a TaskDispatched to
its outcome in the log (tens of seconds: an outcome the sweep found late);
ok: outcomes succeeded (notified) / tasks;
serve CPU, proj CPU: seconds of CPU of serve and of its projector child during the run,
up to the last outcome (the machine has {cpus} CPUs)"""


def print_table(bound: float, runs: dict[str, dict[str, Any]]) -> None:
    head = [f"{name:>9}" for name, _, _ in COLUMNS]
    print(f"{'run':<14} {head[0]} {'ratio':>6} {' '.join(head[1:])} {'ok':>9}")
    for title, key in ROWS:
        r = runs[key]
        cells = [format(r[field], f">9{spec}") for _, field, spec in COLUMNS]
        ratio = r["drain_notified_s"] / bound
        ok = f"{r['succeeded_notified']}/{r['tasks']}"
        print(f"{title:<14} {cells[0]} {ratio:>6.2f} {' '.join(cells[1:])} {ok:>9}")
    a, b = runs["without"], runs["with_hang"]
    print(
        f"the hang adds: drain {b['drain_notified_s'] - a['drain_notified_s']:+.3f} s, "
        f"dispatch p99 {b['dispatch_p99_ms'] - a['dispatch_p99_ms']:+.1f} ms, "
        f"execute p99 {b['execute_p99_ms'] - a['execute_p99_ms']:+.1f} ms; the hung task "
        f"{'stayed open' if b.get('hung_task_open') else 'DID NOT stay open'} throughout"
    )
    print(LEGEND.format(cpus=os.cpu_count()))
