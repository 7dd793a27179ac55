"""The market's routes, with the paths and shapes the market's clients know.

``GET /market/hash``, ``GET /market/data``, ``GET /market/state`` and ``POST /apps`` answer
for the user of the ``X-Bfl-User`` header, or for the ``user`` query parameter when the
requester is an admin.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

import orjson
from sqlalchemy.engine import Connection
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from market_ledger.adapters.http_api.common import (
    BadRequest,
    HttpServices,
    HttpSettings,
    authorize_read,
    body_object,
    consistent,
    envelope,
    json_body,
    name_value,
    query_name,
    read_in_thread,
    requester,
)
from market_ledger.adapters.http_api.unchanged import StoreWatch, UnchangedAnswers
from market_ledger.projections import queries
from market_ledger.projections.market_reads import (
    LatestEntriesCache,
    SimpleInfoCache,
    find_entries,
)
from market_ledger.projections.market_shapes import market_sources
from market_ledger.projections.projector import read_position
from market_ledger.projections.views_version import recorded_version

PREFIX = "/app-store/api/v2"


def _who(request: Request) -> tuple[str, str]:
    """(requester, the user whose data is read)."""
    who = requester(request)
    return who, query_name(request, "user") or who


def market_routes(services: HttpServices, settings: HttpSettings) -> list[Route]:
    tables = services.tables

    #: the three routes' answers while nothing was committed, by route, requester and user
    unchanged: UnchangedAnswers[Any] = UnchangedAnswers(
        StoreWatch(services), 3 * settings.cached_users
    )

    async def market_hash(request: Request) -> Response:
        who, target = _who(request)

        def work() -> dict[str, Any]:
            with services.read() as conn:
                authorize_read(conn, tables, who, target)
                return {"hash": queries.stored_hash(conn, tables, target)}

        data = await unchanged.get(("hash", who, target), work)
        return envelope(data, "Market hash retrieved successfully")

    cache = SnapshotCache(settings.cached_users)
    listings = LatestEntriesCache(settings.cached_users, SimpleInfoCache())

    def build_user_data(conn: Connection, target: str, *, with_apps: bool) -> dict[str, Any]:
        """``{"sources", "hash"}`` of the target user; the listing rows and their encoded
        latest entries come from ``listings`` while they are unchanged."""
        rows = queries.user_rows(conn, tables, target, ())
        if with_apps:
            index, latest = listings.latest(conn, tables, rows)
            sources = market_sources(rows, with_apps=True, index=index, latest=latest)
        else:
            index = listings.index(conn, tables, target)
            sources = market_sources(rows, with_apps=False, index=index)
        return {"sources": sources, "hash": rows.user["hash"]}

    def user_data(who: str, target: str, *, with_apps: bool) -> orjson.Fragment:
        """The serialized user data, read in one snapshot; reused while the views stay at
        the position it was built at (the views are a function of their position, for one
        projection version: a changed projection switched in makes other rows from the
        same events)."""
        with services.read() as conn:
            consistent(conn)
            position = read_position(conn, tables)
            authorize_read(conn, tables, who, target)
            return cache.get_or_build(
                (target, with_apps, recorded_version(conn, tables)),
                position,
                lambda: orjson.dumps(build_user_data(conn, target, with_apps=with_apps)),
            )

    async def market_data(request: Request) -> Response:
        who, target = _who(request)
        data = await unchanged.get(
            ("data", who, target), lambda: user_data(who, target, with_apps=True)
        )
        return envelope(
            {"user_data": data, "user_id": target, "timestamp": int(time.time())},
            "Market data retrieved successfully",
        )

    async def market_state(request: Request) -> Response:
        who, target = _who(request)
        data = await unchanged.get(
            ("state", who, target), lambda: user_data(who, target, with_apps=False)
        )
        return envelope(
            {"user_data": data, "user_id": target, "timestamp": int(time.time())},
            "Market state retrieved successfully",
        )

    async def apps(request: Request) -> Response:
        who, target = _who(request)
        wanted = _wanted_apps(
            await json_body(request, settings.max_body_bytes), settings.max_apps_per_request
        )

        def work() -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
            with services.read() as conn:
                consistent(conn)
                authorize_read(conn, tables, who, target)
                queries.registered_user(conn, tables, target)
                return find_entries(conn, tables, target, wanted)

        found, missing = await read_in_thread(work)
        data: dict[str, Any] = {"apps": found, "total_count": len(found)}
        if missing:
            data["not_found"] = [{"appid": app, "sourceDataName": src} for app, src in missing]
        return envelope(data, "Apps information retrieved successfully")

    return [
        Route(f"{PREFIX}/market/hash", market_hash, methods=["GET"]),
        Route(f"{PREFIX}/market/data", market_data, methods=["GET"]),
        Route(f"{PREFIX}/market/state", market_state, methods=["GET"]),
        Route(f"{PREFIX}/apps", apps, methods=["POST"]),
    ]


class SnapshotCache:
    """Serialized answers by key, each valid while the views stay at the position it was
    built at.

    One request builds a key whose position moved; requests that come meanwhile for that
    position wait for it rather than build it again, and never get the previous snapshot:
    a reader that has just seen its change reach the views must find it in the answer.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[Hashable, tuple[int, orjson.Fragment]] = OrderedDict()
        self._lock = threading.Lock()
        self._builders: dict[Hashable, threading.Lock] = {}

    def _current(self, key: Hashable, position: int) -> orjson.Fragment | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
            return entry[1] if entry[0] >= position else None

    def get_or_build(
        self, key: Hashable, position: int, build: Callable[[], bytes]
    ) -> orjson.Fragment:
        found = self._current(key, position)
        if found is not None:
            return found
        with self._lock:
            builder = self._builders.setdefault(key, threading.Lock())
        with builder:
            found = self._current(key, position)  # built meanwhile
            if found is not None:
                return found
            value = orjson.Fragment(build())
            with self._lock:
                self._entries[key] = (position, value)
                self._entries.move_to_end(key)
                while len(self._entries) > self.capacity:
                    evicted, _ = self._entries.popitem(last=False)
                    self._builders.pop(evicted, None)
            return value


def _wanted_apps(body: Any, limit: int) -> list[tuple[str, str]]:
    """``{"apps": [{"appid", "sourceDataName"}, ...]}`` as (app, source) pairs."""
    items = body_object(body).get("apps")
    if not isinstance(items, list):
        raise BadRequest("field 'apps' must be a list of {appid, sourceDataName}")
    if not items:
        raise BadRequest("Apps array cannot be empty")
    if len(items) > limit:
        raise BadRequest(f"at most {limit} apps per request")
    wanted = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise BadRequest(f"apps[{index}] must be an object with appid and sourceDataName")
        app, source = item.get("appid"), item.get("sourceDataName")
        if not isinstance(app, str) or not isinstance(source, str):
            raise BadRequest(f"apps[{index}]: appid and sourceDataName must be strings")
        app_name = name_value(app, f"apps[{index}].appid")
        if app_name is None:
            raise BadRequest(f"apps[{index}].appid must not be empty")
        wanted.append((app_name, name_value(source, f"apps[{index}].sourceDataName") or ""))
    return wanted
