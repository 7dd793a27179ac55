"""The OpenAPI description of the operator's routes on parked NATS messages."""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]
LEDGER = "/app-store/api/v2/ledger"
COMMON_ERRORS = {
    "400": "Bad parameters or body: the message says which and why.",
    "401": "No X-Bfl-User header.",
    "403": "Without the admin role.",
    "500": "An unexpected error (details are logged, not returned).",
    "503": "The store is unreachable.",
}


def _string(**extra: Any) -> Schema:
    return {"type": "string", **extra}


def _integer(**extra: Any) -> Schema:
    return {"type": "integer", **extra}


def _nullable(schema: Schema) -> Schema:
    return {**schema, "nullable": True}


def _object(required: list[str], **properties: Schema) -> Schema:
    return {"type": "object", "properties": properties, "required": required}


def _array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _ok(description: str, data: Schema) -> Schema:
    envelope = _object(
        ["success", "message", "data"],
        success={"type": "boolean"},
        message=_string(),
        data=data,
    )
    return {"description": description, "content": {"application/json": {"schema": envelope}}}


def _param(name: str, where: str, schema: Schema, description: str) -> Schema:
    return {
        "name": name,
        "in": where,
        "required": False,
        "description": description,
        "schema": schema,
    }


def intake_schemas() -> dict[str, Schema]:
    parked = _object(
        ["id", "status", "kind", "failure", "subject", "reason", "parked_at", "truncated"],
        id=_string(),
        status=_string(enum=["parked", "replayed", "discarded"]),
        kind=_string(enum=["app_state", "user"]),
        failure=_string(enum=["malformed", "unparsable", "failed"]),
        subject=_string(),
        reason=_string(),
        deliveries=_integer(minimum=0),
        times_parked=_integer(minimum=1),
        replay_failures=_integer(minimum=0),
        parked_at=_string(),
        updated_at=_string(),
        resolved_by=_nullable(_string()),
        truncated={"type": "boolean"},
        encoding=_string(enum=["utf-8", "base64"]),
        headers={"type": "object", "additionalProperties": _string()},
        payload=_string(),
    )
    return {
        "ParkedMessage": parked,
        "ParkedMessageRequest": _object(["id"], id=_string(minLength=1, maxLength=64)),
    }


def _errors(extra: dict[str, str] | None = None) -> dict[str, Schema]:
    codes = {**COMMON_ERRORS, **(extra or {})}
    return {
        code: {
            "description": description,
            "content": {"application/json": {"schema": _ref("Error")}},
        }
        for code, description in sorted(codes.items())
    }


def intake_paths(body_limit: str) -> dict[str, Any]:
    request = {
        "required": True,
        "content": {"application/json": {"schema": _ref("ParkedMessageRequest")}},
    }
    settled = _object(["id", "status"], id=_string(), status=_string())
    replayed = _object(
        ["id", "status", "outcome"],
        id=_string(),
        status=_string(),
        outcome=_string(enum=["accepted", "rejected", "unknown_user", "ignored"]),
        detail=_string(),
    )
    settle_errors = _errors(
        {
            "404": "No parked message has this id.",
            "409": "The message is not parked (any more), or failed again: it stays parked.",
            "413": "The request body is too large.",
        }
    )
    return {
        f"{LEDGER}/intake/parked": {
            "get": {
                "operationId": "parkedMessages",
                "summary": "NATS messages the intake could not take in, oldest first (admin).",
                "parameters": [
                    {"$ref": "#/components/parameters/BflUser"},
                    _param(
                        "all",
                        "query",
                        _string(enum=["true", "false"]),
                        "Also the messages replayed or discarded since.",
                    ),
                ],
                "responses": {
                    "200": _ok("The parked messages.", _array(_ref("ParkedMessage"))),
                    **_errors(),
                },
            }
        },
        f"{LEDGER}/intake/replay": {
            "post": {
                "operationId": "replayParkedMessage",
                "summary": "Parse a parked message again and take it in (admin). " + body_limit,
                "parameters": [{"$ref": "#/components/parameters/BflUser"}],
                "requestBody": request,
                "responses": {
                    "200": _ok("The message was taken in.", replayed),
                    **settle_errors,
                },
            }
        },
        f"{LEDGER}/intake/discard": {
            "post": {
                "operationId": "discardParkedMessage",
                "summary": "Give up on a parked message, on the record (admin). " + body_limit,
                "parameters": [{"$ref": "#/components/parameters/BflUser"}],
                "requestBody": request,
                "responses": {
                    "200": _ok("The message is discarded.", settled),
                    **settle_errors,
                },
            }
        },
    }
