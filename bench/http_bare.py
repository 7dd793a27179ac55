"""The bare anchor of the HTTP benchmark: the same ASGI server answering a constant body.

A Starlette app with one route and no middleware, served by the project's own
``serve_http`` (uvicorn, the same settings) in the same server process, on a port of its
own: ``GET /bare/SIZE`` answers SIZE bytes of JSON, made once. :mod:`bench.http_bench`
loads it with the same open-loop client at the same rate as the project's routes, with the
sizes of the project's answers, right after them and with the same churn running, and
prints both figures side by side (:mod:`bench.pairs`).
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.pairs import Pair

#: issue 14's targets: p99 in ms for each route, and at most this many times the bare p99
ABSOLUTE_TARGETS_MS = {"hash": 5.0, "data": 10.0}
WITHIN_BARE = 3.0


def bare_app() -> Starlette:
    bodies: dict[int, bytes] = {}

    async def constant(request: Request) -> Response:
        size: int = request.path_params["size"]
        body = bodies.get(size)
        if body is None:
            body = bodies[size] = b'"' + b"x" * max(size - 2, 0) + b'"'
        return Response(body, media_type="application/json")

    return Starlette(routes=[Route("/bare/{size:int}", constant, methods=["GET"])])


def bare_paths(sizes: dict[str, int]) -> dict[str, str]:
    """The bare route answering as many bytes as each of the project's routes."""
    return {name: f"/bare/{size}" for name, size in sizes.items()}


def http_pairs(project: dict[str, Any], bare: dict[str, Any], names: list[str]) -> list[Pair]:
    """p99 of each route vs the bare route of the same size (target: within 3 x)."""
    pairs = []
    for name in names:
        ours, theirs = project[name]["p99_ms"], bare[name]["p99_ms"]
        if ours is None or theirs is None:
            continue  # nothing answered: the failures are in the report
        pairs.append(
            Pair(
                f"http: {name} p99 vs bare constant body of the same size",
                ours,
                theirs,
                "ms",
                higher_is_better=False,
                target=round(1 / WITHIN_BARE, 4),
            )
        )
    return pairs


def absolute_targets(project: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """Each route's p99 against its target in ms."""
    return {
        name: {
            "p99_ms": project[name]["p99_ms"],
            "target_ms": ABSOLUTE_TARGETS_MS[name],
            "met": project[name]["p99_ms"] is not None
            and project[name]["p99_ms"] <= ABSOLUTE_TARGETS_MS[name],
        }
        for name in names
        if name in ABSOLUTE_TARGETS_MS
    }
