"""The OpenAPI document of the HTTP API, served at ``GET /openapi.json``.

Built from the table of operations (:mod:`.openapi_operations`, one declaration per route) and
the shared shapes (:mod:`.openapi_components`). A test holds the table equal to the routes the
app serves; a schema-driven test sends generated requests to every operation and checks the
answers against the document.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from market_ledger.adapters.http_api.common import USER_HEADER, HttpSettings
from market_ledger.adapters.http_api.openapi_components import (
    component_parameters,
    component_schemas,
)
from market_ledger.adapters.http_api.openapi_operations import operations
from market_ledger.adapters.http_api.openapi_schema import Operation, Schema


class DuplicateOperation(ValueError):
    """Two declarations for one path and method: the document could keep only one."""


def openapi_document(settings: HttpSettings) -> dict[str, Any]:
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
        "paths": paths(operations(settings)),
        "components": {
            "schemas": component_schemas(settings),
            "parameters": component_parameters(),
        },
    }


def paths(declared: Iterable[Operation]) -> dict[str, dict[str, Schema]]:
    """The document's ``paths``: each operation under its path and method, once."""
    found: dict[str, dict[str, Schema]] = {}
    for operation in declared:
        item = found.setdefault(operation.path, {})
        if operation.method in item:
            raise DuplicateOperation(f"{operation.method.upper()} {operation.path}")
        item[operation.method] = operation.describe()
    return found
