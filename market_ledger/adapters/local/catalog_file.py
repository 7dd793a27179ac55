"""A market source read from a file: ``file:///path``.

The path is either a JSON file in the shape of the remote catalog (what
``GET /api/v1/appstore/info`` answers: ``{"version", "hash", "last_updated", "data": {"apps":
{...}, "topics", ...}}``), or a folder holding such a file named ``catalog.json``. There are no
details to fetch: the entries are taken as complete.

The source's hash is the sha256 of the file's bytes, so any edit is a change; a ``hash`` field
in the file is ignored. The same error rules as for a remote apply: a missing, unreadable,
non-JSON, wrongly shaped or empty catalog raises :class:`RemoteError`, never gives an empty
catalog.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from pathlib import Path
from urllib.parse import unquote, urlsplit

import attrs

from market_ledger.adapters.market.catalog import Catalog, parse_catalog_document
from market_ledger.adapters.remote.client import excerpt
from market_ledger.service.ports import RemoteError
from market_ledger.service.remote_values import MarketSnapshot

log = logging.getLogger(__name__)

SERVICE = "local catalog"
FOLDER_CATALOG = "catalog.json"


def path_of_file_url(url: str) -> Path:
    """The local path of a ``file://`` URL (``file:///abs/path`` or ``file://localhost/...``)."""
    parts = urlsplit(url.strip())
    if parts.scheme != "file":
        raise ValueError(f"not a file:// URL: {url!r}")
    if parts.netloc not in ("", "localhost"):
        raise ValueError(f"a file:// URL must name a local path, got host {parts.netloc!r}")
    path = unquote(parts.path)
    if not path or path == "/":
        raise ValueError(f"the file:// URL {url!r} names no catalog file or folder")
    return Path(path)


@attrs.frozen
class _Read:
    content: bytes
    path: Path


class LocalCatalogSource:
    """A catalog file on disk, read on every call (it is small, and edits show at once).

    ``version`` arguments exist to match the remote client and are ignored.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.path = path_of_file_url(url)

    def _catalog_file(self) -> Path:
        if self.path.is_dir():
            return self.path / FOLDER_CATALOG
        return self.path

    def _read(self) -> _Read:
        path = self._catalog_file()
        try:
            content = path.read_bytes()
        except FileNotFoundError as error:
            raise RemoteError(SERVICE, self.url, f"no catalog file at {path}") from error
        except OSError as error:
            raise RemoteError(SERVICE, self.url, f"cannot read {path}: {error}") from error
        if not content.strip():
            raise RemoteError(SERVICE, self.url, f"{path} is empty")
        return _Read(content=content, path=path)

    async def _read_async(self) -> _Read:
        return await asyncio.to_thread(self._read)

    async def probe_hash(self, version: str = "") -> str | None:
        """The file's digest; ``None`` (logged at debug) when it cannot be read."""
        try:
            read = await self._read_async()
        except RemoteError as error:
            log.debug("local catalog probe failed: %s", error)
            return None
        return _digest(read.content)

    async def fetch_hash(self, version: str = "") -> str:
        return _digest((await self._read_async()).content)

    async def fetch_catalog(self, version: str = "") -> Catalog:
        read = await self._read_async()
        return self._parse(read)

    def _parse(self, read: _Read) -> Catalog:
        try:
            document = json.loads(read.content)
        except (ValueError, UnicodeDecodeError) as error:
            raise RemoteError(
                SERVICE, self.url, f"{read.path} is not JSON: {excerpt(read.content)}"
            ) from error
        catalog = parse_catalog_document(document, SERVICE, self.url)
        return attrs.evolve(catalog, remote_hash=_digest(read.content))

    async def fetch_snapshot(self, version: str = "") -> MarketSnapshot:
        """The catalog as a snapshot; hash and endpoint hash are both the file's digest."""
        read = await self._read_async()
        catalog = self._parse(read)
        return MarketSnapshot(
            source_url=self.url,
            apps=catalog.apps,
            extras=catalog.extras,
            remote_hash=catalog.remote_hash,
            catalog_version=catalog.catalog_version,
            endpoint_hash=catalog.remote_hash,
            last_updated=catalog.last_updated,
            rejected=catalog.rejected,
        )


def _digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()
