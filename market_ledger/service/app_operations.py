"""The port through which tasks reach app-service, and the values it takes and returns.

An :class:`Operation` is everything one app-service call needs, the user's token and env
values included: it lives only in memory, while its task is queued or in flight, and its
``repr`` never shows a secret. :class:`AppOperations` sends it once (an operation is never
re-sent by the port: app-service has no idempotency key) and returns what app-service said.
"""

from __future__ import annotations

from typing import Protocol

import attrs

from market_ledger.service.remote_values import InstalledApps


@attrs.frozen
class EnvValue:
    """One env of a request: a value, or (``value_from``) the name of an env to read it from."""

    name: str
    value: str | None = attrs.field(default=None, repr=False)
    value_from: str | None = None


@attrs.frozen
class ImageSize:
    name: str
    size: int


@attrs.frozen
class Operation:
    """One call to app-service, as a task asked for it."""

    kind: str
    user: str
    #: the app in the call's path (a clone's new name: the original's name + request hash)
    app_name: str
    token: str = attrs.field(repr=False)
    #: the market source id; a source of type ``upload`` is sent as ``custom``
    source: str = ""
    source_type: str = ""
    #: sent on upgrade only (an install lets app-service pick the chart by its source)
    version: str = ""
    envs: tuple[EnvValue, ...] = ()
    images: tuple[ImageSize, ...] = ()
    #: uninstall's flags
    all: bool = False
    delete_data: bool = False
    #: clone's fields
    raw_app_name: str = ""
    request_hash: str = ""
    title: str = ""
    entrances: tuple[tuple[str, str], ...] = ()


@attrs.frozen
class Accepted:
    """app-service answered ``code == 200``; ``op_id`` is its operation id (may be empty)."""

    op_id: str
    #: the answer as received, secrets redacted, cut to a bounded excerpt
    answer: str = ""


@attrs.frozen
class Rejected:
    """app-service answered, and not with ``code == 200``; or it could not be reached at all,
    so the request is known not to have been taken."""

    reason: str
    answer: str = ""


class AnswerUnknown(Exception):
    """The request may have reached app-service, but no answer came (a timeout, a connection
    lost mid-call): whether app-service took it is not known."""


class AppOperations(Protocol):
    async def submit(self, operation: Operation) -> Accepted | Rejected:
        """Send ``operation`` once; raises :class:`AnswerUnknown` when its fate is not known."""
        ...

    async def all_apps(self) -> InstalledApps:
        """app-service's installed apps, to reconcile a task whose answer is not known;
        raises ``RemoteError`` when they cannot be read."""
        ...
