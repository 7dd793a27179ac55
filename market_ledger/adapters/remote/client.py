"""Shared plumbing for the HTTP clients: timeouts, bounded retries, strict JSON decoding.

Every failure ends as a ``RemoteError`` whose reason says what went wrong (timed out, transport
error, HTTP status with a short body, empty body, not JSON, wrong shape). Retries are logged;
nothing is swallowed. The shape checks themselves live in
:mod:`market_ledger.adapters.remote.shapes`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, Protocol

import attrs
import httpx
import orjson

from market_ledger.adapters.logging_setup import redact_library_logs
from market_ledger.adapters.remote.shapes import expect_object, json_type
from market_ledger.service.ports import RemoteError

log = logging.getLogger(__name__)
# httpx logs each request's URL, query included: redact its records wherever they go.
redact_library_logs()

JSON_HEADERS = {"Content-Type": "application/json"}

BODY_EXCERPT = 200


@attrs.frozen
class RetrySettings:
    """Bounded retries with exponential backoff: attempt k waits ``base_delay * 2**(k-2)``.

    With ``attempts=3, base_delay=2.0`` the waits are 2 s then 4 s. Tests pass tiny delays.
    """

    attempts: int = 3
    base_delay: float = 0.5

    def __attrs_post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {self.attempts}")
        if self.base_delay < 0:
            raise ValueError(f"base delay must not be negative, got {self.base_delay}")

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before ``attempt`` (1-based; the first attempt does not wait)."""
        if attempt <= 1:
            return 0.0
        return float(self.base_delay * 2 ** (attempt - 2))


SINGLE_ATTEMPT = RetrySettings(attempts=1, base_delay=0.0)


def excerpt(data: bytes | str, limit: int = BODY_EXCERPT) -> str:
    """A short, one-line view of a body for error messages."""
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


def is_retryable_status(status: int) -> bool:
    """Worth another attempt: the server is unwell (5xx) or asks us to slow down (429)."""
    return status >= 500 or status == 429


@asynccontextmanager
async def client_for_call(shared: httpx.AsyncClient | None) -> AsyncIterator[httpx.AsyncClient]:
    """Use the caller's client when there is one, else a client for this one call."""
    if shared is not None:
        yield shared
        return
    async with httpx.AsyncClient(follow_redirects=True) as client:
        yield client


class HttpAnswer(Protocol):
    """What the decoders read of an answer: an ``httpx.Response`` or a keep-alive one."""

    @property
    def status_code(self) -> int: ...

    @property
    def content(self) -> bytes: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def url(self) -> object: ...


def timed_out(service: str, url: str, timeout: float) -> RemoteError:
    return RemoteError(service, url, f"timed out after {timeout:g} s")


def transport_failed(service: str, url: str, error: BaseException) -> RemoteError:
    detail = str(error) or type(error).__name__
    return RemoteError(service, url, f"transport error: {type(error).__name__}: {detail}")


def checked_status(answer: HttpAnswer, service: str, url: str) -> None:
    """Raise for an answer that is not a 2xx, naming its status and a short body."""
    status = answer.status_code
    if not 200 <= status < 300:
        raise RemoteError(
            service,
            url,
            f"HTTP {status}: {excerpt(answer.content) or '(empty body)'}",
            status=status,
        )


async def _attempt(
    client: httpx.AsyncClient,
    service: str,
    method: str,
    url: str,
    timeout: float,
    params: Mapping[str, str] | None,
    json_body: Any,
    auth: httpx.Auth | None,
) -> httpx.Response:
    try:
        async with asyncio.timeout(timeout):
            # The URL's own query (a source's base URL may have one) is kept: httpx would
            # replace it with ``params``.
            target = httpx.URL(url).copy_merge_params(params) if params else url
            response = await client.request(
                method,
                target,
                content=None if json_body is None else orjson.dumps(json_body),
                headers=JSON_HEADERS if json_body is not None else None,
                timeout=httpx.Timeout(timeout),
                auth=httpx.USE_CLIENT_DEFAULT if auth is None else auth,
            )
    except (TimeoutError, httpx.TimeoutException) as error:
        raise timed_out(service, url, timeout) from error
    except httpx.TransportError as error:
        raise transport_failed(service, url, error) from error
    except httpx.HTTPError as error:
        raise RemoteError(
            service, url, f"request failed: {type(error).__name__}: {error}"
        ) from error
    checked_status(response, service, url)
    return response


async def send(
    client: httpx.AsyncClient,
    service: str,
    method: str,
    url: str,
    *,
    timeout: float,
    retry: RetrySettings = SINGLE_ATTEMPT,
    params: Mapping[str, str] | None = None,
    json_body: Any = None,
    auth: httpx.Auth | None = None,
) -> httpx.Response:
    """Send one request, retrying transport errors, timeouts, 5xx and 429.

    ``params`` are added to the query ``url`` already has; ``auth`` (e.g. a source's basic
    authentication) is sent with the request, never written into the URL.

    Returns a 2xx response; any other outcome raises :class:`RemoteError` with the reason of
    the last attempt (and how many attempts were made, when more than one).
    """
    last: RemoteError | None = None
    for attempt in range(1, retry.attempts + 1):
        delay = retry.delay_before(attempt)
        if delay:
            await asyncio.sleep(delay)
        try:
            return await _attempt(client, service, method, url, timeout, params, json_body, auth)
        except RemoteError as error:
            retryable = error.status is None or is_retryable_status(error.status)
            if not retryable:
                raise
            last = error
            if attempt < retry.attempts:
                log.info(
                    "%s %s attempt %d/%d failed, retrying: %s",
                    method,
                    url,
                    attempt,
                    retry.attempts,
                    error.reason,
                )
    assert last is not None
    if retry.attempts == 1:
        raise last
    raise RemoteError(
        service, url, f"{last.reason} (after {retry.attempts} attempts)", status=last.status
    ) from last


def endpoint_url(response: HttpAnswer) -> str:
    """The URL a response answered, without its query: what errors name."""
    return str(response.url).partition("?")[0]  # cheap: it runs on every response


def decode_json(response: HttpAnswer, service: str) -> Any:
    """The decoded body, whatever its Content-Type; an empty or non-JSON body is an error.

    The system this replaced decoded only JSON Content-Types and took anything else as an
    empty answer, which wiped catalogs; here a body either decodes or the call fails.
    """
    url = endpoint_url(response)
    body = response.content
    if not body.strip():
        raise RemoteError(
            service,
            url,
            f"HTTP {response.status_code} with an empty body",
            status=response.status_code,
        )
    try:
        return orjson.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        content_type = response.headers.get("content-type", "no content type")
        raise RemoteError(
            service,
            url,
            f"body is not JSON ({content_type}): {excerpt(body)}",
            status=response.status_code,
        ) from error


def decode_object(response: HttpAnswer, service: str, what: str = "the response") -> dict[str, Any]:
    """The body as a JSON object (empty, not JSON and wrong shape are errors)."""
    return expect_object(decode_json(response, service), service, endpoint_url(response), what)


def decode_envelope_data(response: HttpAnswer, service: str) -> Any:
    """``data`` of a ``{"success", "message", "data"}`` envelope; ``success`` must be true."""
    url = endpoint_url(response)
    envelope = decode_object(response, service, "the response envelope")
    success = envelope.get("success")
    if success is not True:
        message = envelope.get("message")
        said = f": {excerpt(str(message))}" if message else " (no message)"
        if success is False:
            raise RemoteError(
                service, url, f"answered success=false{said}", status=response.status_code
            )
        raise RemoteError(
            service,
            url,
            f"wrong shape: 'success' must be true or false, got {json_type(success)}{said}",
            status=response.status_code,
        )
    return envelope.get("data")
