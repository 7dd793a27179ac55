"""A realistic command stream for benchmarks: many users, several sources, hundreds of apps.

App entries come from the real Olares catalog history (``tests/fixtures``), widened with
numbered variants to reach the wanted number of apps per source. Each listing is offered,
rendered (chart-repo's ``app_data`` shape), sometimes upgraded, sometimes failed, retried and
parked; each user has installed apps whose states move through a realistic sequence.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from market_ledger.domain.decider import Command
from market_ledger.domain.installation import ObserveInstallationState
from market_ledger.domain.listing import OfferApp, RecordRender, RecordRenderFailure
from market_ledger.domain.manifest import Manifest
from market_ledger.domain.market_source import ConfigureSource
from market_ledger.domain.rendering import compact_rendered
from market_ledger.domain.user import RegisterUser
from tests.fixtures import CATALOG_TIMELINE, fixture

FIXTURE = fixture(CATALOG_TIMELINE)
T0 = datetime(2026, 1, 1, tzinfo=UTC)
INSTALL_STATES = ["pending", "downloading", "installing", "initializing", "running"]


def base_entries() -> list[dict[str, Any]]:
    """The newest version of every app in the real catalog history."""
    catalog: dict[str, dict[str, Any]] = {}
    for line in FIXTURE.read_text().splitlines():
        change = json.loads(line)
        catalog.update(change["upserts"])
        for removed in change["removed"]:
            catalog.pop(removed, None)
    return [catalog[key] for key in sorted(catalog)]


def entries(count: int) -> list[dict[str, Any]]:
    base = base_entries()
    out = []
    for i in range(count):
        entry = dict(base[i % len(base)])
        if i >= len(base):
            suffix = f"-{i // len(base)}"
            for key in ("id", "appID", "name"):
                entry[key] = f"{entry[key]}{suffix}"
        out.append(entry)
    return out


def rendered(entry: dict[str, Any], user: str, source: str) -> dict[str, Any]:
    """What the pipeline records of chart-repo's answer to a render."""
    app_id = entry["id"]
    app_data = {
        "version": entry["version"],
        "raw_package": f"/charts/{source}/{app_id}-{entry['version']}.tgz",
        "rendered_package": f"/rendered/{user}/{source}/{app_id}-{entry['version']}",
        "values": [],
        "app_info": {
            "app_entry": entry,
            "image_analysis": {
                "app_id": app_id,
                "user_id": user,
                "source_id": source,
                "total_images": 1,
                "images": {
                    f"docker.io/beclab/{app_id}:{entry['version']}": {
                        "status": "fully_downloaded",
                        "architecture": "amd64",
                        "total_size": 104857600,
                    }
                },
            },
        },
        "app_simple_info": {
            "app_id": app_id,
            "app_name": entry["name"],
            "app_icon": entry.get("icon", ""),
            "app_title": entry.get("title", {}),
            "app_version": entry["version"],
            "categories": entry.get("categories", []),
        },
        "raw_data": entry,
    }
    return compact_rendered(app_data, entry)


def setup_commands(users: int, sources: int) -> list[Command]:
    commands: list[Command] = [RegisterUser(f"user{u:04d}") for u in range(users)]
    commands += [
        ConfigureSource(f"market{s}", "remote", f"https://market{s}.example")
        for s in range(sources)
    ]
    return commands


def listing_commands(
    users: int, sources: int, apps_per_source: int, seed: int = 7
) -> Iterator[list[Command]]:
    """Per (user, source): the commands of that slice of the catalog, as one group."""
    rng = random.Random(seed)
    catalog = entries(apps_per_source)
    manifests = [Manifest.from_entry(e) for e in catalog]
    upgraded = [Manifest.from_entry({**e, "version": e["version"] + "-1"}) for e in catalog]
    for u in range(users):
        user = f"user{u:04d}"
        for s in range(sources):
            source = f"market{s}"
            group: list[Command] = []
            for entry, m, m2 in zip(catalog, manifests, upgraded, strict=True):
                group.append(OfferApp(user, source, m))
                roll = rng.random()
                if roll < 0.04:  # fails, retried with backoff, then parked
                    group += [
                        RecordRenderFailure(
                            user,
                            source,
                            m.app_id,
                            m.version,
                            m.digest,
                            "TaskForApiStep",
                            "chart-repo timed out",
                        )
                    ] * 3
                    continue
                if roll < 0.10:  # fails once, renders on retry
                    group.append(
                        RecordRenderFailure(
                            user,
                            source,
                            m.app_id,
                            m.version,
                            m.digest,
                            "TaskForApiStep",
                            "HTTP 500",
                        )
                    )
                group.append(
                    RecordRender(
                        user, source, m.app_id, m.version, m.digest, rendered(entry, user, source)
                    )
                )
                if roll > 0.85:  # an upgrade later on
                    group.append(OfferApp(user, source, m2))
                    group.append(
                        RecordRender(
                            user,
                            source,
                            m2.app_id,
                            m2.version,
                            m2.digest,
                            rendered({**entry, "version": m2.version}, user, source),
                        )
                    )
            yield group
        installed = rng.sample(catalog, k=min(12, len(catalog)))
        group = []
        for n, entry in enumerate(installed):
            moment = T0 + timedelta(minutes=n)
            for step, state in enumerate(INSTALL_STATES):
                group.append(
                    ObserveInstallationState(
                        user,
                        entry["name"],
                        state,
                        moment + timedelta(seconds=step),
                        source="market0",
                        op_type="install",
                        event_id=f"{user}-{entry['name']}-{step}",
                        progress="50" if state == "downloading" else "",
                    )
                )
        yield group
