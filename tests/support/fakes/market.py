"""FakeMarket: a remote market source speaking the protocol of docs/protocols.md#market-source.

It serves a mutable catalog (``apps`` keyed by catalog key, plus ``extras``: topics,
topic_lists, recommends, pages, tags, tops, latest), details (the catalog entry with
``details[app_id]`` laid over it), and a hash that follows the content unless pinned. Faults
per endpoint (``"hash"``, ``"catalog"``, ``"detail"``) come from the base class; a few
market-specific ones are here: a hash endpoint that disagrees, apps the detail endpoint does
not know, and detail batches that fail the first N times for a given app.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from market_ledger.domain.canonical import digest_of
from tests.fixtures import CATALOG_TIMELINE, fixture
from tests.support.fakes.http_fake import FakeHttpServer, RecordedRequest, Reply

TIMELINE = fixture(CATALOG_TIMELINE)
HASH_PATH = "/api/v1/appstore/hash"
CATALOG_PATH = "/api/v1/appstore/info"
DETAIL_PATH = "/api/v1/applications/info"
ENDPOINTS = {HASH_PATH: "hash", CATALOG_PATH: "catalog", DETAIL_PATH: "detail"}
EMPTY_EXTRAS: dict[str, Any] = {
    "recommends": {},
    "pages": {},
    "topics": {},
    "topic_lists": {},
    "tags": {},
    "tops": [],
    "latest": [],
}


def load_timeline(path: Path = TIMELINE) -> list[dict[str, Any]]:
    """The real catalog history: one change set per line."""
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def iter_timeline(path: Path = TIMELINE) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield json.loads(line)


class FakeMarket(FakeHttpServer):
    def __init__(
        self,
        apps: Mapping[str, Mapping[str, Any]] | None = None,
        extras: Mapping[str, Any] | None = None,
        *,
        version: str = "1.12.3",
    ) -> None:
        super().__init__()
        self.apps: dict[str, dict[str, Any]] = {k: dict(v) for k, v in (apps or {}).items()}
        self.extras: dict[str, Any] = {**copy.deepcopy(EMPTY_EXTRAS), **(extras or {})}
        #: detail-only fields per app id, laid over the catalog entry by the detail endpoint
        self.details: dict[str, dict[str, Any]] = {}
        self.catalog_version = version
        self.last_updated = "2025-11-20T08:15:30Z"
        #: pin the catalog's hash (None: a digest of the content)
        self.catalog_hash: str | None = None
        #: make the hash endpoint disagree with the catalog (None: it agrees)
        self.hash_override: str | None = None
        #: ids the detail endpoint answers as not_found
        self.not_found: set[str] = set()
        self._failing_details: dict[str, int] = {}

    @classmethod
    def from_timeline(cls, up_to_seq: int, path: Path = TIMELINE) -> FakeMarket:
        """A market holding the real catalog as it was after change set ``up_to_seq``."""
        market = cls()
        for change_set in iter_timeline(path):
            if change_set["seq"] > up_to_seq:
                break
            market.apply_change_set(change_set)
        return market

    # --- what a test does -------------------------------------------------------------------

    def apply_change_set(self, change_set: Mapping[str, Any]) -> None:
        """Apply one timeline line: upsert its entries, remove its removed apps."""
        with self._lock:
            for key, entry in change_set.get("upserts", {}).items():
                self.apps[key] = copy.deepcopy(dict(entry))
            for key in change_set.get("removed", []):
                self.apps.pop(key, None)

    def fail_details_for(self, app_id: str, times: int) -> None:
        """Detail batches holding ``app_id`` answer 500 for the next ``times`` requests."""
        with self._lock:
            self._failing_details[app_id] = times

    def current_hash(self) -> str:
        with self._lock:
            return self._hash()

    def catalog_document(self) -> dict[str, Any]:
        with self._lock:
            return self._document()

    def _hash(self) -> str:
        if self.catalog_hash is not None:
            return self.catalog_hash
        content = {"apps": self.apps, "details": self.details, "extras": self.extras}
        return digest_of(content)[:32]

    def _document(self) -> dict[str, Any]:
        return copy.deepcopy(
            {
                "version": self.catalog_version,
                "hash": self._hash(),
                "last_updated": self.last_updated,
                "stats": {"total_apps": len(self.apps)},
                "data": {"apps": self.apps, **self.extras},
            }
        )

    # --- the protocol -----------------------------------------------------------------------

    def endpoint_of(self, path: str) -> str:
        return ENDPOINTS.get(path, path)

    def handle(self, request: RecordedRequest) -> Reply:
        endpoint = self.endpoint_of(request.path)
        if endpoint == "hash" and request.method == "GET":
            with self._lock:
                value = self.hash_override if self.hash_override is not None else self._hash()
            return Reply.json(
                {"hash": value, "last_updated": self.last_updated, "version": self.catalog_version}
            )
        if endpoint == "catalog" and request.method == "GET":
            with self._lock:
                return Reply.json(self._document())
        if endpoint == "detail" and request.method == "POST":
            return self._details(request)
        return Reply.json({"message": f"no route {request.method} {request.path}"}, status=404)

    def _details(self, request: RecordedRequest) -> Reply:
        body = request.json()
        app_ids = [str(i) for i in body.get("app_ids", [])]
        with self._lock:
            failing = [i for i in app_ids if self._failing_details.get(i, 0) > 0]
            if failing:
                for app_id in failing:
                    self._failing_details[app_id] -= 1
                return Reply.json({"message": f"detail store down for {failing}"}, status=500)
            apps: dict[str, Any] = {}
            not_found: list[str] = []
            for app_id in app_ids:
                if app_id in self.apps and app_id not in self.not_found:
                    apps[app_id] = {**self.apps[app_id], **self.details.get(app_id, {})}
                else:
                    not_found.append(app_id)
            return Reply.json(
                copy.deepcopy(
                    {"apps": apps, "version": body.get("version"), "not_found": not_found}
                )
            )
