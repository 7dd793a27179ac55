"""The notifier: committed events out as NATS notifications, at least once.

It reads the event log in order, as the projector does, but never past the projector's
position, so the views it reads for payloads already hold every event it announces, and no
notification ever leaves before its event is committed. Its position lives in its own table
(``market_ledger.projections.notifier_state``), advanced only after the server has the
notifications: if
NATS is down, nothing advances and the same notifications go out once NATS is back (a crash
between publishing and advancing sends them again; clients get each one at least once).

What it publishes on ``<NATS_SUBJECT_SYSTEM_MARKET_STATE>.<user>`` (reference D §5, C §3a.4):

* ``app_state_change`` for every ``StateObserved`` (the domain emits one only when something
  changed): ``{"app_state_latest": {"type": "app-state-latest", "version", "status": {...}},
  "app_info_latest": <the app's latest entry in that source> | null, "timestamp", "user",
  "app_name", "notify_type": "app_state_change", "source"}``;
* ``market_system_point`` / ``new_app_ready`` for a ``Rendered`` event that makes a version
  latest which was not the latest before (a new app, or a new version; a re-render of the
  same version says nothing): ``{"timestamp", "user", "notify_type": "market_system_point",
  "point": "new_app_ready", "extensions": {"app_name", "app_version", "source"},
  "extensions_obj": {"app_info": <the rendered entry>}}``;
* ``market_hash_changed`` for every registered user whose hash differs from the one last
  announced to them (or whom an operator marked dirty): ``{"notify_type":
  "market_hash_changed", "user", "hash", "timestamp"}``, sent after the notifications of
  the events that changed it. The front end refetches the catalog when it sees a new hash.

``timestamp`` is in unix seconds: the moment the ledger decided the event (the hash notice:
when it is sent). Notifications go to registered users only. The first run of a notifier
starts at the views' position and takes every user's current hash as announced, so adding
it to a running ledger does not announce the past again. With NATS off (no URL) the
position follows the views without publishing, so that turning NATS on later does not
replay months of notifications.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any, Protocol

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from market_ledger.adapters.config import Settings
from market_ledger.adapters.nats.connection import NatsConnection
from market_ledger.adapters.nats.publisher import NatsPublisher, Notification, PublishFailed
from market_ledger.domain import installation, listing, user
from market_ledger.domain.events import LedgerEvent
from market_ledger.domain.rendering import expand_rendered
from market_ledger.projections import notifier_state as ns
from market_ledger.projections.projector import Projector
from market_ledger.projections.rows import Row, loads
from market_ledger.projections.schema import ViewTables
from market_ledger.service.application import LedgerApplication

log = logging.getLogger(__name__)

DEFAULT_NAME = "notifications"
APP_STATE_CHANGE = "app_state_change"
MARKET_SYSTEM_POINT = "market_system_point"
NEW_APP_READY = "new_app_ready"
HASH_CHANGED = "market_hash_changed"
TOPICS = (
    *listing.Rendered.stored_topics(),
    installation.StateObserved.TOPIC,
    user.UserMarkedDirty.TOPIC,
)
#: how often a lasting publish failure is logged again
LOG_FAILURE_EVERY_SECONDS = 60.0


class Publisher(Protocol):
    async def publish(self, notifications: Sequence[Notification]) -> None:
        """Return once the notifications are out; raise PublishFailed otherwise."""


class NotifierLedger(Protocol):
    """What the notifier needs of the wired ledger."""

    application: LedgerApplication
    writer: Engine
    tables: ViewTables
    projector: Projector

    def read(self) -> AbstractContextManager[Connection]: ...


@attrs.frozen
class NotifyReport:
    """What one ``publish_pending`` did."""

    #: notifications published (hash notices included)
    published: int
    #: the notifier's position afterwards
    position: int
    #: why it stopped before reaching the views' position (NATS down), if it did
    error: str | None = None


@attrs.frozen
class _Prepared:
    notifications: list[Notification]
    upto: int
    forced: frozenset[str]


class Notifier:
    def __init__(
        self,
        ledger: NotifierLedger,
        settings: Settings,
        *,
        publisher: Publisher | None = None,
        connection: NatsConnection | None = None,
        name: str = DEFAULT_NAME,
        batch_size: int = 500,
        poll_interval: float = 0.5,
    ) -> None:
        """Without ``publisher`` it publishes through ``connection`` (shared with the
        intake; its owner closes it), else through its own connection to
        ``settings.nats_url``; with neither, NATS is off."""
        self.ledger = ledger
        self.settings = settings
        self.tables = ns.define_notifier_tables()
        self._own_connection: NatsConnection | None = None
        if publisher is None and (connection is not None or settings.nats_url):
            if connection is None:
                assert settings.nats_url is not None
                connection = self._own_connection = NatsConnection(
                    settings.nats_url, name="market-ledger-notifier"
                )
            publisher = NatsPublisher(connection, settings.subject_market_state)
        self.publisher = publisher
        self.name = name
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self._lock = asyncio.Lock()
        self._check_hashes = True
        self._forced: set[str] = set()
        self._last_failure_log = 0.0

    # --- running -------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Publish what the views have caught up with, every ``poll_interval``, until stop."""
        if self.publisher is None:
            log.info("NATS is off (no NATS_URL): notifications are not published")
        elif self._own_connection is not None:
            self._own_connection.start()
        try:
            while not stop.is_set():
                try:
                    await self.publish_pending()
                except Exception:  # the store, most likely: keep going, retry next round
                    log.exception("notifier round failed; trying again")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.poll_interval)
        finally:
            if self._own_connection is not None:
                await self._own_connection.close()

    async def publish_pending(self) -> NotifyReport:
        """Publish the notifications of events the views have applied and the notifier has
        not announced yet; returns early, position unchanged, when NATS is down."""
        async with self._lock:
            return await self._publish_pending()

    async def _publish_pending(self) -> NotifyReport:
        limit = await asyncio.to_thread(self.ledger.projector.position)
        position = await asyncio.to_thread(self._position, limit)
        published = 0
        try:
            while position < limit:
                prepared = await asyncio.to_thread(self._prepare, position, limit)
                await self._publish(prepared.notifications)
                if not await asyncio.to_thread(self._advance, position, prepared.upto):
                    log.info("another notifier advanced %r; reading its position", self.name)
                    position = await asyncio.to_thread(self._position, limit)
                    continue
                published += len(prepared.notifications)
                position = prepared.upto
                self._forced |= prepared.forced
                self._check_hashes = True
            if self._check_hashes:
                published += await self._announce_hashes()
        except PublishFailed as error:
            self._log_failure(error)
            return NotifyReport(published, position, str(error))
        return NotifyReport(published, position)

    async def _publish(self, notifications: list[Notification]) -> None:
        if self.publisher is not None and notifications:
            await self.publisher.publish(notifications)

    async def _announce_hashes(self) -> int:
        forced = set(self._forced)
        hashes = await asyncio.to_thread(self._unannounced, forced)
        now = int(time.time())
        notices = [
            Notification(
                u,
                HASH_CHANGED,
                {"notify_type": HASH_CHANGED, "user": u, "hash": h, "timestamp": now},
            )
            for u, h in hashes.items()
        ]
        await self._publish(notices)
        await asyncio.to_thread(self._record, hashes)
        self._forced -= forced
        self._check_hashes = False
        return len(notices)

    def _log_failure(self, error: PublishFailed) -> None:
        now = time.monotonic()
        if now - self._last_failure_log >= LOG_FAILURE_EVERY_SECONDS:
            self._last_failure_log = now
            log.warning("notifications wait for NATS (%s); they are sent once it is back", error)

    # --- state (worker threads) ---------------------------------------------------------------

    def _position(self, limit: int) -> int:
        with self.ledger.read() as conn:
            position = ns.read_notifier_position(conn, self.tables, self.name)
        if position is not None:
            return position
        with self.ledger.writer.begin() as conn:
            position = ns.read_notifier_position(conn, self.tables, self.name)
            if position is not None:  # another notifier started meanwhile
                return position
            ns.start_notifier(conn, self.tables, self.ledger.tables, self.name, limit)
        log.info("notifier %r starts at the views' position, %d", self.name, limit)
        return limit

    def _advance(self, expected: int, position: int) -> bool:
        with self.ledger.writer.begin() as conn:
            return ns.advance_notifier_position(
                conn, self.tables, self.name, expected=expected, position=position
            )

    def _unannounced(self, forced: set[str]) -> dict[str, str]:
        with self.ledger.read() as conn:
            return ns.unannounced_hashes(conn, self.tables, self.ledger.tables, forced)

    def _record(self, hashes: dict[str, str]) -> None:
        if hashes:
            with self.ledger.writer.begin() as conn:
                ns.record_announced(conn, self.tables, hashes)

    # --- notifications from events (worker threads) ----------------------------------------------

    def _prepare(self, position: int, limit: int) -> _Prepared:
        application = self.ledger.application
        found = application.recorder.select_notifications(
            start=position + 1, limit=self.batch_size, stop=limit, topics=TOPICS
        )
        upto = found[-1].id if len(found) == self.batch_size else limit
        events: list[tuple[int, LedgerEvent]] = [
            (n.id, application.mapper.to_domain_event(n))  # type: ignore[misc]
            for n in found
        ]
        with self.ledger.read() as conn:
            payloads = _Payloads(conn, self.ledger.tables, events)
            notifications = list(payloads.build())
        return _Prepared(notifications, upto, frozenset(payloads.forced))


class _Payloads:
    """Builds the notifications of a batch of events from the views."""

    def __init__(
        self,
        conn: Connection,
        tables: ViewTables,
        events: list[tuple[int, LedgerEvent]],
    ) -> None:
        self.conn = conn
        self.t = tables
        self.events = events
        self.forced: set[str] = set()
        self._entries: dict[tuple[str, str, str], dict[str, Any] | None] = {}

    def build(self) -> Iterator[Notification]:
        rendered = [e.originator_id.hex for _, e in self.events if isinstance(e, listing.Rendered)]
        listings = self._rows(self.t.listings, "listing_id", rendered)
        names = {r["user_name"] for r in listings.values()}
        names |= {e.user for _, e in self.events if isinstance(e, installation.StateObserved)}
        registered = self._registered(names)
        for position, event in self.events:
            if isinstance(event, user.UserMarkedDirty):
                self.forced.add(event.name)
            elif isinstance(event, installation.StateObserved):
                if event.user in registered:
                    yield self._app_state_change(event)
            elif isinstance(event, listing.Rendered):
                row = listings.get(event.originator_id.hex)
                if row is not None and row["user_name"] in registered:
                    notification = self._new_app_ready(position, event, row)
                    if notification is not None:
                        yield notification

    # --- payloads --------------------------------------------------------------------------------

    def _app_state_change(self, event: installation.StateObserved) -> Notification:
        entry = self._latest_entry(event.user, event.source, event.raw_app_name or event.name)
        status: dict[str, Any] = {
            "name": event.name,
            "rawAppName": event.raw_app_name,
            "title": event.title,
            "state": event.state,
            "updateTime": "",
            "statusTime": rfc3339(event.observed_at),
            "lastTransitionTime": "",
            "progress": event.progress,
            "opType": event.op_type,
            "entranceStatuses": [entrance_status(e) for e in event.entrances],
        }
        if event.shared_entrances:
            status["sharedEntrances"] = [dict(e) for e in event.shared_entrances]
        version = event.app_version or (str(entry.get("version") or "") if entry else "")
        payload = {
            "app_state_latest": {"type": "app-state-latest", "version": version, "status": status},
            "app_info_latest": entry,
            "timestamp": unix_seconds(event.timestamp),
            "user": event.user,
            "app_name": event.name,
            "notify_type": APP_STATE_CHANGE,
            "source": event.source,
        }
        compact = {**payload, "app_info_latest": None} if entry else None
        return Notification(event.user, APP_STATE_CHANGE, payload, compact)

    def _new_app_ready(
        self, position: int, event: listing.Rendered, row: Row
    ) -> Notification | None:
        if event.replaces == event.app_version:
            return None  # the same version rendered again (new content, same version)
        app_info = self._entry(row, event.rendered, event.digest, event.app_version)
        app_info["timestamp"] = unix_seconds(event.timestamp)
        payload = {
            "timestamp": unix_seconds(event.timestamp),
            "user": row["user_name"],
            "notify_type": MARKET_SYSTEM_POINT,
            "point": NEW_APP_READY,
            "extensions": {
                "app_name": row["name"],
                "app_version": event.app_version,
                "source": row["source"],
            },
            "extensions_obj": {"app_info": app_info},
        }
        compact = {k: v for k, v in payload.items() if k != "extensions_obj"}
        return Notification(row["user_name"], MARKET_SYSTEM_POINT, payload, compact)

    # --- reads -----------------------------------------------------------------------------------

    def _rows(self, table: sa.Table, key: str, keys: list[str]) -> dict[str, Row]:
        if not keys:
            return {}
        query = sa.select(table).where(table.c[key].in_(sorted(set(keys))))
        return {r[key]: dict(r) for r in self.conn.execute(query).mappings()}

    def _registered(self, names: set[str]) -> set[str]:
        if not names:
            return set()
        users = self.t.users
        query = sa.select(users.c.user_name).where(
            users.c.user_name.in_(sorted(names)), users.c.registered.is_(True)
        )
        return {str(name) for name in self.conn.execute(query).scalars()}

    def _latest_entry(self, user_name: str, source: str, name: str) -> dict[str, Any] | None:
        """The rendered entry of the app of that name (or app id) in ``source``, if any."""
        key = (user_name, source, name)
        if key not in self._entries:
            listings = self.t.listings
            rows = [
                dict(r)
                for r in self.conn.execute(
                    sa.select(listings).where(
                        listings.c.user_name == user_name,
                        listings.c.source == source,
                        listings.c.withdrawn.is_(False),
                        listings.c.latest_version.is_not(None),
                        sa.or_(listings.c.name == name, listings.c.app_id == name),
                    )
                ).mappings()
            ]
            rows.sort(key=lambda r: (r["app_id"] != name, r["app_id"]))
            row = rows[0] if rows else None
            self._entries[key] = (
                self._entry(row, row["rendered"], row["latest_digest"], row["latest_version"])
                if row is not None and row["rendered"] is not None
                else None
            )
        return self._entries[key]

    def _entry(self, row: Row, rendered: str, digest: str, version: str) -> dict[str, Any]:
        """A rendered entry in full: the manifest copies put back, the current labels."""
        entry = expand_rendered(loads(rendered) or {}, self._manifest(digest))
        labels = loads(row["labels"]) or []
        for holder in (entry.get("raw_data"), (entry.get("app_info") or {}).get("app_entry")):
            if isinstance(holder, dict):
                holder["appLabels"] = list(labels)
        entry.setdefault("type", "app-info-latest")
        entry["version"] = version
        return entry

    def _manifest(self, digest: str) -> dict[str, Any]:
        """The catalog entry (without its labels) an offer with ``digest`` named."""
        manifests = self.t.manifests
        content = self.conn.execute(
            sa.select(manifests.c.content).where(manifests.c.digest == digest)
        ).scalar()
        return dict(loads(content) or {})


# --- formats ----------------------------------------------------------------------------------


def unix_seconds(moment: datetime) -> int:
    return int(moment.timestamp())


def rfc3339(moment: datetime) -> str:
    """RFC 3339 in UTC with trailing zeros of the fraction trimmed (as Go writes times)."""
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def entrance_status(entrance: dict[str, Any]) -> dict[str, Any]:
    """An entrance in the reference's shape; its id is the first label of its URL when the
    message gave none."""
    url = str(entrance.get("url") or "")
    return {
        "id": str(entrance.get("id") or (url.split(".", 1)[0] if url else "")),
        "name": str(entrance.get("name") or ""),
        "state": str(entrance.get("state") or ""),
        "statusTime": str(entrance.get("statusTime") or ""),
        "reason": str(entrance.get("reason") or ""),
        "url": url,
        "invisible": bool(entrance.get("invisible", False)),
    }
