"""The OpenAPI document of the HTTP API, served at ``GET /openapi.json``.

Written by hand next to the routes; a schema-driven test sends generated requests to every
operation it describes and checks the answers against it.
"""

from __future__ import annotations

from typing import Any

from market_ledger.adapters.http_api.common import MAX_NAME, USER_HEADER, HttpSettings
from market_ledger.adapters.http_api.openapi_intake import intake_paths, intake_schemas

MARKET = "/app-store/api/v2"
LEDGER = "/app-store/api/v2/ledger"
#: a name: no control characters, no surrounding whitespace
NAME_PATTERN = r"^[^\u0000-\u0020\u007f]([^\u0000-\u001f\u007f]*[^\u0000-\u0020\u007f])?$"

Schema = dict[str, Any]


def _string(**extra: Any) -> Schema:
    return {"type": "string", **extra}


def _name() -> Schema:
    return _string(minLength=1, maxLength=MAX_NAME, pattern=NAME_PATTERN)


def _nullable(schema: Schema) -> Schema:
    return {**schema, "nullable": True}


def _object(required: list[str] | None = None, **properties: Schema) -> Schema:
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def _array(items: Schema, **extra: Any) -> Schema:
    return {"type": "array", "items": items, **extra}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _integer(**extra: Any) -> Schema:
    return {"type": "integer", **extra}


def _envelope(data: Schema) -> Schema:
    return _object(
        ["success", "message", "data"],
        success={"type": "boolean"},
        message=_string(),
        data=data,
    )


def _ok(description: str, data: Schema) -> Schema:
    return {
        "description": description,
        "content": {"application/json": {"schema": _envelope(data)}},
    }


ERRORS = {
    "400": f"Bad parameters or body, or more than one {USER_HEADER} header: the message "
    "says which and why.",
    "401": f"No {USER_HEADER} header.",
    "403": "Another user's data, or an operator action, without the admin role.",
    "404": "Unknown user.",
    "409": "The render is not parked (any more).",
    "413": "The request body is too large.",
    "415": "The body is not declared application/json (a charset parameter is allowed).",
    "500": "An unexpected error (details are logged, not returned).",
    "503": "The store is unreachable, or (time travel) its own threads and queue are full: "
    "try again after Retry-After seconds.",
}


def _errors(*codes: str) -> dict[str, Schema]:
    return {
        code: {
            "description": ERRORS[code],
            "content": {"application/json": {"schema": _ref("Error")}},
        }
        for code in codes
    }


def _param(
    name: str, where: str, schema: Schema, description: str, required: bool = False
) -> Schema:
    return {
        "name": name,
        "in": where,
        "required": required,
        "description": description,
        "schema": schema,
    }


USER_PARAMS = [
    {"$ref": "#/components/parameters/BflUser"},
    {"$ref": "#/components/parameters/User"},
]
USER_ERRORS = ("400", "401", "403", "404", "500", "503")


def _schemas(settings: HttpSettings) -> dict[str, Schema]:
    state = _object(
        ["type", "version", "status"],
        type=_string(),
        version=_string(),
        status=_object(
            ["name", "state"],
            name=_string(),
            rawAppName=_string(),
            title=_string(),
            state=_string(),
            updateTime=_string(),
            statusTime=_string(),
            lastTransitionTime=_string(),
            progress=_string(),
            opType=_string(),
            entranceStatuses=_array({"type": "object"}),
            sharedEntrances=_array({"type": "object"}),
        ),
    )
    latest = _object(
        ["type", "timestamp", "version", "app_simple_info"],
        type=_string(),
        timestamp=_integer(),
        version=_string(),
        app_simple_info=_object(["app_labels"], app_labels=_array(_string())),
    )
    others = _object(
        ["hash", "version"],
        hash=_string(),
        version=_string(),
        **{name: _array({}) for name in ("topics", "topic_lists", "recommends", "pages")},
        tops=_array({}),
        latest=_array({}),
        tags=_array({}),
    )
    source = _object(
        ["type", "app_state_latest"],
        type=_string(),
        app_state_latest=_array(_ref("AppState")),
        app_info_latest=_array(_ref("AppInfoLatest")),
        others=_ref("Others"),
    )
    user_data = _object(
        ["user_data", "user_id", "timestamp"],
        user_data=_object(
            ["sources", "hash"],
            sources={"type": "object", "additionalProperties": _ref("Source")},
            hash=_string(),
        ),
        user_id=_string(),
        timestamp=_integer(),
    )
    catalog_app = _object(
        ["app_id", "name", "status", "latest_version", "pending_version", "labels"],
        app_id=_string(),
        name=_string(),
        status=_string(enum=["pending", "latest", "failed", "parked", "delisted"]),
        latest_version=_nullable(_string()),
        pending_version=_nullable(_string()),
        labels=_array(_string()),
        installed_state=_nullable(_string()),
    )
    catalog = _object(
        ["user", "hash", "sources", "position"],
        user=_string(),
        hash=_string(),
        sources={
            "type": "object",
            "additionalProperties": _object(
                ["type", "apps"], type=_string(), apps=_array(catalog_app)
            ),
        },
        position=_integer(minimum=0),
        at=_string(),
    )
    history_entry = {
        **_object(["position", "at", "event"], position=_integer(), at=_string(), event=_string()),
        "additionalProperties": True,
    }
    status = _object(
        ["log_head", "projector_position", "projector_lag", "listings", "parked"],
        log_head=_integer(),
        projector_position=_integer(),
        projector_lag=_integer(minimum=0),
        users=_integer(),
        sources=_integer(),
        listings=_object(
            ["pending", "latest", "failed", "parked"],
            pending=_integer(),
            latest=_integer(),
            failed=_integer(),
            parked=_integer(),
        ),
        delisted=_integer(),
        parked_messages=_integer(minimum=0),
        feeds={"type": "object", "additionalProperties": _integer()},
        parked=_array(
            _object(
                ["user", "source", "app_id"],
                user=_string(),
                source=_string(),
                app_id=_string(),
                version=_nullable(_string()),
                attempts=_integer(),
                step=_nullable(_string()),
                reason=_nullable(_string()),
            )
        ),
    )
    apps_request = _object(
        ["apps"],
        apps=_array(
            _object(["appid", "sourceDataName"], appid=_name(), sourceDataName=_name()),
            minItems=1,
            maxItems=settings.max_apps_per_request,
        ),
    )
    retry_request = _object(["user", "app_id"], user=_name(), app_id=_name(), source=_name())
    return {
        "Error": _object(
            ["success", "message", "data"],
            success={"type": "boolean", "enum": [False]},
            message=_string(),
            data={"nullable": True, "enum": [None]},
        ),
        "AppState": state,
        "AppInfoLatest": latest,
        "Others": others,
        "Source": source,
        "MarketData": user_data,
        "AppsRequest": apps_request,
        "Catalog": catalog,
        "HistoryEntry": history_entry,
        "Status": status,
        "RetryRequest": retry_request,
    }


def openapi_document(settings: HttpSettings) -> dict[str, Any]:
    body_limit = f"Bodies larger than {settings.max_body_bytes} bytes are refused (413)."
    paths: dict[str, Any] = {
        f"{MARKET}/market/hash": {
            "get": {
                "operationId": "marketHash",
                "summary": "The user's content hash; clients refetch the data when it changes.",
                "parameters": USER_PARAMS,
                "responses": {
                    "200": _ok("The hash.", _object(["hash"], hash=_string())),
                    **_errors(*USER_ERRORS),
                },
            }
        },
        f"{MARKET}/market/data": {
            "get": {
                "operationId": "marketData",
                "summary": "Per source: latest entries, installed states and extras; the hash.",
                "parameters": USER_PARAMS,
                "responses": {
                    "200": _ok("The user's market data.", _ref("MarketData")),
                    **_errors(*USER_ERRORS),
                },
            }
        },
        f"{MARKET}/market/state": {
            "get": {
                "operationId": "marketState",
                "summary": "Per source: installed states; the hash.",
                "parameters": USER_PARAMS,
                "responses": {
                    "200": _ok("The user's installed states.", _ref("MarketData")),
                    **_errors(*USER_ERRORS),
                },
            }
        },
        f"{MARKET}/apps": {
            "post": {
                "operationId": "appsInfo",
                "summary": "Full latest entries of the given apps. " + body_limit,
                "parameters": USER_PARAMS,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("AppsRequest")}},
                },
                "responses": {
                    "200": _ok(
                        "The entries found, and the apps not found.",
                        _object(
                            ["apps", "total_count"],
                            apps=_array({"type": "object"}),
                            total_count=_integer(minimum=0),
                            not_found=_array(
                                _object(
                                    ["appid", "sourceDataName"],
                                    appid=_string(),
                                    sourceDataName=_string(),
                                )
                            ),
                        ),
                    ),
                    **_errors(*USER_ERRORS, "413", "415"),
                },
            }
        },
        f"{LEDGER}/history": {
            "get": {
                "operationId": "history",
                "summary": "An app's lifecycle for a user, in log order.",
                "parameters": [
                    *USER_PARAMS,
                    _param("app", "query", _name(), "The app id or installed name.", True),
                    _param("source", "query", _name(), "Only this source."),
                ],
                "responses": {
                    "200": _ok("The history.", _array(_ref("HistoryEntry"))),
                    **_errors(*USER_ERRORS),
                },
            }
        },
        f"{LEDGER}/catalog": {
            "get": {
                "operationId": "catalog",
                "summary": "The user's catalog now, or as it was at a log position or a time.",
                "parameters": [
                    *USER_PARAMS,
                    _param(
                        "position",
                        "query",
                        _integer(minimum=0, maximum=10**18 - 1),
                        "Replay the log up to this position (inclusive).",
                    ),
                    _param(
                        "at",
                        "query",
                        _string(format="date-time"),
                        "Replay the events decided at or before this RFC 3339 time.",
                    ),
                ],
                "responses": {
                    "200": _ok("The catalog.", _ref("Catalog")),
                    **_errors(*USER_ERRORS),
                },
            }
        },
        f"{LEDGER}/status": {
            "get": {
                "operationId": "status",
                "summary": "Positions, projector lag, counts per status, parked renders (admin).",
                "parameters": [{"$ref": "#/components/parameters/BflUser"}],
                "responses": {
                    "200": _ok("The status.", _ref("Status")),
                    **_errors("400", "401", "403", "500", "503"),
                },
            }
        },
        f"{LEDGER}/retry": {
            "post": {
                "operationId": "retryParked",
                "summary": "Retry a parked render (admin). " + body_limit,
                "parameters": [{"$ref": "#/components/parameters/BflUser"}],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("RetryRequest")}},
                },
                "responses": {
                    "200": _ok(
                        "The render is pending again.",
                        _object(
                            ["user", "source", "app_id", "status"],
                            user=_string(),
                            source=_string(),
                            app_id=_string(),
                            status=_string(),
                            position=_nullable(_integer()),
                        ),
                    ),
                    **_errors("400", "401", "403", "404", "409", "413", "415", "500", "503"),
                },
            }
        },
        "/healthz": {
            "get": {
                "operationId": "healthz",
                "summary": "Liveness: the process answers.",
                "responses": {
                    "200": _ok("Alive.", _object(["status"], status=_string())),
                },
            }
        },
        "/readyz": {
            "get": {
                "operationId": "readyz",
                "summary": "Readiness: the store is reachable and the views are caught up.",
                "responses": {
                    "200": _ok("Ready.", _ref("Readiness")),
                    "503": {
                        "description": "Not ready; the message says why.",
                        "content": {"application/json": {"schema": _envelope(_ref("Readiness"))}},
                    },
                },
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics.",
                "responses": {
                    "200": {
                        "description": "The Prometheus text format.",
                        "content": {"text/plain": {"schema": _string()}},
                    }
                },
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document.",
                "responses": {
                    "200": {
                        "description": "The OpenAPI document.",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
    }
    paths.update(intake_paths(body_limit))
    schemas = _schemas(settings)
    schemas.update(intake_schemas())
    schemas["Readiness"] = _object(
        ["ready"],
        ready={"type": "boolean"},
        log_head=_nullable(_integer()),
        projector_position=_nullable(_integer()),
        projector_lag=_nullable(_integer()),
        reason=_nullable(_string()),
    )
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "market-ledger",
            "version": "1",
            "description": (
                "The app catalog of the Olares market, read from an event-sourced ledger. "
                f"Every JSON answer is the envelope {{success, message, data}}. The user is "
                f"the {USER_HEADER} header; reading another user's data (the 'user' "
                "parameter) and operator actions need the admin role."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "parameters": {
                "BflUser": _param(
                    USER_HEADER, "header", _name(), "The user making the request.", True
                ),
                "User": _param(
                    "user", "query", _name(), "Whose data (default: the requester; admin)."
                ),
            },
        },
    }
