"""Phase 4: compare app-service's installed apps with the installations, and correct them.

An app app-service reports in another state than recorded becomes an observation (origin
``status-correction``, timed by app-service's own status time, so it never overrides a newer
state from NATS); an installation app-service no longer reports is removed. Two answers are
never taken as "nothing is installed": a failed call (apps or middlewares), and an empty list
while installations are known, which is what app-service says while it restarts.
"""

from __future__ import annotations

import logging
from typing import Any

from market_ledger.domain.canonical import format_instant
from market_ledger.domain.decider import Command
from market_ledger.domain.installation import ObserveInstallationState, RemoveInstallation
from market_ledger.domain.task_events import TaskEvent
from market_ledger.projections import work_queries as q
from market_ledger.projections.rows import Row, loads
from market_ledger.service.context import CycleContext
from market_ledger.service.remote_values import InstalledApp
from market_ledger.service.task_closing import closing_commands

log = logging.getLogger(__name__)
ORIGIN = "status-correction"


def _entrances(app: InstalledApp) -> tuple[dict[str, Any], ...]:
    urls = {e.name: e for e in app.entrances}
    return tuple(
        {
            "id": (status.url or getattr(urls.get(status.name), "url", "")).split(".")[0],
            "name": status.name,
            "state": status.state,
            "url": status.url or getattr(urls.get(status.name), "url", ""),
            "invisible": bool(getattr(urls.get(status.name), "invisible", False)),
            "reason": status.reason,
        }
        for status in app.entrance_statuses
    )


def _differs(app: InstalledApp, row: Row | None) -> bool:
    if row is None:
        return True
    if app.state != row["state"]:
        return True
    recorded = {e.get("name"): e.get("state") for e in loads(row["entrances"])}
    return any(
        recorded.get(status.name, status.state) != status.state for status in app.entrance_statuses
    )


class StatusCorrectionPhase:
    name = "status_correction"

    async def run(self, ctx: CycleContext) -> dict[str, Any]:
        app_service = ctx.remote.app_service
        if app_service is None:
            return {"skipped": "no app-service configured"}
        apps = await app_service.all_apps()
        middlewares = await app_service.middlewares()
        reported = {app.key: app for app in (*apps.apps, *middlewares.apps)}
        known: dict[tuple[str, str], Row] = {
            (row["user_name"], row["name"]): row for row in await ctx.read(q.current_installations)
        }
        now = ctx.clock()
        commands: list[Command] = []
        for key, app in sorted(reported.items()):
            row = known.get(key)
            observed_at = app.status_time or app.update_time or now
            if not _differs(app, row):
                continue
            if row is not None and format_instant(observed_at) < row["observed_at"]:
                continue  # a newer state is already known; app-service will catch up
            commands.append(
                ObserveInstallationState(
                    user=app.owner,
                    name=app.name,
                    state=app.state,
                    observed_at=observed_at,
                    source=app.source,
                    title=app.title,
                    raw_app_name=row["raw_app_name"] if row else "",
                    origin=ORIGIN,
                    entrances=_entrances(app),
                    shared_entrances=tuple(app.shared_entrances),
                )
            )
        gone = sorted(set(known) - set(reported))
        report: dict[str, Any] = {"reported": len(reported), "known": len(known)}
        if not reported and known:
            log.warning(
                "app-service reports no installed apps while %d are known; "
                "not removing anything this cycle",
                len(known),
            )
            report["refused_wipe"] = len(known)
            gone = []
        commands += [RemoveInstallation(user, name, now, ORIGIN) for user, name in gone]
        closing = closing_commands(ctx.ledger.open_tasks, commands)
        outcome = await ctx.handle([*commands, *closing])
        ctx.ledger.open_tasks.apply(outcome.events)
        report["corrections"] = sum(not isinstance(e, TaskEvent) for e in outcome.events)
        if closing:
            report["tasks_closed"] = sum(isinstance(e, TaskEvent) for e in outcome.events)
        return report
