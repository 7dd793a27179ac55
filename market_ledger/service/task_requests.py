"""The use case of the five task routes: look the request up, record it, queue it.

A request is recorded (its ``RequestTask`` committed) before it is answered, so a task the
client was told about always exists; its token and env values stay in memory with the
queued operation (see market_ledger.service.app_operations) and never reach the log.

A second request of the same kind for an app that already has one open returns the open
task's id instead of queuing a duplicate (a double click is one operation).
"""

from __future__ import annotations

import asyncio
import secrets
import string
from collections.abc import Callable
from datetime import datetime
from typing import Any

import attrs

from market_ledger.domain import clone_name
from market_ledger.domain.task import DispatchTask, RequestTask
from market_ledger.domain.task_events import CANCEL, CLONE, INSTALL, UNINSTALL, UPGRADE, new_task_id
from market_ledger.projections import task_lookups as lookups
from market_ledger.projections import task_reads
from market_ledger.projections.task_lookups import CatalogApp, InstalledApp, NotFound
from market_ledger.service.app_operations import EnvValue, ImageSize, Operation
from market_ledger.service.task_dispatcher import Dispatcher, TaskLedger

_SUFFIX_ALPHABET = string.ascii_letters + string.digits


def random_task_id(at: datetime) -> str:
    """A new task id: the time, and six characters from the system's secure RNG."""
    return new_task_id(at, "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(6)))


class RequestRefused(Exception):
    """The request cannot become a task; ``status`` and ``message`` are the client's."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@attrs.frozen
class TaskRequest:
    """One task route's request, as the route decoded it."""

    kind: str
    user: str
    app_name: str
    token: str = attrs.field(repr=False)
    source: str = ""
    version: str = ""
    envs: tuple[EnvValue, ...] = ()
    all: bool = False
    delete_data: bool = False
    title: str = ""
    entrances: tuple[tuple[str, str], ...] = ()


@attrs.frozen
class Submitted:
    task_id: str
    #: False when an open task of the same kind for the app was found and returned
    created: bool


def _images(app: CatalogApp) -> tuple[ImageSize, ...]:
    return tuple(ImageSize(name, size) for name, size in app.images)


def _original_version(
    conn: Any, ledger: TaskLedger, user: str, original: InstalledApp, app: CatalogApp
) -> str:
    """The version a clone is recorded with: the original's installed version. app-state
    messages and app-service's list name no version, so an installation seen only through
    them has none: then the version its last successful install, upgrade or clone was
    observed at, else the catalog's (what app-service installs the clone from)."""
    if original.version:
        return original.version
    last = task_reads.last_installed(conn, ledger.tables, user, original.name)
    if last is not None and last["version"]:
        return str(last["version"])
    return app.version


def _of_catalog(base: Operation, app: CatalogApp, request: TaskRequest) -> Operation:
    """``base`` sending ``app`` of the catalog, with the request's envs."""
    return attrs.evolve(
        base,
        source=app.source,
        source_type=app.source_type,
        version=app.version,
        envs=request.envs,
        images=_images(app),
    )


def _prepared(conn: Any, ledger: TaskLedger, request: TaskRequest) -> Operation:
    """The app-service call ``request`` becomes, from what the views know."""
    t, user = ledger.tables, request.user
    base = Operation(kind=request.kind, user=user, app_name=request.app_name, token=request.token)
    if request.kind == INSTALL:
        app = lookups.catalog_app(conn, t, user, request.source, request.app_name, request.version)
        return _of_catalog(base, app, request)
    if request.kind == CLONE:
        app = lookups.catalog_app(conn, t, user, request.source, request.app_name, None)
        original = lookups.installed_app(conn, t, user, app.name)
        elsewhere = (
            original is not None
            and original.source not in ("", app.source)
            and lookups.is_market_source(conn, t, original.source)
        )  # app-service may name the source by kind ("market"), not by id
        if original is None or elsewhere:
            raise NotFound(f"Original app {app.name} is not installed in source {app.source}")
        digest = clone_name.clone_request_hash(
            request.source,
            request.app_name,
            request.title,
            request.envs,
            request.entrances,
        )
        return attrs.evolve(
            _of_catalog(base, app, request),
            app_name=clone_name.clone_app_name(app.name, digest),
            version=_original_version(conn, ledger, user, original, app),
            raw_app_name=app.name,
            request_hash=digest,
            title=request.title,
            entrances=request.entrances,
        )
    if request.kind == UPGRADE:
        try:
            app = lookups.catalog_app(
                conn, t, user, request.source, request.app_name, request.version
            )
        except NotFound as not_found:
            installed = lookups.installed_app(conn, t, user, request.app_name)
            if (
                installed is None
                or not installed.raw_app_name
                or not_found.message != "App not found"
            ):
                raise
            try:
                app = lookups.catalog_app(
                    conn, t, user, request.source, installed.raw_app_name, request.version
                )
            except NotFound:
                raise NotFound(
                    f"Original app not found: {installed.raw_app_name} version {request.version}"
                ) from None
            base = attrs.evolve(base, raw_app_name=installed.raw_app_name)
        return _of_catalog(base, app, request)
    lookups.user_exists(conn, t, user)
    installed = lookups.installed_app(conn, t, user, request.app_name)
    if request.kind == UNINSTALL:
        if installed is None:
            raise NotFound(f"App {request.app_name} is not installed")
        if request.version and installed.version and request.version != installed.version:
            raise NotFound(f"App {request.app_name} version {request.version} is not installed")
        return attrs.evolve(
            base,
            source=installed.source,
            version=installed.version,
            all=request.all,
            delete_data=request.delete_data,
        )
    if request.kind == CANCEL:
        return attrs.evolve(base, source=installed.source if installed else "")
    raise RequestRefused(400, f"unknown task kind {request.kind!r}")


def _recorded(
    task_id: str, operation: Operation, request: TaskRequest, instance: str
) -> RequestTask:
    return RequestTask(
        task_id,
        kind=operation.kind,
        user=operation.user,
        app_name=operation.app_name,
        source=operation.source,
        version=operation.version if operation.kind != CANCEL else "",
        envs=tuple((e.name, e.value or e.value_from or "") for e in request.envs),
        all=operation.all,
        delete_data=operation.delete_data,
        raw_app_name=operation.raw_app_name,
        request_hash=operation.request_hash,
        title=operation.title,
        entrances=operation.entrances,
        instance=instance,
    )


class TaskRequests:
    def __init__(
        self,
        ledger: TaskLedger,
        dispatcher: Dispatcher,
        clock: Callable[[], datetime],
        new_id: Callable[[datetime], str] = random_task_id,
    ) -> None:
        self.ledger = ledger
        self.dispatcher = dispatcher
        self.clock = clock
        self.new_id = new_id
        self._lanes: dict[tuple[str, str], asyncio.Lock] = {}

    async def submit(self, request: TaskRequest) -> Submitted:
        """Record ``request`` as a task and queue it; raises RequestRefused."""
        if not self.dispatcher.can_dispatch:
            raise RequestRefused(
                503, "App operations need app-service: APP_SERVICE_SERVICE_HOST is not set"
            )
        operation = await asyncio.to_thread(self._prepare, request)
        lane = (operation.user, operation.app_name)
        lock = self._lanes.setdefault(lane, asyncio.Lock())
        async with lock:
            open_task = await self._open_task(lane, operation.kind)
            if open_task is not None:
                return Submitted(open_task, created=False)
            task_id = self.new_id(self.clock())
            command = _recorded(task_id, operation, request, self.dispatcher.instance)
            outcome = await asyncio.to_thread(self.ledger.handler.handle, command)
            if outcome.rejections:
                raise RequestRefused(400, outcome.rejections[0].reason)
            self.ledger.open_tasks.apply(outcome.events)
            self.dispatcher.enqueue(task_id, operation)
        if not lock.locked():
            self._lanes.pop(lane, None)
        return Submitted(task_id, created=True)

    async def _open_task(self, lane: tuple[str, str], kind: str) -> str | None:
        """The open task of ``kind`` for the app, confirmed from its own events (another
        instance may have closed it since this one last heard of it)."""
        while True:
            found = self.ledger.open_tasks.open_for(lane[0], lane[1], kind)
            if found is None:
                return None
            state = await asyncio.to_thread(
                self.ledger.handler.state_of, DispatchTask(found.task_id)
            )
            if state is not None and not state.closed:
                return found.task_id
            self.ledger.open_tasks.forget(found.task_id)

    async def wait_answered(self, task_id: str) -> Any:
        """The task once app-service's answer is recorded, or None after the sync wait."""
        wait = self.dispatcher.settings.sync_wait_seconds
        return await self.dispatcher.wait_answered(task_id, wait)

    def _prepare(self, request: TaskRequest) -> Operation:
        try:
            with self.ledger.read() as conn:
                return _prepared(conn, self.ledger, request)
        except NotFound as not_found:
            raise RequestRefused(404, not_found.message) from None
