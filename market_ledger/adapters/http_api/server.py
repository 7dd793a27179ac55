"""The HTTP API: the app factory and the server that runs it.

:func:`create_app` wires the market routes
(:mod:`market_ledger.adapters.http_api.routes_market`), the task reads
(:mod:`market_ledger.adapters.http_api.routes_tasks_read`), the audit and operator routes
(:mod:`market_ledger.adapters.http_api.routes_ledger`), health, readiness, metrics and the
OpenAPI document behind one guard that counts every request, caps request bodies and turns
an unexpected error into a generic 500 (logged with its traceback, never sent to the client).
:func:`serve_http` runs the app under uvicorn until a stop event is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import sqlalchemy as sa
import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from market_ledger.adapters.health import HealthBoard, describe_failures
from market_ledger.adapters.http_api.common import (
    ApiError,
    HttpServices,
    HttpSettings,
    JSONResponse,
    ReadinessCheck,
    envelope,
    failure,
    read_in_thread,
)
from market_ledger.adapters.http_api.gauges import refresh_gauges
from market_ledger.adapters.http_api.openapi import openapi_document
from market_ledger.adapters.http_api.routes_ledger import ledger_routes
from market_ledger.adapters.http_api.routes_market import market_routes
from market_ledger.adapters.http_api.routes_tasks import TaskDesk, task_routes
from market_ledger.adapters.http_api.routes_tasks_read import task_read_routes
from market_ledger.adapters.metrics import HTTP_REQUESTS, REGISTRY
from market_ledger.projections.notifier_state import define_notifier_tables
from market_ledger.projections.projector import read_position
from market_ledger.projections.queries import UnknownUser
from market_ledger.projections.role_leases import roles_shown
from market_ledger.service.handler import ConcurrencyConflict

log = logging.getLogger(__name__)

UNMATCHED = "unmatched"
NOTIFIER_TABLES = define_notifier_tables()
INTERNAL_ERROR = "internal error; it has been logged"


def create_app(
    services: HttpServices,
    *,
    settings: HttpSettings | None = None,
    readiness: ReadinessCheck | None = None,
    health: HealthBoard | None = None,
    tasks: TaskDesk | None = None,
) -> Starlette:
    """The API over ``services`` (the composition root passes its ``Ledger``).

    ``readiness``, when given, is asked by ``/readyz`` after the store and the projector lag:
    it returns why the service is not ready yet, or None. ``health``, when given, lists the
    state of each part of the service in the answer (``parts``); any part failing makes the
    service not ready, with the parts and their reasons in ``reason``. ``tasks`` takes the
    app operations (install, uninstall, ...); without it their routes answer 503.
    """
    settings = settings or HttpSettings()
    document = orjson.dumps(openapi_document(settings))

    async def healthz(request: Request) -> Response:
        return envelope({"status": "alive"}, "alive")

    async def readyz(request: Request) -> Response:
        status, message, data = await read_in_thread(
            lambda: _readiness(services, settings, readiness, health)
        )
        return envelope(data, message, status=status)

    async def metrics(request: Request) -> Response:
        await read_in_thread(lambda: refresh_gauges(services))
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    async def openapi(request: Request) -> Response:
        return Response(document, media_type="application/json")

    routes = [
        *market_routes(services, settings),
        *task_read_routes(services, settings),
        *ledger_routes(services, settings),
        *task_routes(tasks),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(_Guard, max_body_bytes=settings.max_body_bytes)],
        exception_handlers={
            ApiError: _api_error,
            UnknownUser: _unknown_user,
            HTTPException: _http_exception,
            sa.exc.OperationalError: _store_unavailable,
            sa.exc.InterfaceError: _store_unavailable,
            ConcurrencyConflict: _busy,
        },
    )


# --- readiness and metrics ----------------------------------------------------------------------


def _readiness(
    services: HttpServices,
    settings: HttpSettings,
    check: ReadinessCheck | None,
    health: HealthBoard | None = None,
) -> tuple[int, str, dict[str, Any]]:
    data: dict[str, Any] = {
        "ready": False,
        "log_head": None,
        "projector_position": None,
        "projector_lag": None,
        "reason": None,
    }
    failing = None
    if health is not None:
        data["parts"] = health.report()
        failing = describe_failures(health.failures())
    try:
        with services.read() as conn:
            position = read_position(conn, services.tables)
            data["roles"] = roles_shown(conn)
        head = services.projector.head()
    except Exception:
        log.warning("readiness: the store is unreachable", exc_info=True)
        unreachable = "; ".join(filter(None, ["the store is unreachable", failing]))
        data["reason"] = unreachable
        return 503, f"not ready: {unreachable}", data
    lag = max(head - position, 0)
    data.update(log_head=head, projector_position=position, projector_lag=lag)
    reasons: list[str | None] = []
    if lag > settings.max_ready_lag:
        reasons.append(
            f"the views are {lag} events behind the log (at most {settings.max_ready_lag})"
        )
    elif check is not None:
        reasons.append(check())
    reasons.append(failing)
    reason = "; ".join(r for r in reasons if r) or None
    if reason is not None:
        data["reason"] = reason
        return 503, f"not ready: {reason}", data
    data["ready"] = True
    return 200, "ready", data


# --- errors -------------------------------------------------------------------------------------


def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return failure(exc.status, exc.message)


def _unknown_user(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, UnknownUser)
    return failure(404, f"User data not found: no registered user {exc.user!r}")


def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    response = failure(exc.status_code, exc.detail)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


def _store_unavailable(request: Request, exc: Exception) -> Response:
    log.warning("the store is unavailable: %s", exc)
    return failure(503, "the store is unavailable; try again")


def _busy(request: Request, exc: Exception) -> Response:
    log.warning("gave up after concurrent writes: %s", exc)
    return failure(503, "the ledger is busy; try again")


class _Guard:
    """Counts requests by route and status, caps bodies, hides unexpected errors."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        outcome = {"status": 500, "started": False}
        limit = self.max_body_bytes
        try:
            declared = _content_length(scope)
            if declared is not None and declared > limit:
                outcome["status"] = 413
                await failure(413, f"request body larger than {limit} bytes")(scope, receive, send)
                return
            received = 0

            async def limited_receive() -> Message:
                nonlocal received
                message = await receive()
                received += len(message.get("body", b""))
                if received > limit:
                    raise ApiError(413, f"request body larger than {limit} bytes")
                return message

            async def tracking_send(message: Message) -> None:
                if message["type"] == "http.response.start":
                    outcome["status"] = message["status"]
                    outcome["started"] = True
                await send(message)

            try:
                await self.app(scope, limited_receive, tracking_send)
            except Exception:
                log.exception("unexpected error answering %s %s", scope["method"], scope["path"])
                if outcome["started"]:
                    return  # the answer is under way; the client sees a cut connection
                outcome["status"] = 500
                await failure(500, INTERNAL_ERROR)(scope, receive, send)
        finally:
            HTTP_REQUESTS.labels(route=_route_label(scope), status=str(outcome["status"])).inc()


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


def _route_label(scope: Scope) -> str:
    """The route's path template: bounded label values, whatever paths clients send."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


# --- serving ------------------------------------------------------------------------------------


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: the caller owns the signals and sets ``stop``."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening-ready TCP socket on ``host:port`` (port 0: any free port)."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


async def serve_http(
    app: ASGIApp,
    host: str,
    port: int,
    stop: asyncio.Event,
    *,
    on_listening: Callable[[int], None] | None = None,
    grace_seconds: int = 5,
    sock: socket.socket | None = None,
) -> None:
    """Serve ``app`` on ``host:port`` until ``stop`` is set, then shut down cleanly.

    The socket is bound before anything else, so a port in use raises ``OSError`` here;
    ``sock``, a socket bound already (see :func:`bind_socket`), is served instead (a caller
    that binds first learns of a busy port before starting anything else).
    ``on_listening`` receives the port once the server accepts connections (useful with
    port 0). In-flight requests get ``grace_seconds`` to finish after ``stop``.
    """
    sock = sock if sock is not None else bind_socket(host, port)
    config = uvicorn.Config(
        app,
        lifespan="off",
        access_log=False,
        log_config=None,
        server_header=False,
        timeout_graceful_shutdown=grace_seconds,
    )
    server = _Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    stopping = asyncio.create_task(stop.wait())
    try:
        while not server.started and not serving.done() and not stopping.done():
            await asyncio.wait({serving, stopping}, timeout=0.01)
        if server.started and on_listening is not None:
            on_listening(int(sock.getsockname()[1]))
        await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        server.should_exit = True
        stopping.cancel()
        try:
            await serving
        finally:
            sock.close()


__all__ = [
    "HttpServices",
    "HttpSettings",
    "JSONResponse",
    "bind_socket",
    "create_app",
    "serve_http",
]
