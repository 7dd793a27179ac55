"""The HTTP request of each task operation, as the replaced system sent it to app-service.

- install and clone: ``POST /app-service/v1/apps/{app}/install``; upgrade:
  ``POST .../{app}/upgrade``; uninstall: ``POST .../{app}/uninstall``; cancel:
  ``POST .../{app}/cancel?type=operate`` with no body;
- headers ``X-Authorization`` (the user's token), ``X-Bfl-User`` and ``Content-Type``; install,
  clone and upgrade add ``X-Market-User`` and ``X-Market-Source``, upgrade ``Accept: */*``;
- bodies with the replaced system's keys, in its order, leaving out what it left out when
  empty (``omitempty``), except ``envs``, which app-service needs even when there are none;
- the app in the path escaped as Go's ``url.PathEscape`` escapes a path segment.

Header values are sent as UTF-8; one holding a control character (a line break in a token
would start a new header) is refused before anything is sent.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import attrs
import orjson

from market_ledger.domain.task_events import CANCEL, CLONE, INSTALL, UNINSTALL, UPGRADE
from market_ledger.service.app_operations import EnvValue, Operation

#: what Go's ``url.PathEscape`` leaves as is in a path segment, besides letters, digits, ``-_.~``
_PATH_SAFE = "$&+:=@"
UPLOAD_SOURCE_TYPE = "upload"


class UnsendableOperation(ValueError):
    """The operation cannot be written as a request (nothing was sent)."""


@attrs.frozen(repr=False)
class OperationRequest:
    path: str
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes | None
    query: str = ""

    def __repr__(self) -> str:  # never the headers: one of them is the user's token
        return f"OperationRequest({self.path!r})"


def path_segment(app_name: str) -> str:
    """``app_name`` escaped as one path segment (Go's ``url.PathEscape``).

    A name of only dots would be read as ``.`` or ``..`` by URL normalisation, so its dots
    are escaped too.
    """
    escaped = quote(app_name, safe=_PATH_SAFE)
    if escaped.strip(".") == "":
        return escaped.replace(".", "%2E")
    return escaped


def api_source(source_type: str) -> str:
    """The ``source`` app-service is told: ``custom`` for an uploaded chart, else ``market``."""
    return "custom" if source_type == UPLOAD_SOURCE_TYPE else "market"


def _header(name: str, value: str) -> tuple[bytes, bytes]:
    if any((ord(ch) < 0x20 and ch != "\t") or ord(ch) == 0x7F for ch in value):
        raise UnsendableOperation(f"the {name} header would hold a control character")
    return name.encode("ascii"), value.encode("utf-8", errors="replace")


def env_json(env: EnvValue) -> dict[str, Any]:
    """``{envName, value?, valueFrom?: {envName?}}``."""
    item: dict[str, Any] = {"envName": env.name}
    if env.value:
        item["value"] = env.value
    if env.value_from is not None:
        item["valueFrom"] = {"envName": env.value_from} if env.value_from else {}
    return item


def _set_if(body: dict[str, Any], key: str, value: Any) -> None:
    if value:
        body[key] = value


def _chart_body(operation: Operation, repo_url: str) -> dict[str, Any]:
    """What install, clone and upgrade share, in the order install and clone send it."""
    body: dict[str, Any] = {}
    _set_if(body, "repoUrl", repo_url)
    if operation.kind == UPGRADE:
        _set_if(body, "version", operation.version)
        _set_if(body, "x_market_user", operation.user)
        body["source"] = api_source(operation.source_type)
    else:
        body["source"] = api_source(operation.source_type)
        _set_if(body, "x_market_user", operation.user)
    _set_if(body, "x_market_source", operation.source)
    _set_if(body, "images", [{"name": i.name, "size": i.size} for i in operation.images])
    body["envs"] = [env_json(env) for env in operation.envs]
    if operation.kind == CLONE:
        entrances = [{"name": name, "title": title} for name, title in operation.entrances]
        _set_if(body, "entrances", entrances)
        _set_if(body, "rawAppName", operation.raw_app_name)
        _set_if(body, "requestHash", operation.request_hash)
        _set_if(body, "title", operation.title)
    return body


_ACTIONS = {INSTALL: "install", CLONE: "install", UPGRADE: "upgrade", UNINSTALL: "uninstall"}


def build_request(operation: Operation, repo_url: str) -> OperationRequest:
    """The request that carries ``operation``; :class:`UnsendableOperation` if none can."""
    base = (
        _header("X-Authorization", operation.token),
        _header("X-Bfl-User", operation.user),
        (b"Content-Type", b"application/json"),
    )
    if not operation.app_name:
        raise UnsendableOperation(f"a {operation.kind} needs an app name")
    app = path_segment(operation.app_name)
    if operation.kind == CANCEL:
        return OperationRequest(f"/app-service/v1/apps/{app}/cancel", base, None, "type=operate")
    action = _ACTIONS.get(operation.kind)
    if action is None:
        raise UnsendableOperation(f"{operation.kind!r} is not an operation app-service takes")
    path = f"/app-service/v1/apps/{app}/{action}"
    if operation.kind == UNINSTALL:
        body = {"all": operation.all, "deleteData": operation.delete_data}
        return OperationRequest(path, base, orjson.dumps(body))
    market = (
        _header("X-Market-User", operation.user),
        _header("X-Market-Source", operation.source),
    )
    accept = ((b"Accept", b"*/*"),) if operation.kind == UPGRADE else ()
    return OperationRequest(
        path, accept + base + market, orjson.dumps(_chart_body(operation, repo_url))
    )
