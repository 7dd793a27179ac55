"""The HTTP API served for real on a loopback port, for the tests that talk to it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from market_ledger.adapters.http_api.common import (
    USER_HEADER,
    HttpServices,
    HttpSettings,
    ReadinessCheck,
)
from market_ledger.adapters.http_api.routes_tasks import TaskDesk
from market_ledger.adapters.http_api.server import create_app, serve_http

MARKET = "/app-store/api/v2"
LEDGER = "/app-store/api/v2/ledger"


class LiveServer:
    """``serve_http`` in a thread with its own event loop, stopped through its stop event."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._listening = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="http-api", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(
                serve_http(self.app, "127.0.0.1", 0, self._stop, on_listening=self._on_listening)
            )
        except BaseException as error:  # reported by start() or stop()
            self._error = error
        finally:
            self._listening.set()
            self._loop.close()

    def _on_listening(self, port: int) -> None:
        self.port = port
        self._listening.set()

    def start(self) -> str:
        self._thread.start()
        if not self._listening.wait(20) or self._error is not None:
            raise RuntimeError(f"the HTTP API did not start: {self._error!r}")
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(20)
        assert not self._thread.is_alive(), "the HTTP API did not shut down"
        if self._error is not None:
            raise self._error


class Api:
    """An HTTP client for the live API that sends ``X-Bfl-User`` when given a user."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.client = httpx.Client(base_url=base_url, timeout=30)

    def _headers(self, as_user: str | None, headers: dict[str, str] | None) -> dict[str, str]:
        sent = dict(headers or {})
        if as_user is not None:
            sent[USER_HEADER] = as_user
        return sent

    def get(
        self,
        path: str,
        as_user: str | None = "alice",
        headers: dict[str, str] | None = None,
        **params: Any,
    ) -> httpx.Response:
        """GET as ``as_user`` (None: without the header) with query ``params``."""
        return self.client.get(path, params=params, headers=self._headers(as_user, headers))

    def post(
        self,
        path: str,
        body: Any = None,
        as_user: str | None = "alice",
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """POST ``body`` as JSON (or ``content=...``, declared JSON unless told) as ``as_user``."""
        if body is not None:
            kwargs["json"] = body
        sent = self._headers(as_user, headers)
        if not any(name.lower() == "content-type" for name in sent):
            sent["Content-Type"] = "application/json"
        return self.client.post(path, headers=sent, **kwargs)

    def send(
        self,
        method: str,
        path: str,
        body: Any = None,
        as_user: str | None = "alice",
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Any method, with ``body`` as JSON when given, as ``as_user``."""
        if body is not None:
            kwargs["json"] = body
        return self.client.request(method, path, headers=self._headers(as_user, headers), **kwargs)

    def data(self, response: httpx.Response, status: int = 200) -> Any:
        """The envelope's data, after checking the status and the envelope."""
        assert response.status_code == status, response.text
        body = response.json()
        assert set(body) == {"success", "message", "data"}
        assert body["success"] is (status < 400)
        return body["data"]

    def close(self) -> None:
        self.client.close()


@contextmanager
def live_api(
    services: HttpServices,
    *,
    settings: HttpSettings | None = None,
    readiness: ReadinessCheck | None = None,
    tasks: TaskDesk | None = None,
) -> Iterator[Api]:
    server = LiveServer(create_app(services, settings=settings, readiness=readiness, tasks=tasks))
    api = Api(server.start())
    try:
        yield api
    finally:
        api.close()
        server.stop()
