"""An independent model of what each user's catalog should be after a cycle.

It knows nothing of the ledger's code: only the rules of docs/model.md#catalog-rules (offers
wait for a render; a failed render keeps the last good version and is retried until parked;
an app missing from the catalog is delisted and shown only while installed) and what the fake
systems were told.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

DELISTING = {"suspend", "remove"}


def content_key(entry: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in entry.items() if k != "appLabels"}, sort_keys=True)


@dataclass
class AppModel:
    name: str
    offered: tuple[str, str]
    labels: list[str]
    status: str = "pending"
    latest: tuple[str, str] | None = None
    attempts: int = 0
    delisted: bool = False

    @property
    def pending_version(self) -> str | None:
        return None if self.status == "latest" else self.offered[0]


@dataclass
class CatalogModel:
    max_attempts: int
    permanent_failures: set[str] = field(default_factory=set)
    transient_failures: dict[str, int] = field(default_factory=dict)
    users: dict[str, dict[str, AppModel]] = field(default_factory=dict)

    def sync(self, catalog: dict[str, dict[str, Any]], users: list[str]) -> None:
        for user in users:
            apps = self.users.setdefault(user, {})
            for app_id, entry in catalog.items():
                offered = (str(entry["version"]), content_key(entry))
                labels = list(entry.get("appLabels") or [])
                delisting = any(label.lower() in DELISTING for label in labels)
                app = apps.get(app_id)
                if app is None:
                    apps[app_id] = AppModel(
                        entry.get("name", app_id), offered, labels, delisted=delisting
                    )
                    continue
                app.labels = labels
                app.delisted = delisting
                if app.offered != offered:
                    app.offered = offered
                    app.attempts = 0
                    app.status = "latest" if app.latest == offered else "pending"
            for app_id, app in apps.items():
                if app_id not in catalog:
                    app.delisted = True

    def hydrate(self, users: list[str]) -> None:
        for user in users:
            for app_id, app in sorted(self.users.get(user, {}).items()):
                if app.delisted or app.status not in ("pending", "failed"):
                    continue
                if app_id in self.permanent_failures or self.transient_failures.get(app_id, 0):
                    if app_id not in self.permanent_failures:
                        self.transient_failures[app_id] -= 1
                    app.attempts += 1
                    app.status = "parked" if app.attempts >= self.max_attempts else "failed"
                else:
                    app.latest, app.status, app.attempts = app.offered, "latest", 0

    def expected(self, user: str, installed: dict[str, str]) -> dict[str, dict[str, Any]]:
        shown = {}
        for app_id, app in sorted(self.users.get(user, {}).items()):
            state = installed.get(app.name)
            if app.delisted and (state is None or state == "uninstalled"):
                continue
            shown[app_id] = {
                "status": "delisted" if app.delisted else app.status,
                "latest_version": app.latest[0] if app.latest else None,
                "pending_version": app.pending_version,
                "labels": app.labels,
                "installed_state": state,
            }
        return shown


def actual(catalog: dict[str, Any], source: str) -> dict[str, dict[str, Any]]:
    apps = catalog["sources"].get(source, {"apps": []})["apps"]
    return {
        a["app_id"]: {
            k: a[k]
            for k in ("status", "latest_version", "pending_version", "labels", "installed_state")
        }
        for a in apps
    }
