"""FakeAppService: app-service's installed apps, middlewares and OS version.

The protocol is in docs/protocols.md#app-service.

``installed`` holds Application objects per user (build them with :meth:`install`);
``all/apps`` answers all of them as a bare array. ``middlewares/status`` answers
``{code, data}``. Endpoints for faults and counts: ``"all-apps"``, ``"middlewares"``,
``"version"``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from tests.support.fakes.http_fake import FakeHttpServer, RecordedRequest, Reply

ENDPOINTS = {
    "/app-service/v1/all/apps": "all-apps",
    "/app-service/v1/middlewares/status": "middlewares",
    "/app-service/v1/terminus/version": "version",
}
DEFAULT_TIME = "2025-06-18T06:18:53Z"


class FakeAppService(FakeHttpServer):
    def __init__(self, version: str = "1.12.3") -> None:
        super().__init__()
        self.version = version
        #: user -> Application objects, in answer order
        self.installed: dict[str, list[dict[str, Any]]] = {}
        self.middleware_records: list[dict[str, Any]] = []

    def install(
        self,
        user: str,
        name: str,
        *,
        state: str = "running",
        source: str = "market",
        appid: str | None = None,
        title: str | None = None,
        entrances: Sequence[str] = (),
        status_time: str = DEFAULT_TIME,
    ) -> dict[str, Any]:
        """Add (or replace) ``user``'s app ``name``; entrances are named, all running."""
        names = list(entrances) or [name]
        record = {
            "metadata": {
                "name": f"{user}-{name}",
                "uid": f"uid-{user}-{name}",
                "namespace": f"{name}-{user}",
            },
            "spec": {
                "name": name,
                "appid": appid or name,
                "owner": user,
                "icon": f"https://cdn.example.org/{name}.png",
                "title": title or name.title(),
                "source": source,
                "entrances": [
                    {"name": e, "url": f"{e}.{user}.olares.test", "invisible": False} for e in names
                ],
            },
            "status": {
                "state": state,
                "updateTime": status_time,
                "statusTime": status_time,
                "lastTransitionTime": status_time,
                "entranceStatuses": [
                    {"name": e, "state": state, "statusTime": status_time, "reason": state.title()}
                    for e in names
                ],
            },
        }
        with self._lock:
            apps = self.installed.setdefault(user, [])
            apps[:] = [a for a in apps if a["spec"]["name"] != name] + [record]
        return record

    def uninstall(self, user: str, name: str) -> None:
        with self._lock:
            apps = self.installed.get(user, [])
            apps[:] = [a for a in apps if a["spec"]["name"] != name]

    def set_state(self, user: str, name: str, state: str, status_time: str = DEFAULT_TIME) -> None:
        with self._lock:
            for app in self.installed.get(user, []):
                if app["spec"]["name"] == name:
                    app["status"].update(
                        state=state, statusTime=status_time, updateTime=status_time
                    )

    def add_middleware(
        self, user: str, name: str, *, status: str = "running", resource_type: str = "postgres"
    ) -> dict[str, Any]:
        record = {
            "uuid": f"mw-{user}-{name}",
            "namespace": f"user-system-{user}",
            "user": user,
            "resourceStatus": status,
            "resourceType": resource_type,
            "createTime": "2025-06-01T00:00:00Z",
            "updateTime": "2025-06-18T05:00:00Z",
            "metadata": {"name": name},
            "version": "16.2",
            "title": name.title(),
        }
        with self._lock:
            self.middleware_records.append(record)
        return record

    def endpoint_of(self, path: str) -> str:
        return ENDPOINTS.get(path, path)

    def handle(self, request: RecordedRequest) -> Reply:
        endpoint = self.endpoint_of(request.path)
        with self._lock:
            if endpoint == "all-apps":
                apps = [app for user in self.installed.values() for app in user]
                return Reply.json(copy.deepcopy(apps))
            if endpoint == "middlewares":
                return Reply.json({"code": 200, "data": copy.deepcopy(self.middleware_records)})
            if endpoint == "version":
                return Reply.json({"version": self.version})
        return Reply.json({"code": 404, "message": f"no route {request.path}"}, status=404)
