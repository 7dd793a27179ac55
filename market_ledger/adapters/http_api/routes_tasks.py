"""The five task routes the market's front end calls: install, clone, cancel, uninstall and
upgrade, with the replaced system's paths, bodies, messages and status codes.

Each answers ``data.task_id`` once the task is recorded. With ``"sync": true`` it waits for
app-service's answer, read from the task's events, up to ``TaskSettings.sync_wait_seconds``,
then answers 202 with the task id. The user's token (the ``auth_token`` cookie, else the
``X-Authorization`` header) goes with the queued operation and nowhere else.
"""

from __future__ import annotations

from typing import Any, Protocol

import attrs
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from market_ledger.adapters.http_api.common import ApiError, envelope, requester
from market_ledger.adapters.http_api.routes_market import PREFIX
from market_ledger.adapters.http_api.task_bodies import (
    InvalidBody,
    TaskBody,
    operation_body,
    options_body,
)
from market_ledger.domain.task_events import (
    CANCEL,
    CLONE,
    INSTALL,
    UNINSTALL,
    UPGRADE,
    TaskStatus,
)
from market_ledger.service.task_requests import RequestRefused, Submitted, TaskRequest

TOKEN_COOKIE = "auth_token"
TOKEN_HEADER = "X-Authorization"
NO_USER = "Failed to get user information"
STILL_RUNNING = "Task is still running, query task status for result"
#: the states in which app-service did not take the task
_NOT_TAKEN = (TaskStatus.REJECTED, TaskStatus.INTERRUPTED, TaskStatus.DEQUEUED)


@attrs.frozen
class KindWords:
    started: str
    completed: str
    failed: str


WORDS = {
    INSTALL: KindWords(
        "App installation started successfully",
        "App installation completed successfully",
        "Installation failed",
    ),
    CLONE: KindWords(
        "App clone installation started successfully",
        "App clone installation completed successfully",
        "Clone installation failed",
    ),
    CANCEL: KindWords(
        "App installation cancellation started successfully",
        "App installation cancellation completed successfully",
        "Cancel installation failed",
    ),
    UNINSTALL: KindWords(
        "App uninstallation started successfully",
        "App uninstallation completed successfully",
        "Uninstallation failed",
    ),
    UPGRADE: KindWords(
        "App upgrade started successfully",
        "App upgrade completed successfully",
        "Upgrade failed",
    ),
}
MISSING = {
    INSTALL: "Missing required fields: source, app_name, and version are required",
    UPGRADE: "Missing required fields: source, app_name, and version are required",
    CLONE: "Missing required fields: source and app_name are required",
}


class TaskDesk(Protocol):
    """What the task routes need: submitting a request and waiting for its answer."""

    async def submit(self, request: TaskRequest) -> Submitted: ...

    async def wait_answered(self, task_id: str) -> Any: ...


def _identity(request: Request) -> tuple[str, str]:
    try:
        user = requester(request)
    except ApiError as error:
        if error.status == 401:
            raise ApiError(401, NO_USER) from None
        raise
    token = request.cookies.get(TOKEN_COOKIE) or request.headers.get(TOKEN_HEADER) or ""
    return user, token


def _why_not_taken(state: Any) -> str:
    if state.status == TaskStatus.DEQUEUED:
        return "canceled before it was sent to app-service"
    return str(state.reason or state.status)


def _result(kind: str, user: str, state: Any, submitted: Submitted) -> dict[str, Any]:
    result: dict[str, Any] = {
        "operation": kind,
        "app_name": state.app_name,
        "user": user,
        "task_id": submitted.task_id,
    }
    if state.status in _NOT_TAKEN:
        result.update(status="failed", error=_why_not_taken(state))
        answer = state.backend_answer
        if answer:
            try:
                result["backend_response"] = orjson.loads(answer)
            except orjson.JSONDecodeError:
                result["response"] = answer
    else:
        result.update(status="success", opID=state.op_id)
    return result


def task_routes(desk: TaskDesk | None) -> list[Route]:
    async def answer(request: Request, kind: str, body: TaskBody, app_name: str) -> Response:
        user, token = _identity(request)
        if desk is None:
            raise ApiError(503, "App operations are off: app-service is not configured")
        if kind in MISSING and not (
            body.source and body.app_name and (body.version or kind == CLONE)
        ):
            raise ApiError(400, MISSING[kind])
        task_request = TaskRequest(
            kind=kind,
            user=user,
            app_name=app_name,
            token=token,
            source=body.source,
            version=body.version,
            envs=body.envs,
            all=body.all,
            delete_data=body.delete_data,
            title=body.title,
            entrances=body.entrances,
        )
        words = WORDS[kind]
        try:
            submitted = await desk.submit(task_request)
        except RequestRefused as refused:
            raise ApiError(refused.status, refused.message) from None
        if not body.sync:
            return envelope({"task_id": submitted.task_id}, words.started)
        state = await desk.wait_answered(submitted.task_id)
        if state is None:
            return envelope({"task_id": submitted.task_id}, STILL_RUNNING, status=202)
        result = _result(kind, user, state, submitted)
        if result["status"] == "failed":
            return envelope(result, f"{words.failed}: {result['error']}", status=500, success=False)
        return envelope(result, words.completed)

    async def read_operation(request: Request) -> TaskBody:
        try:
            return operation_body(await request.body())
        except InvalidBody as invalid:
            raise ApiError(400, invalid.message) from None

    async def install(request: Request) -> Response:
        body = await read_operation(request)
        return await answer(request, INSTALL, body, body.app_name)

    async def clone(request: Request) -> Response:
        body = await read_operation(request)
        return await answer(request, CLONE, body, body.app_name)

    async def upgrade(request: Request) -> Response:
        body = await read_operation(request)
        return await answer(request, UPGRADE, body, body.app_name)

    async def cancel(request: Request) -> Response:
        body = options_body(await request.body())
        return await answer(request, CANCEL, body, request.path_params["app"])

    async def uninstall(request: Request) -> Response:
        body = options_body(await request.body())
        return await answer(request, UNINSTALL, body, request.path_params["app"])

    return [
        Route(f"{PREFIX}/apps/{{app}}/install", install, methods=["POST"]),
        Route(f"{PREFIX}/apps/{{app}}/clone", clone, methods=["POST"]),
        Route(f"{PREFIX}/apps/{{app}}/install", cancel, methods=["DELETE"]),
        Route(f"{PREFIX}/apps/{{app}}", uninstall, methods=["DELETE"]),
        Route(f"{PREFIX}/apps/{{app}}/upgrade", upgrade, methods=["PUT"]),
    ]
