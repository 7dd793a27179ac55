"""The client of a remote market source: hash, catalog, details, and a merged snapshot.

Kept from the protocol: the endpoint paths, the ``version`` query and body parameter, detail
batches of 10 with 3 attempts (2 s, then 4 s) and 200 ms between batches, the 3 s probe and
30 s per request. Changed on purpose:

- an empty, undecodable or wrongly shaped catalog is a :class:`RemoteError`, never an empty
  catalog (see :mod:`market_ledger.adapters.market.catalog`);
- details are asked with the caller's (per-cycle) version, not one captured at start-up;
- a detail batch is retried on transport errors, timeouts, 202 ("being loaded"), 429 and 5xx;
  a 200 is final (its ``not_found`` ids are not asked again three times), and another 4xx is
  not retried. Batches that still fail are reported per app in the snapshot, not just logged;
- the merge keeps every detail field (see :mod:`market_ledger.adapters.market.detail_merge`);
- apps the detail endpoint returns without being asked are ignored (logged): the catalog
  decides what is offered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import httpx

from market_ledger.adapters.market.catalog import (
    Catalog,
    DetailReport,
    parse_catalog_document,
)
from market_ledger.adapters.market.credentials import basic_auth
from market_ledger.adapters.market.detail_merge import merge_detail
from market_ledger.adapters.remote.client import (
    SINGLE_ATTEMPT,
    RetrySettings,
    decode_json,
    decode_object,
    excerpt,
    is_retryable_status,
    send,
)
from market_ledger.adapters.remote.client_holder import HttpClientHolder
from market_ledger.adapters.remote.shapes import expect_object, json_type
from market_ledger.domain.manifest import InvalidManifest, Manifest
from market_ledger.domain.redaction import UrlCredentials
from market_ledger.service.ports import RemoteError
from market_ledger.service.remote_values import MarketSnapshot

log = logging.getLogger(__name__)

SERVICE = "market source"
#: hash and catalog: one more try after a second
DEFAULT_RETRY = RetrySettings(attempts=2, base_delay=1.0)
#: detail batches: 3 attempts, waiting 2 s then 4 s (the replaced system's numbers)
DEFAULT_DETAIL_RETRY = RetrySettings(attempts=3, base_delay=2.0)


@attrs.frozen
class MarketEndpoints:
    """Paths joined to a source's base URL; the defaults are the replaced system's."""

    hash_path: str = "/api/v1/appstore/hash"
    catalog_path: str = "/api/v1/appstore/info"
    detail_path: str = "/api/v1/applications/info"


def build_api_url(base_url: str, path: str) -> str:
    """Join a source's base URL and an endpoint path (``https://`` when there is no scheme).

    The base's path is a prefix of the endpoint's; its query stays the query (joining the
    strings would put the endpoint inside the query: ``/?region=eu/api/v1/...``).
    """
    base = base_url.strip()
    if not base.startswith(("http://", "https://")):
        base = "https://" + base
    url = httpx.URL(base)
    return str(url.copy_with(path=url.path.rstrip("/") + "/" + path.lstrip("/")))


class MarketSourceClient(HttpClientHolder):
    """One remote market source, by its base URL (origin plus optional path prefix)."""

    def __init__(
        self,
        base_url: str,
        *,
        endpoints: MarketEndpoints | None = None,
        client: httpx.AsyncClient | None = None,
        probe_timeout: float = 3.0,
        request_timeout: float = 30.0,
        retry: RetrySettings = DEFAULT_RETRY,
        detail_retry: RetrySettings = DEFAULT_DETAIL_RETRY,
        detail_batch_size: int = 10,
        detail_gap: float = 0.2,
        credentials: UrlCredentials | None = None,
    ) -> None:
        super().__init__(client)
        if not base_url.strip():
            raise ValueError("a market source needs a base URL")
        if detail_batch_size < 1:
            raise ValueError(f"detail batch size must be at least 1, got {detail_batch_size}")
        endpoints = endpoints or MarketEndpoints()
        self.base_url = base_url
        self.hash_url = build_api_url(base_url, endpoints.hash_path)
        self.catalog_url = build_api_url(base_url, endpoints.catalog_path)
        self.detail_url = build_api_url(base_url, endpoints.detail_path)
        self.probe_timeout = probe_timeout
        self.request_timeout = request_timeout
        self.retry = retry
        self.detail_retry = detail_retry
        self.detail_batch_size = detail_batch_size
        self.detail_gap = detail_gap
        # : the source's credentials (see market_ledger.adapters.market.credentials), sent with
        # each request
        self._auth = basic_auth(credentials)
        self._secret_query = dict(credentials.query) if credentials else {}

    def _params(self, **params: str) -> dict[str, str]:
        return {**self._secret_query, **params}

    # --- hash -------------------------------------------------------------------------------

    async def probe_hash(self, version: str) -> str | None:
        """The remote's hash, cheaply (one attempt, 3 s); ``None`` on any failure or empty hash.

        A probe only decides whether to fetch early, so its failures are not errors; they are
        logged at debug level.
        """
        try:
            async with self._http() as http:
                return await self._hash(http, version, self.probe_timeout, SINGLE_ATTEMPT)
        except RemoteError as error:
            log.debug("hash probe failed: %s", error)
            return None

    async def fetch_hash(self, version: str) -> str:
        """The remote's hash; an unreachable endpoint, bad body or empty hash raises."""
        async with self._http() as http:
            return await self._hash(http, version, self.request_timeout, self.retry)

    async def _hash(
        self, http: httpx.AsyncClient, version: str, timeout: float, retry: RetrySettings
    ) -> str:
        response = await send(
            http,
            SERVICE,
            "GET",
            self.hash_url,
            timeout=timeout,
            retry=retry,
            params=self._params(version=version),
            auth=self._auth,
        )
        body = decode_object(response, SERVICE, "the hash response")
        value = body.get("hash")
        if not isinstance(value, str):
            raise RemoteError(
                SERVICE,
                self.hash_url,
                f"wrong shape: hash must be a string, got {json_type(value)}",
            )
        if not value.strip():
            raise RemoteError(SERVICE, self.hash_url, "the hash endpoint answered an empty hash")
        return value

    # --- catalog ----------------------------------------------------------------------------

    async def fetch_catalog(self, version: str) -> Catalog:
        """The catalog (summaries and extras), validated; see
        :mod:`market_ledger.adapters.market.catalog`."""
        async with self._http() as http:
            return await self._catalog(http, version)

    async def _catalog(self, http: httpx.AsyncClient, version: str) -> Catalog:
        response = await send(
            http,
            SERVICE,
            "GET",
            self.catalog_url,
            timeout=self.request_timeout,
            retry=self.retry,
            params=self._params(version=version),
            auth=self._auth,
        )
        document = decode_json(response, SERVICE)
        return parse_catalog_document(document, SERVICE, self.catalog_url)

    # --- details ----------------------------------------------------------------------------

    async def fetch_details(self, app_ids: Sequence[str], version: str) -> DetailReport:
        """Detail entries for ``app_ids``, in sequential batches; failures reported per app."""
        async with self._http() as http:
            return await self._details(http, app_ids, version)

    async def _details(
        self, http: httpx.AsyncClient, app_ids: Sequence[str], version: str
    ) -> DetailReport:
        wanted = list(dict.fromkeys(app_ids))
        apps: dict[str, Mapping[str, Any]] = {}
        not_found: list[str] = []
        failures: dict[str, str] = {}
        size = self.detail_batch_size
        for start in range(0, len(wanted), size):
            if start:
                await asyncio.sleep(self.detail_gap)
            batch = wanted[start : start + size]
            try:
                answer = await self._detail_batch(http, batch, version)
            except RemoteError as error:
                log.warning("detail batch of %d apps failed: %s", len(batch), error)
                failures.update(
                    {app_id: f"detail request failed: {error.reason}" for app_id in batch}
                )
                continue
            batch_apps, batch_not_found, batch_failures = answer
            apps.update(batch_apps)
            not_found.extend(batch_not_found)
            failures.update(batch_failures)
        return DetailReport(apps=apps, not_found=tuple(not_found), failures=failures)

    async def _detail_batch(
        self, http: httpx.AsyncClient, batch: list[str], version: str
    ) -> tuple[dict[str, Mapping[str, Any]], list[str], dict[str, str]]:
        last: RemoteError | None = None
        attempts = self.detail_retry.attempts
        for attempt in range(1, attempts + 1):
            delay = self.detail_retry.delay_before(attempt)
            if delay:
                await asyncio.sleep(delay)
            try:
                response = await send(
                    http,
                    SERVICE,
                    "POST",
                    self.detail_url,
                    timeout=self.request_timeout,
                    json_body={"app_ids": batch, "version": version},
                    params=self._params() or None,
                    auth=self._auth,
                )
                if response.status_code != 200:
                    said = _message_of(response)
                    raise RemoteError(
                        SERVICE,
                        self.detail_url,
                        f"HTTP {response.status_code}, details not ready{said}",
                        status=response.status_code,
                    )
                return self._read_detail_answer(response, batch)
            except RemoteError as error:
                retryable = (
                    error.status is None
                    or error.status == 200  # a 200 with a bad body: try again
                    or error.status == 202
                    or is_retryable_status(error.status)
                )
                if not retryable:
                    raise
                last = error
                if attempt < attempts:
                    log.info(
                        "detail batch attempt %d/%d failed: %s", attempt, attempts, error.reason
                    )
        assert last is not None
        raise RemoteError(
            SERVICE,
            self.detail_url,
            f"{last.reason} (after {attempts} attempts)",
            status=last.status,
        )

    def _read_detail_answer(
        self, response: httpx.Response, batch: list[str]
    ) -> tuple[dict[str, Mapping[str, Any]], list[str], dict[str, str]]:
        body = decode_object(response, SERVICE, "the detail response")
        raw_apps = expect_object(body.get("apps"), SERVICE, self.detail_url, "apps")
        raw_not_found = body.get("not_found") or []
        if not isinstance(raw_not_found, list) or not all(
            isinstance(i, str) for i in raw_not_found
        ):
            raise RemoteError(
                SERVICE,
                self.detail_url,
                "wrong shape: not_found must be an array of strings, "
                f"got {excerpt(str(raw_not_found))}",
                status=response.status_code,
            )
        requested = set(batch)
        unrequested = sorted(set(raw_apps) - requested)
        if unrequested:
            log.info("detail response has apps that were not asked for, ignored: %s", unrequested)
        apps: dict[str, Mapping[str, Any]] = {}
        failures: dict[str, str] = {}
        for app_id in batch:
            entry = raw_apps.get(app_id)
            if app_id in raw_apps and not isinstance(entry, dict):
                failures[app_id] = f"detail entry must be an object, got {json_type(entry)}"
            elif isinstance(entry, dict):
                apps[app_id] = entry
        not_found = [
            app_id for app_id in raw_not_found if app_id in requested and app_id not in apps
        ]
        for app_id in batch:
            if app_id not in apps and app_id not in failures and app_id not in not_found:
                failures[app_id] = (
                    "missing from the detail response (neither in apps nor not_found)"
                )
        return apps, not_found, failures

    # --- snapshot ---------------------------------------------------------------------------

    async def fetch_snapshot(
        self, version: str, *, endpoint_hash: str | None = None
    ) -> MarketSnapshot:
        """Hash, catalog and details, merged: what this source offers now.

        ``endpoint_hash`` is the hash the caller already has from the hash endpoint (e.g. from
        a probe); without it the hash endpoint is asked first, and its failure fails the fetch.
        """
        async with self._http() as http:
            if endpoint_hash is None:
                endpoint_hash = await self._hash(http, version, self.request_timeout, self.retry)
            catalog = await self._catalog(http, version)
            details = await self._details(http, catalog.detail_ids, version)
        apps, merge_failures = merge_catalog(catalog, details)
        if endpoint_hash != catalog.remote_hash:
            log.warning(
                "market source %s: the hash endpoint says %r but the catalog says %r",
                self.base_url,
                endpoint_hash,
                catalog.remote_hash,
            )
        return MarketSnapshot(
            source_url=self.base_url,
            apps=apps,
            extras=catalog.extras,
            remote_hash=catalog.remote_hash,
            catalog_version=catalog.catalog_version,
            endpoint_hash=endpoint_hash,
            last_updated=catalog.last_updated,
            rejected=catalog.rejected,
            detail_failures={**details.failures, **merge_failures},
            not_found=details.not_found,
        )


def merge_catalog(
    catalog: Catalog, details: DetailReport
) -> tuple[dict[str, Mapping[str, Any]], dict[str, str]]:
    """Each summary merged with its detail; a merge the domain refuses keeps the summary."""
    apps: dict[str, Mapping[str, Any]] = {}
    failures: dict[str, str] = {}
    for app_id, summary in catalog.apps.items():
        detail = details.apps.get(app_id)
        if detail is None:
            apps[app_id] = summary
            continue
        merged = merge_detail(summary, detail)
        try:
            key = Manifest.from_entry(merged).app_id
        except InvalidManifest as error:
            failures[app_id] = f"detail entry refused, summary kept: {error}"
            apps[app_id] = summary
            continue
        if key != app_id:
            failures[app_id] = f"detail entry has app key {key!r}, summary kept"
            apps[app_id] = summary
            continue
        apps[app_id] = merged
    return apps, failures


def _message_of(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    message = body.get("message") if isinstance(body, dict) else None
    return f": {excerpt(str(message))}" if message else ""
