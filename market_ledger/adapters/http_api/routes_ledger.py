"""Audit and operator routes, under ``/app-store/api/v2/ledger``.

- ``GET history``: an app's lifecycle for a user (the JSON of ``market-ledger history --json``);
- ``GET catalog``: a user's catalog now, or as it was at a log ``position`` or at a time ``at``
  (replayed from the events, see :mod:`market_ledger.projections.time_travel`);
- ``GET status``: positions, projector lag, counts per status, parked renders (admin);
- ``POST retry``: retry a parked render (admin);
- ``GET intake/parked``: the NATS messages the intake parked (admin; ``?all=true``: replayed
  and discarded ones too);
- ``POST intake/replay`` and ``POST intake/discard``, body ``{"id"}``: replay a parked message
  (parsed and handled again, as the intake would) or give up on it (admin).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from market_ledger.adapters.http_api.common import (
    ApiError,
    BadRequest,
    BoundedThreads,
    HttpServices,
    HttpSettings,
    authorize_read,
    body_name,
    body_object,
    consistent,
    envelope,
    in_thread,
    json_body,
    query_instant,
    query_name,
    query_position,
    read_in_thread,
    requester,
    require_admin,
)
from market_ledger.adapters.nats import parking
from market_ledger.domain.decider import CommandRejected
from market_ledger.projections import queries
from market_ledger.projections.schema import ViewTables
from market_ledger.service.catalog_at import BeyondTheHead, NotRegisteredThen, catalog_at
from market_ledger.service.parked_renders import NotParked, ParkedInSeveral, retry_parked_render

PREFIX = "/app-store/api/v2/ledger"


def _known_user(conn: Connection, tables: ViewTables, user: str) -> None:
    """404 unless ``user`` was ever registered (history outlives a removal)."""
    users = tables.users
    found = conn.execute(sa.select(users.c.user_name).where(users.c.user_name == user)).first()
    if found is None:
        raise ApiError(404, f"User data not found: no user {user!r} was ever registered")


def ledger_routes(services: HttpServices, settings: HttpSettings) -> list[Route]:
    tables = services.tables
    time_travel_threads = BoundedThreads(
        "time travel", settings.time_travel_threads, settings.time_travel_queue
    )

    async def history(request: Request) -> Response:
        who = requester(request)
        target = query_name(request, "user") or who
        app = query_name(request, "app", required=True)
        assert app is not None
        source = query_name(request, "source")

        def work() -> list[dict[str, Any]]:
            with services.read() as conn:
                authorize_read(conn, tables, who, target)
                _known_user(conn, tables, target)
                return queries.history(conn, tables, target, app, source)

        return envelope(await read_in_thread(work), "History retrieved successfully")

    async def catalog(request: Request) -> Response:
        who = requester(request)
        target = query_name(request, "user") or who
        position = query_position(request)
        moment = query_instant(request)
        if position is not None and moment is not None:
            raise BadRequest("give either 'position' or 'at', not both")

        def checked(conn: Connection) -> Connection:
            conn = consistent(conn)
            authorize_read(conn, tables, who, target)
            return conn

        def work() -> dict[str, Any]:
            try:
                return catalog_at(services, target, position=position, moment=moment, check=checked)
            except BeyondTheHead as beyond:
                raise BadRequest(str(beyond)) from None
            except NotRegisteredThen as missing:
                raise ApiError(404, f"User data not found: {missing}") from None

        travelling = position is not None or moment is not None
        run = time_travel_threads.run if travelling else read_in_thread
        return envelope(await run(work), "Catalog retrieved successfully")

    async def status(request: Request) -> Response:
        who = requester(request)

        def work() -> dict[str, Any]:
            with services.read() as conn:
                consistent(conn)
                require_admin(conn, tables, who, "the ledger's status")
                return queries.status(conn, tables, services.projector.head())

        return envelope(await read_in_thread(work), "Status retrieved successfully")

    async def retry(request: Request) -> Response:
        who = requester(request)
        body = body_object(await json_body(request, settings.max_body_bytes))
        user = body_name(body, "user")
        app = body_name(body, "app_id")
        source = body_name(body, "source", required=False)
        assert user is not None and app is not None

        def work() -> dict[str, Any]:
            with services.read() as conn:
                require_admin(conn, tables, who, "retrying a parked render")
                queries.registered_user(conn, tables, user)
            try:
                retried = retry_parked_render(services, user, app, source, requested_by=who)
            except NotParked as not_parked:
                raise ApiError(409, str(not_parked)) from None
            except ParkedInSeveral as several:
                raise BadRequest(f"{several}: give 'source'") from None
            except CommandRejected as rejected:
                raise ApiError(409, str(rejected)) from None
            return {
                "user": retried.user,
                "source": retried.source,
                "app_id": retried.app_id,
                "status": "pending",
                "position": retried.position,
            }

        return envelope(await in_thread(work), "Render retry requested")

    return [
        Route(f"{PREFIX}/history", history, methods=["GET"]),
        Route(f"{PREFIX}/catalog", catalog, methods=["GET"]),
        Route(f"{PREFIX}/status", status, methods=["GET"]),
        Route(f"{PREFIX}/retry", retry, methods=["POST"]),
        *intake_routes(services, settings),
    ]


def intake_routes(services: HttpServices, settings: HttpSettings) -> list[Route]:
    """The operator's routes on parked NATS messages (the same use cases as the CLI's)."""
    tables = services.tables

    def admin(who: str, what: str) -> None:
        with services.read() as conn:
            require_admin(conn, tables, who, what)

    async def parked(request: Request) -> Response:
        who = requester(request)
        flag = request.query_params.get("all", "false").strip().lower()
        if flag not in ("true", "false"):
            raise BadRequest("'all' must be true or false")

        def work() -> list[dict[str, Any]]:
            admin(who, "listing parked messages")
            return parking.list_parked(services, include_resolved=flag == "true")

        return envelope(await read_in_thread(work), "Parked messages retrieved successfully")

    async def message_id_of(request: Request) -> str:
        body = body_object(await json_body(request, settings.max_body_bytes))
        value = body.get("id")
        if not isinstance(value, str) or not value.strip():
            raise BadRequest("field 'id' must be a parked message's id")
        return value.strip()

    def settled(act: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        try:
            return act()
        except parking.UnknownParkedMessage as unknown:
            raise ApiError(404, str(unknown)) from None
        except (parking.ReplayFailed, CommandRejected) as refused:
            raise ApiError(409, str(refused)) from None

    def operation(
        act: Callable[..., dict[str, Any]], what: str, done: str
    ) -> Callable[[Request], Awaitable[Response]]:
        """A route that lets an admin act on one parked message, named in the body."""

        async def route(request: Request) -> Response:
            who = requester(request)
            message_id = await message_id_of(request)

            def work() -> dict[str, Any]:
                admin(who, what)
                return settled(lambda: act(services, message_id, requested_by=who))

            return envelope(await in_thread(work), done)

        return route

    replay = operation(parking.replay, "replaying a parked message", "Parked message replayed")
    discard = operation(parking.discard, "discarding a parked message", "Parked message discarded")

    return [
        Route(f"{PREFIX}/intake/parked", parked, methods=["GET"]),
        Route(f"{PREFIX}/intake/replay", replay, methods=["POST"]),
        Route(f"{PREFIX}/intake/discard", discard, methods=["POST"]),
    ]
