"""What the service needs from the systems around it, as Protocols and the errors they raise.

The service speaks to market sources, chart-repo and app-service only through these; the
adapters implement them and the composition root picks which implementation runs. The values
the ports return live in :mod:`market_ledger.service.remote_values`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Protocol

import attrs

from market_ledger.domain.redaction import redact_text, redact_url
from market_ledger.service.remote_values import InstalledApps, MarketSnapshot, StateChangePage

#: the ledger's notion of now (tests pass a fake one)
Clock = Callable[[], datetime]


class RemoteError(Exception):
    """A remote system could not give a usable answer.

    ``status`` is the HTTP status when there was a response, else ``None`` (transport error,
    timeout, or a local file that could not be read). Adapters raise it; the service catches
    it without knowing which adapter answered.
    """

    def __init__(self, service: str, url: str, reason: str, *, status: int | None = None) -> None:
        # Errors are logged, summarised and shown: never with a URL's credentials in them.
        url = redact_url(url)
        reason = redact_text(reason)
        super().__init__(f"{service} at {url}: {reason}")
        self.service = service
        self.url = url
        self.reason = reason
        self.status = status

    def __reduce__(self) -> tuple[object, ...]:
        # Keep the error picklable (keyword-only ``status`` needs help).
        return (_rebuild, (self.service, self.url, self.reason, self.status))


def _rebuild(service: str, url: str, reason: str, status: int | None) -> RemoteError:
    return RemoteError(service, url, reason, status=status)


# --- market sources -----------------------------------------------------------------------------


class CatalogSource(Protocol):
    """A market source the cycle can probe and fetch: remote (HTTP) or local (file)."""

    async def probe_hash(self, version: str) -> str | None: ...

    async def fetch_hash(self, version: str) -> str: ...

    async def fetch_snapshot(self, version: str) -> MarketSnapshot: ...


#: the catalog source for a base URL and a source id (the composition root decides which kind)
CatalogSources = Callable[[str, str | None], CatalogSource]


# --- rendering ----------------------------------------------------------------------------------


@attrs.frozen
class RenderSuccess:
    """A complete render: ``app_data`` is the rendered entry for the user."""

    app_data: Mapping[str, Any]
    #: the renderer's own word on it ("new", "updated", "existing"...), informational
    status: str = ""
    message: str = ""

    @property
    def ok(self) -> bool:
        return True


@attrs.frozen
class RenderFailure:
    """No usable render; ``reason`` is for people, ``status`` the HTTP status if any."""

    step: str
    reason: str
    status: int | None = None

    @property
    def ok(self) -> bool:
        return False


RenderResult = RenderSuccess | RenderFailure


class RenderWorker(Protocol):
    """One render at a time; a remote problem is a :class:`RenderFailure`, never raised."""

    async def render(self, entry: Mapping[str, Any], source: str, user: str) -> RenderResult: ...


class Renderer(Protocol):
    """Renders catalog entries; each worker of the hydrate phase opens its own session, so
    one that holds a connection keeps it for the worker's whole run."""

    def worker(self) -> AbstractAsyncContextManager[RenderWorker]: ...


# --- chart-repo's feed and app-service ---------------------------------------------------------


class ChangesFeed(Protocol):
    """chart-repo's state-changes feed and the records its changes point at."""

    async def state_changes(self, after_id: int, limit: int = ...) -> StateChangePage: ...

    async def fetch_uploaded_app(
        self, user: str, app_name: str, source: str
    ) -> Mapping[str, Any]: ...

    async def fetch_image_info(self, image_name: str) -> Mapping[str, Any]: ...

    def is_rendered(self, app: Mapping[str, Any]) -> bool:
        """Whether an uploaded app's record already holds a complete render."""
        ...


class InstalledAppsSource(Protocol):
    """What app-service says is installed, and the OS version markets are asked for."""

    async def all_apps(self) -> InstalledApps: ...

    async def middlewares(self) -> InstalledApps: ...

    async def terminus_version(self) -> str: ...


# --- readiness and metrics ----------------------------------------------------------------------


class PartHealth(Protocol):
    """Where a long-running part says whether it works (read by the readiness route)."""

    def ok(self, part: str) -> None: ...

    def failing(self, part: str, reason: str) -> None: ...


class CycleMetrics(Protocol):
    """What the cycle counts and measures, for whoever exports metrics."""

    def phase_took(self, phase: str, seconds: float) -> None: ...

    def cycle_ended(self, outcome: str) -> None: ...

    def log_position(self, head: int, lag: int) -> None: ...

    def render_ended(self, outcome: str) -> None: ...

    def source_synced(self, source_id: str, outcome: str) -> None: ...


class NoMetrics:
    """Measures nothing: the default where no exporter is wired (tests, one-off commands)."""

    def phase_took(self, phase: str, seconds: float) -> None:
        pass

    def cycle_ended(self, outcome: str) -> None:
        pass

    def log_position(self, head: int, lag: int) -> None:
        pass

    def render_ended(self, outcome: str) -> None:
        pass

    def source_synced(self, source_id: str, outcome: str) -> None:
        pass
