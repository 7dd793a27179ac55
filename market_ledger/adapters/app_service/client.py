"""The client of app-service: what is installed (all apps and middlewares), and the OS version.

Base URL: ``http://{APP_SERVICE_SERVICE_HOST}:{APP_SERVICE_SERVICE_PORT}``.

Decisions:

- a record that does not decode (not an object, no owner or name, a field of the wrong type, a
  time that is not a time) fails the whole answer, as the replaced system's typed decode did:
  a record silently left out would look like an uninstalled app to the status correction;
- an empty ``all/apps`` array is a valid answer, returned as an :class:`InstalledApps` whose
  ``empty`` is true, so the caller can refuse to read it as "everything was uninstalled";
- a failed ``middlewares/status`` call raises: the replaced system took it as "no middlewares"
  and removed them all.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import httpx

from market_ledger.adapters.remote.client import (
    RetrySettings,
    decode_json,
    decode_object,
    endpoint_url,
    expect_array,
    json_type,
    send,
)
from market_ledger.adapters.remote.client_holder import HttpClientHolder
from market_ledger.domain.canonical import parse_instant
from market_ledger.service.ports import RemoteError
from market_ledger.service.remote_values import (
    Entrance,
    EntranceStatus,
    InstalledApp,
    InstalledApps,
)

SERVICE = "app-service"
MIDDLEWARE_SOURCE = "middleware"
DEFAULT_RETRY = RetrySettings(attempts=3, base_delay=0.5)


def app_service_base_url(host: str, port: int | str | None = None) -> str:
    """``http://host:port``; a host given with a scheme keeps it, an empty port is left out."""
    value = host.strip().removesuffix("/")
    if not value:
        raise ValueError("the app-service host is empty (APP_SERVICE_SERVICE_HOST)")
    if not value.startswith(("http://", "https://")):
        value = "http://" + value
    port_text = str(port).strip() if port is not None else ""
    return f"{value}:{port_text}" if port_text else value


class RecordError(ValueError):
    """A record of app-service that does not decode; the message names the field."""


def _str(raw: Mapping[str, Any], field: str, where: str, *, required: bool = False) -> str:
    value = raw.get(field)
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise RecordError(f"{where}.{field} must be a string, got {json_type(value)}")
    if required and not value.strip():
        raise RecordError(f"{where}.{field} is empty")
    return value


def _bool(raw: Mapping[str, Any], field: str, where: str) -> bool:
    value = raw.get(field)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise RecordError(f"{where}.{field} must be a boolean, got {json_type(value)}")
    return value


def _time(raw: Mapping[str, Any], field: str, where: str) -> datetime | None:
    value = raw.get(field)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise RecordError(f"{where}.{field} must be a time string, got {json_type(value)}")
    try:
        return parse_instant(value)
    except ValueError as error:
        raise RecordError(f"{where}.{field} is not a time: {value!r}") from error


def _object(raw: Mapping[str, Any], field: str, where: str) -> Mapping[str, Any]:
    value = raw.get(field)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RecordError(f"{where}.{field} must be an object, got {json_type(value)}")
    return value


def _objects(raw: Mapping[str, Any], field: str, where: str) -> list[Mapping[str, Any]]:
    value = raw.get(field)
    if value is None:
        return []
    if not isinstance(value, list):
        raise RecordError(f"{where}.{field} must be an array, got {json_type(value)}")
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise RecordError(f"{where}.{field}[{index}] must be an object, got {json_type(item)}")
    return value


def parse_application(raw: Any, where: str = "app") -> InstalledApp:
    """One Application object of ``all/apps`` (``metadata``, ``spec``, ``status``)."""
    if not isinstance(raw, dict):
        raise RecordError(f"{where} must be an object, got {json_type(raw)}")
    metadata = _object(raw, "metadata", where)
    spec = _object(raw, "spec", where)
    status = _object(raw, "status", where)
    entrances = tuple(
        Entrance(
            name=_str(item, "name", f"{where}.spec.entrances[{index}]"),
            url=_str(item, "url", f"{where}.spec.entrances[{index}]"),
            invisible=_bool(item, "invisible", f"{where}.spec.entrances[{index}]"),
            raw=dict(item),
        )
        for index, item in enumerate(_objects(spec, "entrances", f"{where}.spec"))
    )
    statuses = tuple(
        EntranceStatus(
            name=_str(item, "name", f"{where}.status.entranceStatuses[{index}]"),
            state=_str(item, "state", f"{where}.status.entranceStatuses[{index}]"),
            status_time=_time(item, "statusTime", f"{where}.status.entranceStatuses[{index}]"),
            reason=_str(item, "reason", f"{where}.status.entranceStatuses[{index}]"),
            url=_str(item, "url", f"{where}.status.entranceStatuses[{index}]"),
        )
        for index, item in enumerate(_objects(status, "entranceStatuses", f"{where}.status"))
    )
    name = _str(spec, "name", f"{where}.spec", required=True)
    return InstalledApp(
        owner=_str(spec, "owner", f"{where}.spec", required=True),
        name=name,
        appid=_str(spec, "appid", f"{where}.spec") or name,
        source=_str(spec, "source", f"{where}.spec"),
        title=_str(spec, "title", f"{where}.spec"),
        state=_str(status, "state", f"{where}.status"),
        update_time=_time(status, "updateTime", f"{where}.status"),
        status_time=_time(status, "statusTime", f"{where}.status"),
        last_transition_time=_time(status, "lastTransitionTime", f"{where}.status"),
        icon=_str(spec, "icon", f"{where}.spec"),
        namespace=_str(metadata, "namespace", f"{where}.metadata"),
        entrances=entrances,
        entrance_statuses=statuses,
        shared_entrances=tuple(
            dict(item) for item in _objects(status, "sharedEntrances", f"{where}.status")
        ),
    )


def parse_middleware(raw: Any, where: str = "middleware") -> InstalledApp:
    """A middleware as an app-like record: name = appid = ``metadata.name``."""
    if not isinstance(raw, dict):
        raise RecordError(f"{where} must be an object, got {json_type(raw)}")
    name = _str(_object(raw, "metadata", where), "name", f"{where}.metadata", required=True)
    updated = _time(raw, "updateTime", where)
    return InstalledApp(
        owner=_str(raw, "user", where, required=True),
        name=name,
        appid=name,
        source=MIDDLEWARE_SOURCE,
        title=_str(raw, "title", where),
        state=_str(raw, "resourceStatus", where),
        update_time=updated,
        status_time=updated,
        last_transition_time=updated,
        namespace=_str(raw, "namespace", where),
    )


class AppServiceClient(HttpClientHolder):
    def __init__(
        self,
        host: str,
        port: int | str | None = None,
        *,
        client: httpx.AsyncClient | None = None,
        timeout: float = 30.0,
        retry: RetrySettings = DEFAULT_RETRY,
    ) -> None:
        super().__init__(client)
        self.base_url = app_service_base_url(host, port)
        self.timeout = timeout
        self.retry = retry

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.removeprefix('/')}"

    async def _get(self, path: str) -> httpx.Response:
        async with self._http() as http:
            return await send(
                http, SERVICE, "GET", self.url(path), timeout=self.timeout, retry=self.retry
            )

    async def all_apps(self) -> InstalledApps:
        """``GET /app-service/v1/all/apps``: a bare array of Application objects."""
        response = await self._get("/app-service/v1/all/apps")
        url = endpoint_url(response)
        items = expect_array(decode_json(response, SERVICE), SERVICE, url, "the all/apps answer")
        try:
            apps = tuple(parse_application(item, f"[{index}]") for index, item in enumerate(items))
        except RecordError as error:
            raise RemoteError(
                SERVICE, url, f"wrong shape: {error}", status=response.status_code
            ) from error
        return InstalledApps(apps)

    async def middlewares(self) -> InstalledApps:
        """``GET /app-service/v1/middlewares/status`` as app-like records; a failure raises."""
        response = await self._get("/app-service/v1/middlewares/status")
        url = endpoint_url(response)
        body = decode_object(response, SERVICE, "the middlewares answer")
        code = body.get("code")
        if code is not None and code not in (0, 200):
            raise RemoteError(
                SERVICE,
                url,
                f"answered code {code!r}: {body.get('message') or '(no message)'}",
                status=response.status_code,
            )
        data = body.get("data")
        items = [] if data is None else expect_array(data, SERVICE, url, "data")
        try:
            apps = tuple(
                parse_middleware(item, f"data[{index}]") for index, item in enumerate(items)
            )
        except RecordError as error:
            raise RemoteError(
                SERVICE, url, f"wrong shape: {error}", status=response.status_code
            ) from error
        return InstalledApps(apps)

    async def terminus_version(self) -> str:
        """``GET /app-service/v1/terminus/version``: the OS version string (never empty)."""
        response = await self._get("/app-service/v1/terminus/version")
        url = endpoint_url(response)
        version = decode_object(response, SERVICE, "the version answer").get("version")
        if not isinstance(version, str) or not version.strip():
            raise RemoteError(
                SERVICE,
                url,
                f"wrong shape: version must be a non-empty string, got {json_type(version)}",
            )
        return version.strip()
