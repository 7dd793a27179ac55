"""The five task routes in the OpenAPI document: their operations, bodies and answers."""

from __future__ import annotations

from market_ledger.adapters.http_api.openapi_schema import (
    BFL_USER,
    Operation,
    Schema,
    answer,
    array,
    boolean,
    envelope,
    errors,
    nullable,
    obj,
    ok,
    param,
    string,
)
from market_ledger.adapters.http_api.routes_market import PREFIX
from market_ledger.domain.task_events import KINDS

_APP = param("app", "path", string(), "The app (for install, clone, upgrade: only logged).", True)
_MEANING = {
    "401": "No X-Bfl-User header (`Failed to get user information`).",
    "404": "User data, source data, the app or the installed original not found.",
    "500": "With sync: app-service refused the task (data: the result); else unexpected.",
    "503": "app-service is not configured, or the store is unreachable.",
}
_STILL_RUNNING = {
    "202": answer(
        "With sync: no answer from app-service within the wait; data.task_id to follow.",
        envelope(obj(["task_id"], task_id=string())),
    )
}


def _operation(method: str, path: str, kind: str, body: str | None, limit: str) -> Operation:
    return Operation(
        method,
        f"{PREFIX}{path}",
        f"{kind}App",
        f"Record a {kind} task for the user and queue it; with sync, wait for app-service. "
        + limit,
        {
            **ok("The task id, or (sync) the result.", ref_result()),
            **_STILL_RUNNING,
            **errors("400", "401", "404", "413", "500", "503", meaning=_MEANING),
        },
        (BFL_USER, _APP),
        body=body,
    )


def ref_result() -> Schema:
    return {"$ref": "#/components/schemas/TaskAnswer"}


def task_operations(limit: str) -> tuple[Operation, ...]:
    """The five routes; ``limit`` states the configured body limit."""
    return (
        _operation("post", "/apps/{app}/install", "install", "TaskRequestBody", limit),
        _operation("post", "/apps/{app}/clone", "clone", "TaskRequestBody", limit),
        _operation("put", "/apps/{app}/upgrade", "upgrade", "TaskRequestBody", limit),
        _operation("delete", "/apps/{app}/install", "cancel", None, limit),
        _operation("delete", "/apps/{app}", "uninstall", None, limit),
    )


def task_operation_schemas() -> dict[str, Schema]:
    env = obj(
        ["envName"],
        envName=string(),
        value=string(),
        valueFrom=obj(["envName"], envName=string()),
    )
    body = obj(
        ["source", "app_name"],
        source=string(),
        app_name=string(),
        version=string(),
        sync=boolean(),
        envs=array(env),
        title=string(),
        entrances=array(obj(["name"], name=string(), title=string())),
    )
    result = obj(
        ["task_id"],
        task_id=string(),
        operation=string(enum=list(KINDS)),
        app_name=string(),
        user=string(),
        status=string(enum=["success", "failed"]),
        opID=string(),
        error=string(),
        backend_response={},
        response=string(),
    )
    return {"TaskRequestBody": body, "TaskAnswer": nullable(result)}
