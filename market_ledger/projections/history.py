"""The lifecycle history: one entry per listing, installation or task event, for audit."""

from __future__ import annotations

import dataclasses
from typing import Any

from market_ledger.domain import installation, listing, task_events
from market_ledger.domain.canonical import format_instant
from market_ledger.domain.events import LedgerEvent
from market_ledger.projections.rows import Row, dumps


def _when(moment: Any) -> str | None:
    return format_instant(moment) if moment is not None else None


def listing_details(event: listing.ListingEvent) -> dict[str, Any]:
    if isinstance(event, listing.Offered):
        return {"version": event.app_version, "digest": event.digest, "labels": event.labels}
    if isinstance(event, listing.Rendered):
        return {"version": event.app_version, "digest": event.digest}
    if isinstance(event, listing.RenderFailed):
        return {
            "version": event.app_version,
            "step": event.step,
            "reason": event.reason,
            "attempt": event.attempt,
            "retry_at": _when(event.retry_at),
        }
    if isinstance(event, listing.Parked):
        return {"version": event.app_version, "attempts": event.attempts}
    if isinstance(event, listing.RetryRequested):
        return {"version": event.app_version, "requested_by": event.requested_by}
    if isinstance(event, listing.Delisted | listing.Withdrawn):
        return {"reason": event.reason}
    if isinstance(event, listing.LabelsChanged):
        return {"labels": event.labels}
    if isinstance(event, listing.ImageInfoUpdated):
        return {"image": event.image_name}
    return {}


def installation_details(event: installation.InstallationEvent) -> dict[str, Any]:
    if isinstance(event, installation.StateObserved):
        return {
            "state": event.state,
            "op_type": event.op_type,
            "progress": event.progress,
            "version": event.app_version,
            "origin": event.origin,
            "event_id": event.event_id,
            "observed_at": _when(event.observed_at),
        }
    if isinstance(event, installation.StateIgnored):
        return {
            "state": event.state,
            "origin": event.origin,
            "event_id": event.event_id,
            "observed_at": _when(event.observed_at),
            "newer_than": _when(event.newer_than),
        }
    if isinstance(event, installation.StateRefused):
        return {
            "state": event.state,
            "op_type": event.op_type,
            "version": event.app_version,
            "origin": event.origin,
            "event_id": event.event_id,
            "observed_at": _when(event.observed_at),
            "reason": event.reason,
        }
    if isinstance(event, installation.InstallationRemoved):
        return {"origin": event.origin, "observed_at": _when(event.observed_at)}
    return {}


#: the fields every event has, which the history row holds in columns of its own
_BASE_FIELDS = frozenset(f.name for f in dataclasses.fields(task_events.TaskEvent))


def task_details(event: task_events.TaskEvent, kind: str) -> dict[str, Any]:
    """The task's id and kind, and the event's own fields (env values come redacted)."""
    details: dict[str, Any] = {"task_id": event.task_id, "kind": kind}
    for field in dataclasses.fields(event):
        if field.name not in _BASE_FIELDS and field.name != "kind":
            details[field.name] = getattr(event, field.name)
    if isinstance(event, task_events.TaskRequested):
        details["envs"] = [{"envName": name, "value": value} for name, value in event.envs]
        details["entrances"] = [{"name": name, "title": title} for name, title in event.entrances]
    return details


def history_row(event: LedgerEvent, position: int, row: Row) -> Row | None:
    """The history entry of ``event``, given the view row it updated (None if not audited)."""
    if isinstance(event, listing.ListingEvent):
        kind, app, details = "listing", row["app_id"], listing_details(event)
    elif isinstance(event, installation.InstallationEvent):
        kind, app, details = "installation", row["name"], installation_details(event)
    elif isinstance(event, task_events.TaskEvent):
        kind, app, details = "task", row["app_name"], task_details(event, row["kind"])
    else:
        return None
    return {
        "position": position,
        "at": format_instant(event.timestamp),
        "user_name": row["user_name"],
        "source": row["source"],
        "app": app,
        "kind": kind,
        "event": event.HISTORY_NAME,
        "details": dumps(details),
    }
