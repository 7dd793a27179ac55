"""Plumbing shared by the HTTP routes: what the app needs, the envelope, errors, who asks.

Every answer is JSON in the market's envelope ``{"success", "message", "data"}``. The user is
the ``X-Bfl-User`` header, set by the gateway in front of the market: without it a request is
refused (401); reading another user's data needs the admin role (403).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol, TypeVar

import anyio
import anyio.to_thread
import attrs
import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from market_ledger.domain.canonical import parse_instant
from market_ledger.domain.decider import Command
from market_ledger.domain.limits import MAX_NAME as MAX_NAME  # the routes' schema states it
from market_ledger.domain.limits import name_problem
from market_ledger.projections.generations import raced_the_switch
from market_ledger.projections.schema import ViewTables
from market_ledger.service.application import LedgerApplication
from market_ledger.service.handler import Outcome
from market_ledger.service.open_tasks import OpenTasks

USER_HEADER = "X-Bfl-User"
ADMIN_ROLE = "admin"

T = TypeVar("T")

log = logging.getLogger(__name__)


# --- what the app needs from the wired service --------------------------------------------------


class LogPositions(Protocol):
    def head(self) -> int: ...

    def position(self) -> int: ...


class CommandExecutor(Protocol):
    def execute(self, command: Command) -> Outcome: ...

    def handle(self, *commands: Command) -> Outcome: ...

    def state_of(self, command: Command) -> Any: ...


class HttpServices(Protocol):
    """What the HTTP API needs; the composition root passes its ``Ledger``."""

    @property
    def tables(self) -> ViewTables: ...

    @property
    def projector(self) -> LogPositions: ...

    @property
    def handler(self) -> CommandExecutor: ...

    @property
    def open_tasks(self) -> OpenTasks: ...

    @property
    def application(self) -> LedgerApplication:
        """The event store, read for time travel and for entries rendered before an offer."""
        ...

    def read(self) -> AbstractContextManager[Connection]: ...


#: an extra readiness check: a reason the service is not ready, or None when it is
ReadinessCheck = Callable[[], "str | None"]


@attrs.frozen
class HttpSettings:
    #: request bodies larger than this are refused with 413
    max_body_bytes: int = 64 * 1024
    #: /readyz answers 503 while the views are more than this many events behind the log
    max_ready_lag: int = 100
    #: how many apps one POST /apps may ask for
    max_apps_per_request: int = 500
    #: serialized market data kept for this many (user, route) pairs, each valid while the
    #: views stay at the position it was built at
    cached_users: int = 32
    #: time travel replays the log: it runs in threads of its own, never the store's
    time_travel_threads: int = 2
    #: time-travel requests that may wait for those threads; beyond, 503 with Retry-After
    time_travel_queue: int = 4


# --- errors and the envelope --------------------------------------------------------------------


class ApiError(Exception):
    """An answer other than success, with a message meant for the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class BadRequest(ApiError):
    def __init__(self, message: str) -> None:
        super().__init__(400, message)


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def envelope(
    data: Any, message: str = "ok", *, status: int = 200, success: bool | None = None
) -> JSONResponse:
    ok = status < 400 if success is None else success
    return JSONResponse({"success": ok, "message": message, "data": data}, status_code=status)


def failure(status: int, message: str) -> JSONResponse:
    return envelope(None, message, status=status, success=False)


#: threads that run store work at once: enough to overlap I/O waits; more would only make
#: the threads fight over the interpreter lock and stretch every request
STORE_THREADS = 4
#: one limiter per event loop (a limiter belongs to the loop it is used in)
_store_threads: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = (
    weakref.WeakKeyDictionary()
)


async def in_thread(work: Callable[[], T]) -> T:
    """Run blocking store work off the event loop, at most STORE_THREADS at a time."""
    loop = asyncio.get_running_loop()
    limiter = _store_threads.get(loop)
    if limiter is None:
        limiter = _store_threads[loop] = anyio.CapacityLimiter(STORE_THREADS)
    return await anyio.to_thread.run_sync(work, limiter=limiter)


async def read_in_thread(work: Callable[[], T]) -> T:
    """``in_thread`` for work that only reads: run once more when it met a rebuild's switch.

    The switch replaces the view tables in one transaction; a read that raced it may fail
    (market_ledger.projections.generations says when), and run again it finds the new
    tables. Only for reads: work that writes might have written before it failed.
    """
    try:
        return await in_thread(work)
    except sa.exc.DBAPIError as error:
        if not raced_the_switch(error):
            raise
        log.info("a read met a rebuild's switch and runs again: %s", type(error.orig).__name__)
    return await in_thread(work)


class BoundedThreads:
    """Threads of their own for one kind of slow work, with a bounded queue in front.

    Replaying the log for time travel takes seconds on a large store: in the store threads,
    a few such requests would hold every one of them and stall the market routes. Here at
    most ``threads`` run at once, at most ``queue`` wait, and any more are refused at once
    (503 with ``Retry-After``) instead of piling up.
    """

    def __init__(self, what: str, threads: int, queue: int, retry_after: int = 2) -> None:
        if threads < 1 or queue < 0:
            raise ValueError(f"{what}: at least 1 thread and a queue of 0 or more")
        self.what = what
        self.threads = threads
        self.queue = queue
        self.retry_after = retry_after
        #: requests admitted (running or waiting), on the event loop's thread only
        self.admitted = 0
        self._limiters: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, anyio.CapacityLimiter
        ] = weakref.WeakKeyDictionary()

    async def run(self, work: Callable[[], T]) -> T:
        if self.admitted >= self.threads + self.queue:
            raise HTTPException(
                503,
                f"{self.what} is busy ({self.threads} running, {self.queue} waiting): "
                f"try again in {self.retry_after} s",
                headers={"Retry-After": str(self.retry_after)},
            )
        loop = asyncio.get_running_loop()
        limiter = self._limiters.get(loop)
        if limiter is None:
            limiter = self._limiters[loop] = anyio.CapacityLimiter(self.threads)
        self.admitted += 1
        try:
            return await anyio.to_thread.run_sync(work, limiter=limiter)
        finally:
            self.admitted -= 1


# --- parameters ---------------------------------------------------------------------------------


def name_value(value: str | None, what: str) -> str | None:
    """A user, app or source name: stripped, within the domain's limits, no control chars."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    problem = name_problem(value)
    if problem is not None:
        raise BadRequest(f"{what} {problem}")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise BadRequest(f"{what} contains control characters")
    return value


def requester(request: Request) -> str:
    """The user making the request, from the ``X-Bfl-User`` header (exactly one of them).

    Two headers are refused rather than one chosen: a proxy that adds its own header in
    front of a client's would otherwise decide who the client is by their order.
    """
    given = request.headers.getlist(USER_HEADER)
    if len(given) > 1:
        raise BadRequest(
            f"ambiguous identity: {len(given)} {USER_HEADER} headers; send exactly one"
        )
    user = name_value(given[0] if given else None, f"header {USER_HEADER}")
    if user is None:
        raise ApiError(401, f"missing {USER_HEADER} header: who is asking is unknown")
    return user


def query_name(request: Request, name: str, *, required: bool = False) -> str | None:
    value = name_value(request.query_params.get(name), f"parameter {name!r}")
    if value is None and required:
        raise BadRequest(f"parameter {name!r} is required")
    return value


def query_position(request: Request, name: str = "position") -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    text = raw.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise BadRequest(f"parameter {name!r} must be a log position (an integer >= 0)")
    return int(text)


def query_instant(request: Request, name: str = "at") -> datetime | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        return parse_instant(raw)
    except (ValueError, OverflowError):
        raise BadRequest(
            f"parameter {name!r} must be an RFC 3339 time, e.g. 2026-11-01T12:00:00Z"
        ) from None


JSON_MEDIA_TYPE = "application/json"


def require_json_content(request: Request) -> None:
    """415 unless the body is declared ``application/json`` (parameters such as charset allowed).

    A form or plain-text body is then never taken for a command, whatever it contains (a
    browser sends those across origins without asking first).
    """
    declared = request.headers.get("content-type")
    media_type = (declared or "").partition(";")[0].strip().lower()
    if media_type != JSON_MEDIA_TYPE:
        said = f"{declared!r}" if declared else "none"
        raise ApiError(415, f"the body must be sent as {JSON_MEDIA_TYPE} (Content-Type: {said})")


async def json_body(request: Request, limit: int) -> Any:
    """The request body as JSON; 415 unless declared JSON, 413 past ``limit`` bytes, 400 when
    it is not JSON."""
    require_json_content(request)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"request body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"request body larger than {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body.strip():
        raise BadRequest("a JSON body is required")
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequest("the body is not valid JSON") from None
    return value


def body_object(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise BadRequest("the body must be a JSON object")
    return value


def body_name(body: Mapping[str, Any], field: str, *, required: bool = True) -> str | None:
    value = body.get(field)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"field {field!r} must be a string")
    checked = name_value(value, f"field {field!r}")
    if checked is None and required:
        raise BadRequest(f"field {field!r} must not be empty")
    return checked


# --- access -------------------------------------------------------------------------------------


def role_of(conn: Connection, tables: ViewTables, user: str) -> str | None:
    """The role of a registered user, None when the user is not registered."""
    users = tables.users
    row = conn.execute(
        sa.select(users.c.role, users.c.registered).where(users.c.user_name == user)
    ).first()
    if row is None or not row.registered:
        return None
    return str(row.role)


def require_admin(conn: Connection, tables: ViewTables, who: str, what: str) -> None:
    if role_of(conn, tables, who) != ADMIN_ROLE:
        raise ApiError(403, f"{what} needs the admin role; {who!r} does not have it")


def authorize_read(conn: Connection, tables: ViewTables, who: str, target: str) -> None:
    """A user reads their own data; reading another user's needs the admin role."""
    if target != who:
        require_admin(conn, tables, who, "reading another user's data")


def consistent(conn: Connection) -> Connection:
    """On PostgreSQL, one snapshot for every statement of a read (SQLite reads have one)."""
    if conn.dialect.name == "postgresql":
        return conn.execution_options(isolation_level="REPEATABLE READ")
    return conn
