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

from typing import Any

import httpx

from market_ledger.adapters.remote.client import (
    RetrySettings,
    decode_json,
    decode_object,
    endpoint_url,
    send,
)
from market_ledger.adapters.remote.client_holder import HttpClientHolder
from market_ledger.adapters.remote.shapes import (
    as_object,
    expect_array,
    flag_field,
    json_type,
    object_field,
    objects_field,
    text_field,
    time_field,
    wrong_shape_is_remote,
)
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


def _entrance(item: dict[str, Any], where: str) -> Entrance:
    return Entrance(
        name=text_field(item, "name", where),
        url=text_field(item, "url", where),
        invisible=flag_field(item, "invisible", where),
        raw=dict(item),
    )


def _entrance_status(item: dict[str, Any], where: str) -> EntranceStatus:
    return EntranceStatus(
        name=text_field(item, "name", where),
        state=text_field(item, "state", where),
        status_time=time_field(item, "statusTime", where),
        reason=text_field(item, "reason", where),
        url=text_field(item, "url", where),
    )


def parse_application(raw: Any, where: str = "app") -> InstalledApp:
    """One Application object of ``all/apps`` (``metadata``, ``spec``, ``status``)."""
    as_object(raw, where)
    metadata = object_field(raw, "metadata", where)
    spec = object_field(raw, "spec", where)
    status = object_field(raw, "status", where)
    entrances = tuple(
        _entrance(item, f"{where}.spec.entrances[{index}]")
        for index, item in enumerate(objects_field(spec, "entrances", f"{where}.spec"))
    )
    statuses = tuple(
        _entrance_status(item, f"{where}.status.entranceStatuses[{index}]")
        for index, item in enumerate(objects_field(status, "entranceStatuses", f"{where}.status"))
    )
    name = text_field(spec, "name", f"{where}.spec", required=True)
    return InstalledApp(
        owner=text_field(spec, "owner", f"{where}.spec", required=True),
        name=name,
        appid=text_field(spec, "appid", f"{where}.spec") or name,
        source=text_field(spec, "source", f"{where}.spec"),
        title=text_field(spec, "title", f"{where}.spec"),
        state=text_field(status, "state", f"{where}.status"),
        update_time=time_field(status, "updateTime", f"{where}.status"),
        status_time=time_field(status, "statusTime", f"{where}.status"),
        last_transition_time=time_field(status, "lastTransitionTime", f"{where}.status"),
        icon=text_field(spec, "icon", f"{where}.spec"),
        namespace=text_field(metadata, "namespace", f"{where}.metadata"),
        entrances=entrances,
        entrance_statuses=statuses,
        shared_entrances=tuple(
            dict(item) for item in objects_field(status, "sharedEntrances", f"{where}.status")
        ),
    )


def parse_middleware(raw: Any, where: str = "middleware") -> InstalledApp:
    """A middleware as an app-like record: name = appid = ``metadata.name``."""
    as_object(raw, where)
    metadata = object_field(raw, "metadata", where)
    name = text_field(metadata, "name", f"{where}.metadata", required=True)
    updated = time_field(raw, "updateTime", where)
    return InstalledApp(
        owner=text_field(raw, "user", where, required=True),
        name=name,
        appid=name,
        source=MIDDLEWARE_SOURCE,
        title=text_field(raw, "title", where),
        state=text_field(raw, "resourceStatus", where),
        update_time=updated,
        status_time=updated,
        last_transition_time=updated,
        namespace=text_field(raw, "namespace", where),
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
        with wrong_shape_is_remote(SERVICE, url, response.status_code):
            apps = tuple(parse_application(item, f"[{index}]") for index, item in enumerate(items))
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
        with wrong_shape_is_remote(SERVICE, url, response.status_code):
            apps = tuple(
                parse_middleware(item, f"data[{index}]") for index, item in enumerate(items)
            )
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
