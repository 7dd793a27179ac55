"""The pieces the OpenAPI document is made of: JSON Schema helpers and one route's declaration.

The response bodies are plain dicts built by the projections and serialized by orjson, so the
document states their shapes here, in OpenAPI 3.0 terms (``nullable``), rather than deriving
them from model classes the routes do not use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from attrs import frozen

from market_ledger.adapters.http_api.common import MAX_NAME, USER_HEADER

Schema = dict[str, Any]

#: a name: no control characters, no surrounding whitespace
NAME_PATTERN = r"^[^\u0000-\u0020\u007f]([^\u0000-\u001f\u007f]*[^\u0000-\u0020\u007f])?$"


def string(**extra: Any) -> Schema:
    return {"type": "string", **extra}


def integer(**extra: Any) -> Schema:
    return {"type": "integer", **extra}


def boolean() -> Schema:
    return {"type": "boolean"}


def name() -> Schema:
    """A user, app, source or id as the routes accept it (see ``common.name_value``)."""
    return string(minLength=1, maxLength=MAX_NAME, pattern=NAME_PATTERN)


def nullable(schema: Schema) -> Schema:
    return {**schema, "nullable": True}


def obj(required: Sequence[str] = (), **properties: Schema) -> Schema:
    """An object with these properties, the ``required`` ones always present."""
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


def array(items: Schema, **extra: Any) -> Schema:
    return {"type": "array", "items": items, **extra}


def ref(component: str) -> Schema:
    return {"$ref": f"#/components/schemas/{component}"}


def envelope(data: Schema) -> Schema:
    """Every JSON answer: ``{success, message, data}``."""
    return obj(["success", "message", "data"], success=boolean(), message=string(), data=data)


def param(
    parameter: str, where: str, schema: Schema, description: str, required: bool = False
) -> Schema:
    return {
        "name": parameter,
        "in": where,
        "required": required,
        "description": description,
        "schema": schema,
    }


#: the parameters every user-facing route takes (components/parameters)
BFL_USER = {"$ref": "#/components/parameters/BflUser"}
USER = {"$ref": "#/components/parameters/User"}
USER_PARAMS = (BFL_USER, USER)


def ok(description: str, data: Schema) -> dict[str, Schema]:
    """The 200 answer: the envelope around ``data``."""
    return {"200": answer(description, envelope(data))}


def answer(description: str, schema: Schema, media_type: str = "application/json") -> Schema:
    return {"description": description, "content": {media_type: {"schema": schema}}}


#: what each error status means on the routes that may answer it
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
USER_ERRORS = ("400", "401", "403", "404", "500", "503")


def errors(*codes: str, meaning: Mapping[str, str] | None = None) -> dict[str, Schema]:
    """The error answers ``codes``, described by ``meaning`` where a route means more."""
    text = {**ERRORS, **(meaning or {})}
    return {code: answer(text[code], ref("Error")) for code in codes}


@frozen
class Operation:
    """One route as the document describes it; the table of these is the document's paths,
    and a test holds it equal to the routes the app serves."""

    method: str
    path: str
    operation_id: str
    summary: str
    responses: Mapping[str, Schema]
    parameters: Sequence[Schema] = ()
    #: the component that describes the JSON request body, if the route takes one
    body: str | None = None

    def describe(self) -> Schema:
        """The OpenAPI operation object."""
        operation: Schema = {"operationId": self.operation_id, "summary": self.summary}
        if self.parameters:
            operation["parameters"] = list(self.parameters)
        if self.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": ref(self.body)}},
            }
        operation["responses"] = dict(self.responses)
        return operation
