"""FakeChartRepo: chart-repo's ``/chart-repo/api/v2`` as the ledger uses it.

The protocol is in docs/protocols.md#chart-repo.

- ``dcr/sync-app`` renders with the in-process renderer (a complete ``app_data``) after
  ``render_latency`` seconds; per app it can fail for good (any reply: a 500, ``success:
  false``...), fail the first N calls, be slow (longer than a client's timeout), answer without
  ``app_data`` ("not ready"), or answer an incomplete render;
- ``state-changes`` serves a feed the test appends to; ``reset_ids`` starts it again at 1, as
  a chart-repo whose database was recreated;
- ``apps`` answers uploaded apps the test registered; ``images`` answers image infos.

Endpoints for faults and counts: ``"sync-app"``, ``"state-changes"``, ``"apps"``, ``"images"``.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Mapping
from typing import Any

from market_ledger.adapters.chart_repo.app_data import pending_entry_of
from market_ledger.adapters.local.renderer import render_in_process
from tests.support.fakes.http_fake import FakeHttpServer, RecordedRequest, Reply

PREFIX = "/chart-repo/api/v2/"
ANALYZED_AT = "2026-03-09T06:00:03Z"


def _app_id_of(pending: Mapping[str, Any]) -> str:
    raw = pending.get("raw_data")
    raw = raw if isinstance(raw, Mapping) else {}
    for field in ("appID", "id", "name"):
        value = raw.get(field)
        if isinstance(value, str) and value:
            return value
    return ""


class FakeChartRepo(FakeHttpServer):
    def __init__(self, render_latency: float = 0.02) -> None:
        super().__init__()
        self.render_latency = render_latency
        self.permanent_failures: dict[str, Reply] = {}
        self.transient_failures: dict[str, tuple[int, Reply]] = {}
        self.slow_apps: dict[str, float] = {}
        self.unready_apps: set[str] = set()
        self.incomplete_apps: set[str] = set()
        self.sync_calls: Counter[str] = Counter()
        self.changes: list[dict[str, Any]] = []
        self.uploaded: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.images: dict[str, dict[str, Any]] = {}
        self._next_id = 1

    # --- renders ----------------------------------------------------------------------------

    def fail_permanently(self, app_id: str, reply: Reply | None = None) -> None:
        """Every render of ``app_id`` answers ``reply`` (default: a 500)."""
        with self._lock:
            self.permanent_failures[app_id] = reply or Reply.error(500, f"cannot render {app_id}")

    def refuse(self, app_id: str, message: str = "failed to download chart") -> None:
        """Every render of ``app_id`` answers 200 with ``success: false``."""
        self.fail_permanently(
            app_id, Reply.json({"success": False, "message": message, "data": None})
        )

    def fail_transiently(self, app_id: str, times: int, reply: Reply | None = None) -> None:
        """The next ``times`` renders of ``app_id`` fail (default: a 500), then it renders."""
        with self._lock:
            self.transient_failures[app_id] = (times, reply or Reply.error(503, "busy"))

    def make_slow(self, app_id: str, seconds: float) -> None:
        """Renders of ``app_id`` take ``seconds`` (more than the client's timeout: a timeout)."""
        with self._lock:
            self.slow_apps[app_id] = seconds

    def heal_app(self, app_id: str) -> None:
        with self._lock:
            self.permanent_failures.pop(app_id, None)
            self.transient_failures.pop(app_id, None)
            self.slow_apps.pop(app_id, None)
            self.unready_apps.discard(app_id)
            self.incomplete_apps.discard(app_id)

    def sync_calls_for(self, app_id: str) -> int:
        with self._lock:
            return self.sync_calls[app_id]

    # --- the feed ---------------------------------------------------------------------------

    def append_change(self, change: Mapping[str, Any]) -> int:
        """Append a raw change (given an ``id`` unless it has a key ``id``); returns the id."""
        with self._lock:
            raw = copy.deepcopy(dict(change))
            if "id" not in raw:
                raw["id"] = self._next_id
            if isinstance(raw["id"], int) and not isinstance(raw["id"], bool):
                self._next_id = max(self._next_id, raw["id"] + 1)
            raw.setdefault("timestamp", "2026-03-09T06:00:00Z")
            self.changes.append(raw)
            return int(raw["id"]) if isinstance(raw["id"], int) else -1

    def append_upload(
        self,
        user: str,
        app_name: str,
        source: str = "upload",
        entry: Mapping[str, Any] | None = None,
    ) -> int:
        """An ``app_upload_completed`` change; with ``entry``, ``apps`` will answer that app."""
        if entry is not None:
            self.register_upload(user, app_name, entry, source)
        return self.append_change(
            {
                "type": "app_upload_completed",
                "app_data": {"source": source, "app_name": app_name, "user_id": user},
            }
        )

    def append_image_update(self, image_name: str, info: Mapping[str, Any] | None = None) -> int:
        """An ``image_info_updated`` change; with ``info``, ``images`` will answer it."""
        if info is not None:
            with self._lock:
                self.images[image_name] = copy.deepcopy(dict(info))
        return self.append_change(
            {"type": "image_info_updated", "image_data": {"image_name": image_name}}
        )

    def reset_ids(self) -> None:
        """Forget the feed and number new changes from 1 (a recreated chart-repo database)."""
        with self._lock:
            self.changes.clear()
            self._next_id = 1

    def register_upload(
        self, user: str, app_name: str, entry: Mapping[str, Any], source: str = "upload"
    ) -> dict[str, Any]:
        """Make ``apps`` answer this uploaded app (rendered from ``entry``)."""
        app = render_in_process(pending_entry_of(entry), source, user, analyzed_at=ANALYZED_AT)
        with self._lock:
            self.uploaded[(user, source, app_name)] = app
        return app

    # --- the protocol -----------------------------------------------------------------------

    def endpoint_of(self, path: str) -> str:
        return path.removeprefix(PREFIX).removeprefix("dcr/") if path.startswith(PREFIX) else path

    def handle(self, request: RecordedRequest) -> Reply:
        endpoint = self.endpoint_of(request.path)
        if endpoint == "sync-app" and request.method == "POST":
            return self._sync_app(request)
        if endpoint == "state-changes" and request.method == "GET":
            return self._state_changes(request)
        if endpoint == "apps" and request.method == "POST":
            return self._apps(request)
        if endpoint == "images" and request.method == "GET":
            return self._image(request)
        return Reply.error(404, f"no route {request.method} {request.path}")

    def _sync_app(self, request: RecordedRequest) -> Reply:
        body = request.json()
        pending = body.get("app_info_latest_pending_data") or {}
        source_id = str(body.get("source_id") or "")
        user = str(body.get("user_name") or "")
        app_id = _app_id_of(pending)
        with self._lock:
            self.sync_calls[app_id] += 1
            slow = self.slow_apps.get(app_id, 0.0)
            failure = self.permanent_failures.get(app_id)
            if failure is None and app_id in self.transient_failures:
                remaining, reply = self.transient_failures[app_id]
                if remaining > 0:
                    failure = reply
                    self.transient_failures[app_id] = (remaining - 1, reply)
            unready = app_id in self.unready_apps
            incomplete = app_id in self.incomplete_apps
        self.wait(self.render_latency + slow)
        if failure is not None:
            return failure
        summary = {"app_id": app_id, "user_id": user, "source_id": source_id}
        if unready:
            return Reply.json(
                {
                    "success": True,
                    "message": "App queued for rendering",
                    "data": {**summary, "status": "processing", "message": "render in progress"},
                }
            )
        app_data = render_in_process(pending, source_id, user, analyzed_at=ANALYZED_AT)
        if incomplete:
            app_data["rendered_package"] = ""
        return Reply.json(
            {
                "success": True,
                "message": "App synced successfully",
                "data": {
                    **summary,
                    "version": app_data["version"],
                    "status": "new",
                    "message": "App rendered and stored in latest",
                    "app_data": app_data,
                },
            }
        )

    def _state_changes(self, request: RecordedRequest) -> Reply:
        after_id = int(request.param("after_id") or 0)
        limit = int(request.param("limit") or 1000)
        with self._lock:
            later = [
                c
                for c in self.changes
                if not isinstance(c.get("id"), int)
                or isinstance(c.get("id"), bool)
                or c["id"] > after_id
            ]
            later.sort(key=lambda c: c["id"] if isinstance(c.get("id"), int) else 0)
            page = copy.deepcopy(later[:limit])
        return Reply.json(
            {
                "success": True,
                "message": "ok",
                "data": {
                    "after_id": after_id,
                    "limit": limit,
                    "type_filter": "",
                    "count": len(page),
                    "total_available": len(later),
                    "state_changes": page,
                },
            }
        )

    def _apps(self, request: RecordedRequest) -> Reply:
        body = request.json()
        user = str(body.get("userid") or "")
        found = []
        with self._lock:
            for wanted in body.get("apps") or []:
                key = (user, str(wanted.get("sourceDataName")), str(wanted.get("appid")))
                if key in self.uploaded:
                    found.append(copy.deepcopy(self.uploaded[key]))
        return Reply.json({"success": True, "message": "ok", "data": {"apps": found}})

    def _image(self, request: RecordedRequest) -> Reply:
        name = request.param("imageName") or ""
        with self._lock:
            info = copy.deepcopy(self.images.get(name))
        if info is None:
            return Reply.json(
                {"success": False, "message": f"image {name!r} not found", "data": None}
            )
        return Reply.json({"success": True, "message": "ok", "data": {"image_info": info}})
