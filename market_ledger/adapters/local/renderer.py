"""Renders a listing without chart-repo, for ``file://`` sources when none is configured.

The result has the shape of chart-repo's ``app_data`` and passes the "hydration complete"
predicate: the packages are named (``in-process://...``, there is no chart to fetch), the
image analysis is present with no images, and ``app_simple_info`` is derived by the domain's
rule, as the app key is.
It is a pure function: no clock, no I/O; ``analyzed_at`` is taken from the caller or left out.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from market_ledger.adapters.chart_repo.app_data import pending_entry_of
from market_ledger.domain.catalog_entry import LATEST_TYPE, app_key_of, simple_info_of

PACKAGE_SCHEME = "in-process://"


def _pending(entry: Mapping[str, Any]) -> Mapping[str, Any]:
    """A pending wrapper as is; a bare catalog entry is wrapped first."""
    if isinstance(entry.get("raw_data"), Mapping):
        return entry
    return pending_entry_of(entry)


def render_in_process(
    pending_entry: Mapping[str, Any],
    source_id: str,
    user: str,
    *,
    analyzed_at: str | None = None,
) -> dict[str, Any]:
    """The rendered ``app_data`` for ``user`` of a pending wrapper or a bare catalog entry."""
    pending = _pending(pending_entry)
    raw = copy.deepcopy(dict(pending["raw_data"]))
    app_id = app_key_of(raw)
    name = str(raw.get("name") or app_id)
    version = str(raw.get("version") or pending.get("version") or "")
    analysis: dict[str, Any] = {
        "app_id": app_id,
        "user_id": user,
        "source_id": source_id,
        "total_images": 0,
        "images": {},
    }
    if analyzed_at is not None:
        analysis["analyzed_at"] = analyzed_at
    values = pending.get("values")
    timestamp = pending.get("timestamp")
    app_data: dict[str, Any] = {
        "type": LATEST_TYPE,
        "timestamp": timestamp if isinstance(timestamp, int) else 0,
        "version": version,
        "raw_data": raw,
        "raw_package": f"{PACKAGE_SCHEME}{source_id}/{name}-{version}.tgz",
        "rendered_package": f"{PACKAGE_SCHEME}{user}/{source_id}/{name}-{version}",
        "values": copy.deepcopy(list(values)) if isinstance(values, list) else [],
        "app_info": {"app_entry": copy.deepcopy(raw), "image_analysis": analysis},
    }
    app_data["app_simple_info"] = simple_info_of(app_data)
    return app_data
