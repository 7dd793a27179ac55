"""Every route the API serves, declared once: path, method, parameters, body and answers.

Adding a route to the app means adding its :class:`Operation` here; a test fails while the
routes the app serves and this table differ.
"""

from __future__ import annotations

from market_ledger.adapters.http_api.common import HttpSettings
from market_ledger.adapters.http_api.openapi_schema import (
    BFL_USER,
    USER_ERRORS,
    USER_PARAMS,
    Operation,
    answer,
    array,
    envelope,
    errors,
    integer,
    name,
    nullable,
    obj,
    ok,
    param,
    ref,
    string,
)
from market_ledger.adapters.http_api.openapi_task_operations import task_operations
from market_ledger.adapters.http_api.openapi_tasks import task_read_operations
from market_ledger.adapters.http_api.routes_ledger import PREFIX as LEDGER
from market_ledger.adapters.http_api.routes_market import PREFIX as MARKET

#: what the operator's routes on parked NATS messages mean by these answers
INTAKE_MEANING = {
    "400": "Bad parameters or body: the message says which and why.",
    "403": "Without the admin role.",
    "503": "The store is unreachable.",
}
SETTLE_MEANING = {
    **INTAKE_MEANING,
    "404": "No parked message has this id.",
    "409": "The message is not parked (any more), or failed again: it stays parked.",
}
SETTLE_ERRORS = ("400", "401", "403", "404", "409", "413", "500", "503")


def operations(settings: HttpSettings) -> tuple[Operation, ...]:
    """The table, in the order the app mounts the routes."""
    return (
        *_market(settings),
        *task_read_operations(),
        *task_operations(_body_limit(settings)),
        *_ledger(settings),
        *_intake(settings),
        *_service(),
    )


def _body_limit(settings: HttpSettings) -> str:
    return f"Bodies larger than {settings.max_body_bytes} bytes are refused (413)."


def _market(settings: HttpSettings) -> tuple[Operation, ...]:
    not_found = obj(["appid", "sourceDataName"], appid=string(), sourceDataName=string())
    found = obj(
        ["apps", "total_count"],
        apps=array({"type": "object"}),
        total_count=integer(minimum=0),
        not_found=array(not_found),
    )
    return (
        Operation(
            "get",
            f"{MARKET}/market/hash",
            "marketHash",
            "The user's content hash; clients refetch the data when it changes.",
            {**ok("The hash.", obj(["hash"], hash=string())), **errors(*USER_ERRORS)},
            USER_PARAMS,
        ),
        Operation(
            "get",
            f"{MARKET}/market/data",
            "marketData",
            "Per source: latest entries, installed states and extras; the hash.",
            {**ok("The user's market data.", ref("MarketData")), **errors(*USER_ERRORS)},
            USER_PARAMS,
        ),
        Operation(
            "get",
            f"{MARKET}/market/state",
            "marketState",
            "Per source: installed states; the hash.",
            {**ok("The user's installed states.", ref("MarketData")), **errors(*USER_ERRORS)},
            USER_PARAMS,
        ),
        Operation(
            "post",
            f"{MARKET}/apps",
            "appsInfo",
            "Full latest entries of the given apps. " + _body_limit(settings),
            {
                **ok("The entries found, and the apps not found.", found),
                **errors(*USER_ERRORS, "413", "415"),
            },
            USER_PARAMS,
            body="AppsRequest",
        ),
    )


def _ledger(settings: HttpSettings) -> tuple[Operation, ...]:
    retried = obj(
        ["user", "source", "app_id", "status"],
        user=string(),
        source=string(),
        app_id=string(),
        status=string(),
        position=nullable(integer()),
    )
    return (
        Operation(
            "get",
            f"{LEDGER}/history",
            "history",
            "An app's lifecycle for a user, in log order.",
            {**ok("The history.", array(ref("HistoryEntry"))), **errors(*USER_ERRORS)},
            (
                *USER_PARAMS,
                param("app", "query", name(), "The app id or installed name.", True),
                param("source", "query", name(), "Only this source."),
            ),
        ),
        Operation(
            "get",
            f"{LEDGER}/catalog",
            "catalog",
            "The user's catalog now, or as it was at a log position or a time.",
            {**ok("The catalog.", ref("Catalog")), **errors(*USER_ERRORS)},
            (
                *USER_PARAMS,
                param(
                    "position",
                    "query",
                    integer(minimum=0, maximum=10**18 - 1),
                    "Replay the log up to this position (inclusive).",
                ),
                param(
                    "at",
                    "query",
                    string(format="date-time"),
                    "Replay the events decided at or before this RFC 3339 time.",
                ),
            ),
        ),
        Operation(
            "get",
            f"{LEDGER}/status",
            "status",
            "Positions, projector lag, counts per status, parked renders (admin).",
            {**ok("The status.", ref("Status")), **errors("400", "401", "403", "500", "503")},
            (BFL_USER,),
        ),
        Operation(
            "post",
            f"{LEDGER}/retry",
            "retryParked",
            "Retry a parked render (admin). " + _body_limit(settings),
            {
                **ok("The render is pending again.", retried),
                **errors("400", "401", "403", "404", "409", "413", "415", "500", "503"),
            },
            (BFL_USER,),
            body="RetryRequest",
        ),
    )


def _intake(settings: HttpSettings) -> tuple[Operation, ...]:
    settled = obj(["id", "status"], id=string(), status=string())
    replayed = obj(
        ["id", "status", "outcome"],
        id=string(),
        status=string(),
        outcome=string(enum=["accepted", "rejected", "unknown_user", "ignored"]),
        detail=string(),
    )
    return (
        Operation(
            "get",
            f"{LEDGER}/intake/parked",
            "parkedMessages",
            "NATS messages the intake could not take in, oldest first (admin).",
            {
                **ok("The parked messages.", array(ref("ParkedMessage"))),
                **errors("400", "401", "403", "500", "503", meaning=INTAKE_MEANING),
            },
            (
                BFL_USER,
                param(
                    "all",
                    "query",
                    string(enum=["true", "false"]),
                    "Also the messages replayed or discarded since.",
                ),
            ),
        ),
        Operation(
            "post",
            f"{LEDGER}/intake/replay",
            "replayParkedMessage",
            "Parse a parked message again and take it in (admin). " + _body_limit(settings),
            {
                **ok("The message was taken in.", replayed),
                **errors(*SETTLE_ERRORS, meaning=SETTLE_MEANING),
            },
            (BFL_USER,),
            body="ParkedMessageRequest",
        ),
        Operation(
            "post",
            f"{LEDGER}/intake/discard",
            "discardParkedMessage",
            "Give up on a parked message, on the record (admin). " + _body_limit(settings),
            {
                **ok("The message is discarded.", settled),
                **errors(*SETTLE_ERRORS, meaning=SETTLE_MEANING),
            },
            (BFL_USER,),
            body="ParkedMessageRequest",
        ),
    )


def _service() -> tuple[Operation, ...]:
    """Health, readiness, metrics and this document: no user, no envelope for the last two."""
    return (
        Operation(
            "get",
            "/healthz",
            "healthz",
            "Liveness: the process answers.",
            ok("Alive.", obj(["status"], status=string())),
        ),
        Operation(
            "get",
            "/readyz",
            "readyz",
            "Readiness: the store is reachable and the views are caught up.",
            {
                **ok("Ready.", ref("Readiness")),
                "503": answer("Not ready; the message says why.", envelope(ref("Readiness"))),
            },
        ),
        Operation(
            "get",
            "/metrics",
            "metrics",
            "Prometheus metrics.",
            {"200": answer("The Prometheus text format.", string(), "text/plain")},
        ),
        Operation(
            "get",
            "/openapi.json",
            "openapi",
            "This document.",
            {"200": answer("The OpenAPI document.", {"type": "object"})},
        ),
    )
