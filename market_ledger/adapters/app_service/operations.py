"""The app-service side of tasks: each operation sent once, and what app-service said.

:class:`AppServiceOperations` implements the service's ``AppOperations`` port. What a request
looks like is in :mod:`~market_ledger.adapters.app_service.operation_requests`, what an answer
means in :mod:`~market_ledger.adapters.app_service.operation_answers`.

An operation is never sent twice: app-service has no idempotency key, so a second request
would be a second operation. Hence no retry, and no redirect followed (a redirected POST is
sent again). How a call can end:

- an answer (any HTTP status): accepted (``code == 200``) or rejected;
- the request was never sent (connection refused, connect timeout, no free connection, a
  request that cannot be written): rejected, since app-service cannot have taken it;
- the request may have reached app-service, but no answer came (a read or write timeout, the
  connection lost, the call's deadline): :class:`AnswerUnknown`, for the caller to reconcile
  with app-service's list of apps rather than send it again.

Every call has a deadline (``timeout``, 60 s unless told). The user's token and env values
never reach a log line, an exception or a reason; an :class:`AnswerUnknown` does not chain
httpx's error, whose request carries the token in its headers.
"""

from __future__ import annotations

import asyncio
import logging

import httpx

from market_ledger.adapters.app_service.client import AppServiceClient, app_service_base_url
from market_ledger.adapters.app_service.operation_answers import Scrubber, read_answer
from market_ledger.adapters.app_service.operation_requests import (
    OperationRequest,
    UnsendableOperation,
    build_request,
)
from market_ledger.adapters.remote.client_holder import HttpClientHolder
from market_ledger.service.app_operations import Accepted, AnswerUnknown, Operation, Rejected
from market_ledger.service.remote_values import InstalledApps

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 60.0
#: transport failures that happen before a byte of the request is sent
NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
    httpx.LocalProtocolError,
    httpx.ProxyError,
    httpx.InvalidURL,
)


def _what(operation: Operation) -> str:
    return f"the {operation.kind} of {operation.app_name!r} for {operation.user!r}"


def _detail(error: Exception, scrub: Scrubber) -> str:
    return scrub(f"{type(error).__name__}: {error}" if str(error) else type(error).__name__)


class AppServiceOperations(HttpClientHolder):
    """Sends tasks' operations to app-service at ``http://host:port``.

    ``repo_url`` is the chart repository as app-service reaches it (``repoUrl`` of install,
    clone and upgrade). ``client``: a shared ``httpx.AsyncClient`` (the caller closes it).
    """

    def __init__(
        self,
        host: str,
        port: int | str | None = None,
        *,
        repo_url: str,
        client: httpx.AsyncClient | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__(client)
        if timeout <= 0:
            raise ValueError(f"the app-service timeout must be positive, got {timeout!r}")
        self.base_url = app_service_base_url(host, port)
        self.repo_url = repo_url
        self.timeout = timeout

    async def submit(self, operation: Operation) -> Accepted | Rejected:
        """Send ``operation`` once; raises :class:`AnswerUnknown` when its fate is not known."""
        scrub = Scrubber([operation.token, *(env.value for env in operation.envs)])
        try:
            request = build_request(operation, self.repo_url)
        except UnsendableOperation as error:
            reason = scrub(f"{_what(operation)} was not sent to app-service: {error}")
            log.warning("%s", reason)
            return Rejected(reason)
        outcome = await self._send(operation, request, scrub)
        if isinstance(outcome, Accepted):
            shown = outcome.op_id or "(no operation id)"
            log.info("app-service accepted %s: operation %s", _what(operation), shown)
        else:
            log.warning("app-service did not take %s: %s", _what(operation), outcome.reason)
        return outcome

    async def _send(
        self, operation: Operation, request: OperationRequest, scrub: Scrubber
    ) -> Accepted | Rejected:
        url = f"{self.base_url}{request.path}" + (f"?{request.query}" if request.query else "")
        try:
            async with asyncio.timeout(self.timeout), self._http() as http:
                response = await http.request(
                    "POST",
                    url,
                    content=request.body,
                    headers=list(request.headers),
                    timeout=httpx.Timeout(self.timeout),
                    follow_redirects=False,
                )
        except NOT_SENT as error:
            return Rejected(f"app-service could not be reached: {_detail(error, scrub)}")
        except (TimeoutError, httpx.TimeoutException):
            message = (
                f"app-service did not answer {_what(operation)} within {self.timeout:g} s: "
                "it may have taken it"
            )
            log.warning("%s", message)
            raise AnswerUnknown(scrub(message)) from None
        except httpx.HTTPError as error:
            message = (
                f"the call to app-service for {_what(operation)} broke off before its answer "
                f"({_detail(error, scrub)}): app-service may have taken it"
            )
            log.warning("%s", message)
            raise AnswerUnknown(scrub(message)) from None
        return read_answer(response.status_code, response.content, scrub)

    async def all_apps(self) -> InstalledApps:
        """app-service's installed apps (``GET /app-service/v1/all/apps``, which may be
        retried: reading changes nothing); raises ``RemoteError`` when they cannot be read."""
        async with self._http() as http:
            listing = AppServiceClient(self.base_url, client=http, timeout=self.timeout)
            return await listing.all_apps()
