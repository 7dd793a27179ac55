"""What a task request looks up in the views before it is recorded.

An install or upgrade names an app of the user's catalog at one version; a clone needs the
original app installed; an upgrade of a clone finds the original through the installation.
Each lookup answers the values the app-service call needs, or raises :class:`NotFound` with
the message the market's clients know.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from market_ledger.projections.market_reads import find_entries
from market_ledger.projections.schema import ViewTables


class NotFound(LookupError):
    """What a request needs is not in the views; ``message`` is the client's."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@attrs.frozen
class CatalogApp:
    """An app of a user's catalog, as an install or upgrade sends it."""

    name: str
    version: str
    source: str
    source_type: str
    cfg_type: str
    #: (image name, total size), by image name
    images: tuple[tuple[str, int], ...]


@attrs.frozen
class InstalledApp:
    name: str
    source: str
    version: str
    state: str
    raw_app_name: str


def user_exists(conn: Connection, t: ViewTables, user: str) -> None:
    query = sa.select(t.users.c.user_name).where(
        t.users.c.user_name == user, t.users.c.registered.is_(True)
    )
    if conn.execute(query).scalar() is None:
        raise NotFound("User data not found")


def _source_type(conn: Connection, t: ViewTables, source: str) -> str:
    query = sa.select(t.sources.c.source_type).where(
        t.sources.c.source_id == source, t.sources.c.removed.is_(False)
    )
    found = conn.execute(query).scalar()
    if found is None:
        raise NotFound("Source data not found")
    return str(found)


def _images(entry: Mapping[str, Any]) -> tuple[tuple[str, int], ...]:
    analysis = (entry.get("app_info") or {}).get("image_analysis") or {}
    images = analysis.get("images") if isinstance(analysis, dict) else None
    if not isinstance(images, dict):
        return ()
    sizes = []
    for name, info in sorted(images.items()):
        size = info.get("total_size") if isinstance(info, dict) else None
        sizes.append((str(name), size if isinstance(size, int) and size >= 0 else 0))
    return tuple(sizes)


def catalog_app(
    conn: Connection, t: ViewTables, user: str, source: str, app_name: str, version: str | None
) -> CatalogApp:
    """``app_name`` of ``user``'s catalog in ``source``, at ``version`` (None: any version)."""
    user_exists(conn, t, user)
    source_type = _source_type(conn, t, source)
    found, _ = find_entries(conn, t, user, [(app_name, source)])
    entry = found[0] if found else None
    raw = (entry or {}).get("raw_data") or {}
    if entry is None or raw.get("name", app_name) != app_name:
        raise NotFound("App not found")
    shown_version = str(raw.get("version") or entry.get("version") or "")
    if version is not None and shown_version != version:
        raise NotFound("App not found")
    return CatalogApp(
        name=app_name,
        version=shown_version,
        source=source,
        source_type=source_type,
        cfg_type=str(raw.get("cfgType") or "app"),
        images=_images(entry),
    )


def installed_app(conn: Connection, t: ViewTables, user: str, name: str) -> InstalledApp | None:
    """``user``'s installation of ``name``, unless it is removed or uninstalled."""
    i = t.installations
    row = (
        conn.execute(
            sa.select(i).where(i.c.user_name == user, i.c.name == name, i.c.removed.is_(False))
        )
        .mappings()
        .first()
    )
    if row is None or row["state"] == "uninstalled":
        return None
    return InstalledApp(
        name=row["name"],
        source=row["source"],
        version=row["app_version"],
        state=row["state"],
        raw_app_name=row["raw_app_name"],
    )


def source_type_of(conn: Connection, t: ViewTables, source: str) -> str:
    """The type of market source ``source`` (NotFound: ``Source data not found``)."""
    return _source_type(conn, t, source)


def is_market_source(conn: Connection, t: ViewTables, source: str) -> bool:
    """Whether ``source`` is the id of a configured market source."""
    query = sa.select(t.sources.c.source_id).where(t.sources.c.source_id == source)
    return conn.execute(query).scalar() is not None
