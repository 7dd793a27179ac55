"""The client of chart-repo: render (``dcr/sync-app``), the state-changes feed, uploads, images.

Base URL: ``http://{CHART_REPO_SERVICE_HOST}/chart-repo/api/v2``; the host is ``host[:port]``,
and a value that already has a scheme is used as is (the replaced system prefixed it again).

Rendering never raises for a remote problem: :meth:`ChartRepoClient.sync_app` answers
:class:`RenderSuccess` only for a complete render, and :class:`RenderFailure` (step and reason)
for everything else, including ``success: false``, a missing ``app_data`` and an incomplete
render. The replaced system took those three as "try again next cycle" and re-posted them
forever; here they are failures the domain retries with backoff and eventually parks.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import httpx

from market_ledger.adapters.chart_repo.app_data import incomplete_reason, is_hydration_complete
from market_ledger.adapters.remote.client import (
    SINGLE_ATTEMPT,
    HttpAnswer,
    RetrySettings,
    decode_envelope_data,
    excerpt,
    send,
)
from market_ledger.adapters.remote.client_holder import HttpClientHolder
from market_ledger.adapters.remote.keep_alive import KeepAliveConnection
from market_ledger.adapters.remote.shapes import (
    ShapeError,
    as_integer,
    expect_array,
    expect_object,
    instant,
    json_type,
    required_text,
    text_or_empty,
    texts_required,
)
from market_ledger.service.ports import RemoteError, RenderFailure, RenderResult, RenderSuccess
from market_ledger.service.remote_values import (
    AppChangeData,
    ImageChangeData,
    SkippedChange,
    StateChange,
    StateChangePage,
)

log = logging.getLogger(__name__)

SERVICE = "chart-repo"
API_PREFIX = "/chart-repo/api/v2"
#: the failure step named in render failures, as the replaced system named it
API_STEP = "TaskForApiStep"
UPLOAD_COMPLETED = "app_upload_completed"
IMAGE_INFO_UPDATED = "image_info_updated"
DEFAULT_PAGE_LIMIT = 1000
DEFAULT_RETRY = RetrySettings(attempts=3, base_delay=0.5)


def chart_repo_base_url(host: str) -> str:
    """``http://host[:port]/chart-repo/api/v2``; a host given with a scheme keeps it."""
    value = host.strip().removesuffix("/")
    if not value:
        raise ValueError("the chart-repo host is empty (CHART_REPO_SERVICE_HOST)")
    if not value.startswith(("http://", "https://")):
        value = "http://" + value
    return value + API_PREFIX


def parse_state_change(raw: Any) -> StateChange | SkippedChange:
    """Read one change; a malformed one becomes a :class:`SkippedChange` with its reason."""
    if not isinstance(raw, dict):
        return SkippedChange(None, f"a change must be an object, got {json_type(raw)}", raw)
    change_id = as_integer(raw.get("id"))
    if change_id is None:
        return SkippedChange(None, f"id must be an integer, got {json_type(raw.get('id'))}", raw)
    try:
        change_type = required_text(raw.get("type"), "type")
    except ShapeError as error:
        return SkippedChange(change_id, str(error), raw)
    try:
        timestamp = instant(raw.get("timestamp"), "timestamp")
        app_data = None
        image_data = None
        if change_type == UPLOAD_COMPLETED:
            app_data = AppChangeData(
                **texts_required(raw.get("app_data"), ("source", "app_name", "user_id"), "app_data")
            )
        elif change_type == IMAGE_INFO_UPDATED:
            image_data = ImageChangeData(
                **texts_required(raw.get("image_data"), ("image_name",), "image_data")
            )
    except ShapeError as error:
        return SkippedChange(change_id, f"{change_type}: {error}", raw)
    return StateChange(
        id=change_id,
        type=change_type,
        timestamp=timestamp,
        app_data=app_data,
        image_data=image_data,
    )


# --- the client ---------------------------------------------------------------------------------


class ChartRepoClient(HttpClientHolder):
    """chart-repo at ``host`` (``CHART_REPO_SERVICE_HOST``).

    ``sync_timeout`` bounds one render call (3 s, as the replaced system; raise it for first renders
    of big charts); ``request_timeout`` and ``retry`` apply to the feed, uploads and images.
    Renders are never retried here: the domain schedules retries with backoff.
    """

    def __init__(
        self,
        host: str,
        *,
        client: httpx.AsyncClient | None = None,
        sync_timeout: float = 3.0,
        request_timeout: float = 30.0,
        retry: RetrySettings = DEFAULT_RETRY,
    ) -> None:
        super().__init__(client)
        self.base_url = chart_repo_base_url(host)
        self.sync_timeout = sync_timeout
        self.request_timeout = request_timeout
        self.retry = retry

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.removeprefix('/')}"

    # --- render -----------------------------------------------------------------------------

    async def sync_app(
        self,
        pending_entry: Mapping[str, Any],
        source_id: str,
        user: str,
        *,
        over: KeepAliveConnection | None = None,
    ) -> RenderResult:
        """POST ``dcr/sync-app`` for one pending entry; a complete render or a failure.

        ``over``: a render worker's own connection to chart-repo (see
        market_ledger.adapters.chart_repo.renderer); else the client's httpx one.
        """
        body = {
            "app_info_latest_pending_data": pending_entry,
            "source_id": source_id,
            "user_name": user,
        }
        url = self.url("dcr/sync-app")
        try:
            if over is not None:
                answer: HttpAnswer = await over.request(
                    SERVICE, "POST", url, timeout=self.sync_timeout, json_body=body
                )
            else:
                async with self._http() as http:
                    answer = await send(
                        http,
                        SERVICE,
                        "POST",
                        url,
                        timeout=self.sync_timeout,
                        retry=SINGLE_ATTEMPT,
                        json_body=body,
                    )
            data = decode_envelope_data(answer, SERVICE)
        except RemoteError as error:
            return RenderFailure(API_STEP, f"sync-app: {error.reason}", status=error.status)
        return self._render_result(data, answer.status_code)

    @staticmethod
    def _render_result(data: Any, status: int) -> RenderResult:
        if data is None:
            return RenderFailure(API_STEP, "sync-app: answered success without data", status=status)
        if not isinstance(data, dict):
            return RenderFailure(
                API_STEP,
                f"sync-app: wrong shape: data must be an object, got {json_type(data)}",
                status=status,
            )
        render_status = text_or_empty(data, "status")
        message = text_or_empty(data, "message")
        app_data = data.get("app_data")
        if app_data is None:
            said = (
                f" (status {render_status!r}: {excerpt(message)})"
                if render_status or message
                else ""
            )
            return RenderFailure(
                API_STEP, f"sync-app: answered success without app_data{said}", status=status
            )
        if not isinstance(app_data, dict):
            return RenderFailure(
                API_STEP,
                f"sync-app: wrong shape: app_data must be an object, got {json_type(app_data)}",
                status=status,
            )
        missing = incomplete_reason(app_data)
        if missing is not None:
            return RenderFailure(
                API_STEP, f"sync-app: the render is incomplete: {missing}", status=status
            )
        return RenderSuccess(app_data=app_data, status=render_status, message=message)

    async def _data(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
    ) -> Any:
        """``data`` of chart-repo's envelope for one request (retried; failures raise)."""
        async with self._http() as http:
            response = await send(
                http,
                SERVICE,
                method,
                url,
                timeout=self.request_timeout,
                retry=self.retry,
                params=params,
                json_body=json_body,
            )
            return decode_envelope_data(response, SERVICE)

    # --- the feed ---------------------------------------------------------------------------

    async def state_changes(
        self, after_id: int, limit: int = DEFAULT_PAGE_LIMIT
    ) -> StateChangePage:
        """One page of changes after ``after_id``; a failed or malformed page raises."""
        url = self.url("state-changes")
        data = await self._data("GET", url, params={"after_id": str(after_id), "limit": str(limit)})
        page = expect_object(data, SERVICE, url, "data")
        raw_changes = page.get("state_changes")
        raw_list = (
            []
            if raw_changes is None
            else expect_array(raw_changes, SERVICE, url, "data.state_changes")
        )
        changes: list[StateChange] = []
        skipped: list[SkippedChange] = []
        for raw in raw_list:
            parsed = parse_state_change(raw)
            if isinstance(parsed, SkippedChange):
                log.warning("chart-repo state change skipped: %s", parsed.reason)
                skipped.append(parsed)
            else:
                changes.append(parsed)
        changes.sort(key=lambda change: change.id)

        def number(field: str, default: int) -> int:
            value = as_integer(page.get(field))
            return default if value is None else value

        return StateChangePage(
            after_id=number("after_id", after_id),
            limit=number("limit", limit),
            count=number("count", len(raw_list)),
            total_available=number("total_available", len(raw_list)),
            changes=tuple(changes),
            skipped=tuple(skipped),
        )

    # --- uploads and images -----------------------------------------------------------------

    async def fetch_uploaded_app(self, user: str, app_name: str, source: str) -> Mapping[str, Any]:
        """The uploaded app's entry (``data.apps[0]``, with its ``raw_data``) or RemoteError."""
        url = self.url("apps")
        body = {"apps": [{"appid": app_name, "sourceDataName": source}], "userid": user}
        data = await self._data("POST", url, json_body=body)
        apps = expect_array(
            expect_object(data, SERVICE, url, "data").get("apps"), SERVICE, url, "data.apps"
        )
        if not apps:
            raise RemoteError(SERVICE, url, f"no app {app_name!r} of {user!r} in source {source!r}")
        app = expect_object(apps[0], SERVICE, url, "data.apps[0]")
        expect_object(app.get("raw_data"), SERVICE, url, "data.apps[0].raw_data")
        return app

    async def fetch_image_info(self, image_name: str) -> Mapping[str, Any]:
        """``data.image_info`` for one image reference (the name is URL-escaped)."""
        url = self.url("images")
        data = await self._data("GET", url, params={"imageName": image_name})
        info = expect_object(data, SERVICE, url, "data").get("image_info")
        return expect_object(info, SERVICE, url, "data.image_info")

    @staticmethod
    def is_rendered(app: Mapping[str, Any]) -> bool:
        """Whether an uploaded app's record already holds chart-repo's complete render."""
        return is_hydration_complete(app)
