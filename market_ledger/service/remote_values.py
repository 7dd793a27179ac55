"""The values the ports answer with: a market's snapshot, what is installed, chart-repo's feed.

They are plain, validated data: the adapters build them from what the remote systems send,
and the service reads them without knowing which adapter did.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from market_ledger.domain.manifest import Manifest

# --- a market source ----------------------------------------------------------------------------


@attrs.frozen
class MarketSnapshot:
    """What a source offers now: the apps (summaries merged with details) and the extras.

    ``remote_hash`` is the catalog's own ``hash``, the one to store. ``endpoint_hash`` is what
    the hash endpoint said (``None`` when not asked); when the two differ the catalog is still
    good, but a probe will keep seeing a change: ``hash_agrees`` lets the caller decide.
    Apps whose detail could not be fetched keep their summary and are listed in
    ``detail_failures``; ``complete`` is false then, and a caller may choose not to commit the
    hash so that the next cycle fetches again.
    """

    source_url: str
    apps: Mapping[str, Mapping[str, Any]]
    extras: Mapping[str, Any]
    remote_hash: str
    catalog_version: str
    endpoint_hash: str | None = None
    last_updated: datetime | None = None
    rejected: Mapping[str, str] = attrs.field(factory=dict)
    detail_failures: Mapping[str, str] = attrs.field(factory=dict)
    not_found: tuple[str, ...] = ()

    @property
    def hash_agrees(self) -> bool:
        return self.endpoint_hash is None or self.endpoint_hash == self.remote_hash

    @property
    def complete(self) -> bool:
        return not self.detail_failures

    @property
    def app_count(self) -> int:
        return len(self.apps)

    def manifests(self) -> dict[str, Manifest]:
        """The apps as domain manifests (every entry here was validated already)."""
        return {app_id: Manifest.from_entry(entry) for app_id, entry in self.apps.items()}


# --- app-service ----------------------------------------------------------------------------------


@attrs.frozen
class Entrance:
    name: str
    url: str = ""
    invisible: bool = False
    #: the whole entrance object as app-service sent it (host, port, authLevel, ...)
    raw: Mapping[str, Any] = attrs.field(factory=dict, eq=False, repr=False)


@attrs.frozen
class EntranceStatus:
    name: str
    state: str = ""
    status_time: datetime | None = None
    reason: str = ""
    url: str = ""


@attrs.frozen
class InstalledApp:
    """One installed app (or middleware) of one owner, as app-service sees it."""

    owner: str
    name: str
    appid: str
    source: str
    title: str
    state: str
    update_time: datetime | None = None
    status_time: datetime | None = None
    last_transition_time: datetime | None = None
    icon: str = ""
    namespace: str = ""
    entrances: tuple[Entrance, ...] = ()
    entrance_statuses: tuple[EntranceStatus, ...] = ()
    shared_entrances: tuple[Mapping[str, Any], ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        return (self.owner, self.name)


@attrs.frozen
class InstalledApps:
    """The answer of ``all/apps`` (or of the middlewares); an empty one is kept distinct."""

    apps: tuple[InstalledApp, ...]

    @property
    def empty(self) -> bool:
        return not self.apps

    def __len__(self) -> int:
        return len(self.apps)


# --- chart-repo's state-changes feed ----------------------------------------------------------


@attrs.frozen
class AppChangeData:
    source: str
    app_name: str
    user_id: str


@attrs.frozen
class ImageChangeData:
    image_name: str


@attrs.frozen
class StateChange:
    """One change of the feed. Types other than the two known ones are passed on as they are."""

    id: int
    type: str
    timestamp: datetime | None = None
    app_data: AppChangeData | None = None
    image_data: ImageChangeData | None = None


@attrs.frozen
class SkippedChange:
    """A change that could not be read; ``id`` is ``None`` when even that was unreadable."""

    id: int | None
    reason: str
    raw: Any = attrs.field(eq=False, repr=False, default=None)


@attrs.frozen
class StateChangePage:
    """One page of the feed, changes in ascending id order, unreadable ones set apart."""

    after_id: int
    limit: int
    count: int
    total_available: int
    changes: tuple[StateChange, ...] = ()
    skipped: tuple[SkippedChange, ...] = ()

    @property
    def highest_id(self) -> int | None:
        """The highest id seen on this page, readable or not (``None`` when there is none)."""
        ids = [change.id for change in self.changes]
        ids += [skip.id for skip in self.skipped if skip.id is not None]
        return max(ids, default=None)

    @property
    def may_have_more(self) -> bool:
        """A full page: ask again after its highest id."""
        return self.count >= self.limit > 0
