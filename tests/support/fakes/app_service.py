"""FakeAppService: app-service's installed apps, middlewares and OS version, and the app
operations (install, clone, upgrade, uninstall, cancel) with their lifecycle reported on NATS.

The protocol is in docs/protocols.md#app-service and #nats.

``installed`` holds Application objects per user (build them with :meth:`install`);
``all/apps`` answers all of them as a bare array. ``middlewares/status`` answers
``{code, data}``. Endpoints for faults and counts: ``"all-apps"``, ``"middlewares"``,
``"version"``, and ``"install"``, ``"upgrade"``, ``"uninstall"``, ``"cancel"`` for the
operation calls ``POST /app-service/v1/apps/{name}/<action>``.

An operation call needs ``X-Authorization`` (else 401) and names its user in ``X-Bfl-User``;
an accepted one is answered ``{"code": 200, "message": "success", "data": {"opID": ...}}``
after ``latency`` seconds, kept in :attr:`FakeAppService.operations`, and its lifecycle
(tests/support/fakes/app_operations.py) published on ``<subject_prefix>.<user>`` of the
nats-server at ``nats_url`` (with no URL, the messages are only kept in :attr:`published`).
The answer can be made to misbehave per app (tests/support/fakes/operation_faults.py).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Self
from urllib.parse import unquote

from tests.support.fakes import operation_faults as faults
from tests.support.fakes.app_operations import (
    CANCEL,
    CLONE,
    INSTALL,
    OLD_TIME,
    Lifecycles,
    OperationRecord,
    new_op_id,
)
from tests.support.fakes.app_state_messages import (
    AppState,
    Clock,
    Instants,
    app_state_message,
    system_clock,
)
from tests.support.fakes.http_fake import FakeHttpServer, RecordedRequest, Reply
from tests.support.fakes.nats_publisher import NatsPublisher, PublishFailed

ENDPOINTS = {
    "/app-service/v1/all/apps": "all-apps",
    "/app-service/v1/middlewares/status": "middlewares",
    "/app-service/v1/terminus/version": "version",
}
ACTIONS = ("install", "upgrade", "uninstall", "cancel")
OPERATION_PATH = re.compile(r"^/app-service/v1/apps/([^/]+)/(install|upgrade|uninstall|cancel)$")
DEFAULT_TIME = "2025-06-18T06:18:53Z"


def operation_route(path: str) -> tuple[str, str] | None:
    """The app and action of an operation call's path."""
    match = OPERATION_PATH.match(path)
    return (unquote(match.group(1)), match.group(2)) if match else None


class FakeAppService(FakeHttpServer):
    def __init__(
        self,
        version: str = "1.12.3",
        *,
        nats_url: str | None = None,
        subject_prefix: str = "os.application",
        latency: float = 0.0,
        step_delay: float = 0.02,
        cancel_reports_as: str = INSTALL,
        clock: Clock = system_clock,
    ) -> None:
        super().__init__()
        self.version = version
        #: user -> Application objects, in answer order
        self.installed: dict[str, list[dict[str, Any]]] = {}
        self.middleware_records: list[dict[str, Any]] = []
        self.subject_prefix = subject_prefix
        self.faults = faults.Faults()
        self.hangs = faults.Hangs()
        self._operations: list[OperationRecord] = []
        self._published: list[tuple[str, dict[str, Any]]] = []
        self._publisher = NatsPublisher(nats_url) if nats_url else None
        self._instants = Instants(clock)
        self.lifecycles = Lifecycles(
            self,
            self._publish,
            self._instants,
            step_delay=step_delay,
            cancel_reports_as=cancel_reports_as,
        )
        for action in ACTIONS:
            self.set_latency(action, latency)

    # --- life -------------------------------------------------------------------------------

    def start(self) -> Self:
        if self._publisher is not None and self._thread is None:
            self._publisher.start()
        return super().start()

    def stop(self) -> None:
        self.hangs.halt()
        self.lifecycles.halt()
        if self._publisher is not None:
            self._publisher.close()
        super().stop()

    def close(self) -> None:
        """Stop, then raise if a message could not be published."""
        self.stop()
        self.check_published()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
        if exc is None:
            self.check_published()

    # --- what the test reads ----------------------------------------------------------------

    @property
    def operations(self) -> list[OperationRecord]:
        """The operations accepted, in order (a refused call is only in :attr:`requests`)."""
        with self._lock:
            return list(self._operations)

    def op_ids(self, kind: str | None = None) -> list[str]:
        return [o.op_id for o in self.operations if kind is None or o.kind == kind]

    @property
    def published(self) -> list[tuple[str, dict[str, Any]]]:
        """Every app-state message published (subject, message), in order."""
        with self._lock:
            return list(self._published)

    def check_published(self) -> None:
        """Raise the first failure to publish, if any."""
        if self.lifecycles.errors:
            raise PublishFailed(
                f"{len(self.lifecycles.errors)} app-state message(s) not published"
            ) from self.lifecycles.errors[0]

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until every lifecycle has ended; raise a failure to publish."""
        self.lifecycles.settle(timeout)
        self.check_published()

    def record_of(self, user: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            for app in self.installed.get(user, []):
                if app["spec"]["name"] == name:
                    return copy.deepcopy(app)
        return None

    # --- lifecycles, per app ----------------------------------------------------------------

    def fail_download(self, app: str) -> None:
        self.lifecycles.fail(app, "download")

    def fail_install(self, app: str) -> None:
        self.lifecycles.fail(app, "install")

    def fail_upgrade(self, app: str) -> None:
        self.lifecycles.fail(app, "upgrade")

    def fail_uninstall(self, app: str) -> None:
        self.lifecycles.fail(app, "uninstall")

    def clear_failures(self, app: str | None = None) -> None:
        self.lifecycles.clear_failures(app)

    def pause_at(self, app: str, state: str) -> None:
        self.lifecycles.pause_at(app, state)

    def resume(self, app: str | None = None) -> None:
        self.lifecycles.resume(app)

    def publish_stale(self, app: str, how: str = OLD_TIME, state: str | None = None) -> None:
        """Make ``app``'s next message (or its next of ``state``) stale: ``old_time`` or
        ``other_op``."""
        self.lifecycles.make_stale(app, how, state)

    def publish_state(self, content: AppState) -> dict[str, Any]:
        """Publish one message now, out of any lifecycle; raises when it cannot."""
        message = app_state_message(content, self._instants.next(content.user, content.name))
        self._publish(content.user, message)
        return message

    # --- the answer to an operation call, per app (None: every app) -------------------------

    def hang(
        self, app: str | None = None, action: str | None = None, times: int | None = None
    ) -> None:
        """Answer nothing until :meth:`release` (or the client gives up)."""
        self.faults.set(faults.Fault(faults.HANG), app, action, times)
        self.hangs.arm()

    def release(self) -> None:
        """The hanging calls go on as if answered normally, and no new call hangs."""
        self.faults.clear(mode=faults.HANG)
        self.hangs.release()

    def missing_env(
        self,
        names: Sequence[str],
        app: str | None = None,
        action: str | None = None,
        times: int | None = None,
    ) -> None:
        fault = faults.Fault(faults.MISSING_ENV, missing=tuple(names))
        self.faults.set(fault, app, action, times)

    def error_500(
        self, app: str | None = None, action: str | None = None, times: int | None = None
    ) -> None:
        self.faults.set(faults.Fault(faults.ERROR_500), app, action, times)

    def garbage(
        self, app: str | None = None, action: str | None = None, times: int | None = None
    ) -> None:
        self.faults.set(faults.Fault(faults.GARBAGE), app, action, times)

    def business_error(
        self,
        app: str | None = None,
        action: str | None = None,
        times: int | None = None,
        message: str = "",
    ) -> None:
        fault = faults.Fault(faults.BUSINESS_ERROR, message=message)
        self.faults.set(fault, app, action, times)

    def accept_silently(
        self, app: str | None = None, action: str | None = None, times: int | None = None
    ) -> None:
        """Accept (an opID is answered) and publish nothing."""
        self.faults.set(faults.Fault(faults.ACCEPT_SILENTLY), app, action, times)

    def clear_faults(self, app: str | None = None) -> None:
        self.faults.clear(app)

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
        route = operation_route(path)
        return route[1] if route else ENDPOINTS.get(path, path)

    def handle(self, request: RecordedRequest) -> Reply:
        route = operation_route(request.path)
        if route is not None:
            return self._operate(request, *route)
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

    def _operate(self, request: RecordedRequest, app: str, action: str) -> Reply:
        if request.method != "POST":
            return Reply.json({"code": 405, "message": "method not allowed"}, status=405)
        if not request.headers.get("x-authorization"):
            return Reply.json({"code": 401, "message": "unauthorized"}, status=401)
        user = request.headers.get("x-bfl-user", "")
        if not user:
            return Reply.json({"code": 400, "message": "no X-Bfl-User"}, status=400)
        if action == CANCEL and request.param("type") != "operate":
            return Reply.json({"code": 400, "message": "cancel type must be operate"}, status=400)
        try:
            body = json.loads(request.body) if request.body else None
        except ValueError:
            return Reply.json({"code": 400, "message": "body is not JSON"}, status=400)
        fault = self.faults.take(app, action)
        if fault is not None and fault.mode == faults.HANG:
            if not self.hangs.wait():
                return Reply.json({"code": 503, "message": "stopping"}, status=503)
            fault = None
        reply = fault.reply() if fault is not None else None
        if reply is not None:
            return reply
        kind = action
        if (
            action == INSTALL
            and isinstance(body, dict)
            and {"rawAppName", "requestHash"} & set(body)
        ):
            kind = CLONE
        record = OperationRecord(kind, user, app, new_op_id(), body, dict(request.headers))
        with self._lock:
            self._operations.append(record)
        if fault is None:
            self.lifecycles.start(record)
        return Reply.json({"code": 200, "message": "success", "data": {"opID": record.op_id}})

    def _publish(self, user: str, message: dict[str, Any]) -> None:
        subject = f"{self.subject_prefix}.{user}"
        if self._publisher is not None:
            self._publisher.publish(subject, message)
        with self._lock:
            self._published.append((subject, message))
