"""Small builders for test data."""

from __future__ import annotations

from typing import Any

from market_ledger.domain.listing import OfferApp, RecordRender, RecordRenderFailure
from market_ledger.domain.manifest import Manifest

USER = "alice"
SOURCE = "market.olares"


def manifest(app: str = "firefox", version: str = "1.0.0", **fields: Any) -> Manifest:
    entry: dict[str, Any] = {
        "id": app,
        "name": app,
        "version": version,
        "title": {"en-US": app.title()},
    }
    entry.update(fields)
    return Manifest.from_entry(entry)


def offer(
    app: str = "firefox",
    version: str = "1.0.0",
    user: str = USER,
    source: str = SOURCE,
    **fields: Any,
) -> OfferApp:
    return OfferApp(user, source, manifest(app, version, **fields))


def render(command: OfferApp, **rendered: Any) -> RecordRender:
    m = command.manifest
    return RecordRender(
        command.user,
        command.source,
        m.app_id,
        m.version,
        m.digest,
        rendered or {"raw_package": f"{m.app_id}-{m.version}.tgz"},
    )


def fail(command: OfferApp, reason: str = "timeout") -> RecordRenderFailure:
    m = command.manifest
    return RecordRenderFailure(
        command.user, command.source, m.app_id, m.version, m.digest, "TaskForApiStep", reason
    )
