"""The shapes several routes share, named once in the document's ``components``."""

from __future__ import annotations

from market_ledger.adapters.http_api.common import USER_HEADER, HttpSettings
from market_ledger.adapters.http_api.openapi_schema import (
    Schema,
    array,
    boolean,
    integer,
    name,
    nullable,
    obj,
    param,
    ref,
    string,
)
from market_ledger.adapters.http_api.openapi_task_operations import task_operation_schemas
from market_ledger.adapters.http_api.openapi_tasks import task_schemas


def component_parameters() -> dict[str, Schema]:
    return {
        "BflUser": param(USER_HEADER, "header", name(), "The user making the request.", True),
        "User": param("user", "query", name(), "Whose data (default: the requester; admin)."),
    }


def component_schemas(settings: HttpSettings) -> dict[str, Schema]:
    return {
        "Error": obj(
            ["success", "message", "data"],
            success={"type": "boolean", "enum": [False]},
            message=string(),
            data={"nullable": True, "enum": [None]},
        ),
        **_market_schemas(),
        "AppsRequest": obj(
            ["apps"],
            apps=array(
                obj(["appid", "sourceDataName"], appid=name(), sourceDataName=name()),
                minItems=1,
                maxItems=settings.max_apps_per_request,
            ),
        ),
        **task_schemas(),
        **task_operation_schemas(),
        **_ledger_schemas(),
        "RetryRequest": obj(["user", "app_id"], user=name(), app_id=name(), source=name()),
        **_intake_schemas(),
        "Readiness": obj(
            ["ready"],
            ready=boolean(),
            log_head=nullable(integer()),
            projector_position=nullable(integer()),
            projector_lag=nullable(integer()),
            reason=nullable(string()),
        ),
    }


def _market_schemas() -> dict[str, Schema]:
    """The market's shapes: ``GET /market/data`` and ``GET /market/state``."""
    state = obj(
        ["type", "version", "status"],
        type=string(),
        version=string(),
        status=obj(
            ["name", "state"],
            name=string(),
            rawAppName=string(),
            title=string(),
            state=string(),
            updateTime=string(),
            statusTime=string(),
            lastTransitionTime=string(),
            progress=string(),
            opType=string(),
            entranceStatuses=array({"type": "object"}),
            sharedEntrances=array({"type": "object"}),
        ),
    )
    latest = obj(
        ["type", "timestamp", "version", "app_simple_info"],
        type=string(),
        timestamp=integer(),
        version=string(),
        app_simple_info=obj(["app_labels"], app_labels=array(string())),
    )
    extras = ("topics", "topic_lists", "recommends", "pages", "tops", "latest", "tags")
    others = obj(
        ["hash", "version"],
        hash=string(),
        version=string(),
        **{extra: array({}) for extra in extras},
    )
    source = obj(
        ["type", "app_state_latest"],
        type=string(),
        app_state_latest=array(ref("AppState")),
        app_info_latest=array(ref("AppInfoLatest")),
        others=ref("Others"),
    )
    market_data = obj(
        ["user_data", "user_id", "timestamp"],
        user_data=obj(
            ["sources", "hash"],
            sources={"type": "object", "additionalProperties": ref("Source")},
            hash=string(),
        ),
        user_id=string(),
        timestamp=integer(),
    )
    return {
        "AppState": state,
        "AppInfoLatest": latest,
        "Others": others,
        "Source": source,
        "MarketData": market_data,
    }


def _ledger_schemas() -> dict[str, Schema]:
    """The audit and operator shapes: catalog, history, status."""
    catalog_app = obj(
        ["app_id", "name", "status", "latest_version", "pending_version", "labels"],
        app_id=string(),
        name=string(),
        status=string(enum=["pending", "latest", "failed", "parked", "delisted"]),
        latest_version=nullable(string()),
        pending_version=nullable(string()),
        labels=array(string()),
        installed_state=nullable(string()),
    )
    catalog = obj(
        ["user", "hash", "sources", "position"],
        user=string(),
        hash=string(),
        sources={
            "type": "object",
            "additionalProperties": obj(["type", "apps"], type=string(), apps=array(catalog_app)),
        },
        position=integer(minimum=0),
        at=string(),
    )
    history_entry = {
        **obj(["position", "at", "event"], position=integer(), at=string(), event=string()),
        "additionalProperties": True,
    }
    parked_render = obj(
        ["user", "source", "app_id"],
        user=string(),
        source=string(),
        app_id=string(),
        version=nullable(string()),
        attempts=integer(),
        step=nullable(string()),
        reason=nullable(string()),
    )
    status = obj(
        ["log_head", "projector_position", "projector_lag", "listings", "parked"],
        log_head=integer(),
        projector_position=integer(),
        projector_lag=integer(minimum=0),
        users=integer(),
        sources=integer(),
        listings=obj(
            ["pending", "latest", "failed", "parked"],
            pending=integer(),
            latest=integer(),
            failed=integer(),
            parked=integer(),
        ),
        delisted=integer(),
        parked_messages=integer(minimum=0),
        feeds={"type": "object", "additionalProperties": integer()},
        parked=array(parked_render),
    )
    return {"Catalog": catalog, "HistoryEntry": history_entry, "Status": status}


def _intake_schemas() -> dict[str, Schema]:
    """The NATS messages the intake parked, as the operator's routes show them."""
    parked = obj(
        ["id", "status", "kind", "failure", "subject", "reason", "parked_at", "truncated"],
        id=string(),
        status=string(enum=["parked", "replayed", "discarded"]),
        kind=string(enum=["app_state", "user"]),
        failure=string(enum=["malformed", "unparsable", "failed"]),
        subject=string(),
        reason=string(),
        deliveries=integer(minimum=0),
        times_parked=integer(minimum=1),
        replay_failures=integer(minimum=0),
        parked_at=string(),
        updated_at=string(),
        resolved_by=nullable(string()),
        truncated=boolean(),
        encoding=string(enum=["utf-8", "base64"]),
        headers={"type": "object", "additionalProperties": string()},
        payload=string(),
    )
    return {
        "ParkedMessage": parked,
        "ParkedMessageRequest": obj(["id"], id=string(minLength=1, maxLength=64)),
    }
