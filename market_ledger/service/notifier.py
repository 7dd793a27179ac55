"""The notifier: committed events out as notifications, at least once.

It reads the event log in order, as the projector does, but never past the projector's
position, so the views it reads already hold every event it announces, and no notification
ever leaves before its event is committed. Its position lives in its own table
(``market_ledger.projections.notifier_state``), advanced only after the publisher has the
notifications: while the publisher fails nothing advances and the same notifications go out
once it is back (a crash between publishing and advancing sends them again; clients get each
one at least once).

This module decides *what* is announced, as typed notices; the wire format is the
publisher's (NATS: ``market_ledger.adapters.nats.notifications``):

* :class:`AppStateChanged` for every ``StateObserved`` (the domain emits one only when
  something changed), with the app's latest entry in that source;
* :class:`NewAppReady` for a ``Rendered`` event that makes a version latest which was not the
  latest before (a new app, or a new version; a re-render of the same version says nothing);
* :class:`HashChanged` for every registered user whose hash differs from the one last
  announced to them (or whom an operator marked dirty), after the notices of the events that
  changed it. The front end refetches the catalog when it sees a new hash;
* the task notices of ``market_ledger.service.task_notices`` for the steps of a task, to the
  user who asked for it (the task's row in the views names them; a task without a row is
  logged and only its notice skipped).

The other notices go to registered users only. The first run of a notifier starts at the views'
position and takes every user's current hash as announced, so adding it to a running ledger
does not announce the past again. Without a publisher (NATS off) the position follows the
views without publishing, so that turning NATS on later does not replay months of notices.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any, Protocol

import attrs
from sqlalchemy.engine import Connection, Engine

from market_ledger.domain import installation, listing, task_events, user
from market_ledger.projections import notifier_state as ns
from market_ledger.projections.log_reader import Decoded, LogReader
from market_ledger.projections.market_shapes import InstalledState, state_entry
from market_ledger.projections.notification_reads import NotificationReads
from market_ledger.projections.projector import Projector
from market_ledger.projections.role_leases import Lease, check_held
from market_ledger.projections.rows import Row
from market_ledger.projections.schema import ViewTables
from market_ledger.service.application import LedgerApplication
from market_ledger.service.task_notices import TOPICS as TASK_TOPICS
from market_ledger.service.task_notices import TaskFacts, TaskNotice, announced, task_notices

log = logging.getLogger(__name__)

DEFAULT_NAME = "notifications"
TOPICS = (
    *listing.Rendered.stored_topics(),
    installation.StateObserved.TOPIC,
    user.UserMarkedDirty.TOPIC,
    *TASK_TOPICS,
)
#: how often a lasting publish failure is logged again
LOG_FAILURE_EVERY_SECONDS = 60.0


# --- what is announced -----------------------------------------------------------------------


@attrs.frozen
class AppStateChanged:
    """An installed app's state changed (``state``: in the ``app_state_latest`` shape)."""

    user: str
    source: str
    app_name: str
    state: Mapping[str, Any]
    #: the app's latest entry in that source, in full, if it has one
    app_info: Mapping[str, Any] | None
    at: datetime


@attrs.frozen
class NewAppReady:
    """A version became the latest of an app (``app_info``: the rendered entry in full)."""

    user: str
    source: str
    app_name: str
    app_version: str
    app_info: Mapping[str, Any]
    at: datetime


@attrs.frozen
class HashChanged:
    """What the user sees changed: a client with another hash refetches the catalog."""

    user: str
    hash: str
    at: datetime


Notice = AppStateChanged | NewAppReady | HashChanged | TaskNotice


class PublishFailed(RuntimeError):
    """The notices may not have reached their readers; publish them again later."""


class Publisher(Protocol):
    async def publish(self, notices: Sequence[Notice]) -> None:
        """Return once the notices are out; raise PublishFailed otherwise."""


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

    #: notices published (hash notices included)
    published: int
    #: the notifier's position afterwards
    position: int
    #: why it stopped before reaching the views' position (NATS down), if it did
    error: str | None = None


@attrs.frozen
class _Prepared:
    notices: list[Notice]
    upto: int
    forced: frozenset[str]


class Notifier:
    def __init__(
        self,
        ledger: NotifierLedger,
        publisher: Publisher | None,
        *,
        name: str = DEFAULT_NAME,
        batch_size: int = 500,
        poll_interval: float = 0.5,
        lease: Lease | None = None,
    ) -> None:
        """``publisher`` None: NATS is off, the position follows the views. ``lease``: the
        notifier role's, checked where the position and the announced hashes are written."""
        self.ledger = ledger
        self.tables = ns.define_notifier_tables()
        self.publisher = publisher
        self.reader = LogReader(ledger.application)
        self.name = name
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self._lock = asyncio.Lock()
        self._check_hashes = True
        self._forced: set[str] = set()
        self._last_failure_log = 0.0
        self.lease = lease

    # --- running -------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Publish what the views have caught up with, every ``poll_interval``, until stop."""
        if self.publisher is None:
            log.info("NATS is off (no NATS_URL): notifications are not published")
        while not stop.is_set():
            try:
                await self.publish_pending()
            except Exception:  # the store, most likely: keep going, retry next round
                log.exception("notifier round failed; trying again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.poll_interval)

    async def publish_pending(self) -> NotifyReport:
        """Publish the notices of events the views have applied and the notifier has not
        announced yet; returns early, position unchanged, when the publisher fails."""
        async with self._lock:
            return await self._publish_pending()

    async def _publish_pending(self) -> NotifyReport:
        limit = await asyncio.to_thread(self.ledger.projector.position)
        position = await asyncio.to_thread(self._position, limit)
        published = 0
        try:
            while position < limit:
                prepared = await asyncio.to_thread(self._prepare, position, limit)
                await self._publish(prepared.notices)
                if not await asyncio.to_thread(self._advance, position, prepared.upto):
                    log.info("another notifier advanced %r; reading its position", self.name)
                    position = await asyncio.to_thread(self._position, limit)
                    continue
                published += len(prepared.notices)
                position = prepared.upto
                self._forced |= prepared.forced
                self._check_hashes = True
            if self._check_hashes:
                published += await self._announce_hashes()
        except PublishFailed as error:
            self._log_failure(error)
            return NotifyReport(published, position, str(error))
        return NotifyReport(published, position)

    async def _publish(self, notices: Sequence[Notice]) -> None:
        if self.publisher is not None and notices:
            await self.publisher.publish(notices)

    async def _announce_hashes(self) -> int:
        forced = set(self._forced)
        hashes = await asyncio.to_thread(self._unannounced, forced)
        now = datetime.now(UTC)
        notices = [HashChanged(u, h, now) for u, h in hashes.items()]
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
            check_held(conn, self.lease)
            ns.start_notifier(conn, self.tables, self.ledger.tables, self.name, limit)
        log.info("notifier %r starts at the views' position, %d", self.name, limit)
        return limit

    def _advance(self, expected: int, position: int) -> bool:
        with self.ledger.writer.begin() as conn:
            check_held(conn, self.lease)
            return ns.advance_notifier_position(
                conn, self.tables, self.name, expected=expected, position=position
            )

    def _unannounced(self, forced: set[str]) -> dict[str, str]:
        with self.ledger.read() as conn:
            return ns.unannounced_hashes(conn, self.tables, self.ledger.tables, forced)

    def _record(self, hashes: dict[str, str]) -> None:
        if hashes:
            with self.ledger.writer.begin() as conn:
                check_held(conn, self.lease)
                ns.record_announced(conn, self.tables, hashes)

    # --- notices from events (worker threads) --------------------------------------------------

    def _prepare(self, position: int, limit: int) -> _Prepared:
        events = self.reader.read(position, limit, self.batch_size, topics=TOPICS)
        upto = events[-1][0] if len(events) == self.batch_size else limit
        with self.ledger.read() as conn:
            batch = _Batch(NotificationReads(conn, self.ledger.tables), events)
            notices = list(batch.notices())
        return _Prepared(notices, upto, frozenset(batch.forced))


def newly_ready(event: listing.Rendered, replaced: str | None = None) -> bool:
    """Whether a render makes a version latest that was not the latest before: a new app or
    a new version (a re-render of the same version, with new content, says nothing). The
    event itself names the version it replaces; for one that names none, ``replaced`` is
    what the listing's history says (a render stored before events named it, read as
    replacing nothing, may replace a version all the same)."""
    replaces = event.replaces if event.replaces is not None else replaced
    return replaces != event.app_version


class _Batch:
    """The notices of a batch of events."""

    def __init__(self, reads: NotificationReads, events: Decoded) -> None:
        self.reads = reads
        self.events = events
        self.forced: set[str] = set()

    def notices(self) -> Iterator[Notice]:
        rendered = [e.originator_id.hex for _, e in self.events if isinstance(e, listing.Rendered)]
        listings = self.reads.listings(rendered)
        names = {r["user_name"] for r in listings.values()}
        names |= {e.user for _, e in self.events if isinstance(e, installation.StateObserved)}
        registered = self.reads.registered(names)
        tasks = self.reads.tasks(
            [e.task_id for _, e in self.events if isinstance(e, task_events.TaskEvent)]
        )
        replaced = self.reads.rendered_before(
            [
                (position, listings[e.originator_id.hex])
                for position, e in self.events
                if isinstance(e, listing.Rendered)
                and e.replaces is None
                and e.originator_id.hex in listings
                and listings[e.originator_id.hex]["user_name"] in registered
            ]
        )
        for position, event in self.events:
            if isinstance(event, task_events.TaskEvent):
                if announced(event):
                    yield from self._task_notices(position, event, tasks.get(event.task_id))
            elif isinstance(event, user.UserMarkedDirty):
                self.forced.add(event.name)
            elif isinstance(event, installation.StateObserved):
                if event.user in registered:
                    yield self._app_state_changed(event)
            elif isinstance(event, listing.Rendered):
                row = listings.get(event.originator_id.hex)
                if (
                    row is not None
                    and row["user_name"] in registered
                    and newly_ready(event, replaced.get(position))
                ):
                    yield self._new_app_ready(event, row)

    def _task_notices(
        self, position: int, event: task_events.TaskEvent, row: Row | None
    ) -> list[TaskNotice]:
        if row is None:  # the views hold every task they have events of: not expected
            log.warning(
                "task %s has no row in the tasks view: the notices of its %s (log position %d) "
                "are not sent",
                event.task_id,
                type(event).__name__,
                position,
            )
            return []
        return task_notices(event, TaskFacts.of_row(row))

    def _app_state_changed(self, event: installation.StateObserved) -> AppStateChanged:
        installed = InstalledState.of_event(event)
        entry, version = self.reads.latest_entry(event.user, event.source, installed.listed_as)
        return AppStateChanged(
            user=event.user,
            source=event.source,
            app_name=event.name,
            state=state_entry(installed, version),
            app_info=entry,
            at=event.timestamp,
        )

    def _new_app_ready(self, event: listing.Rendered, row: Row) -> NewAppReady:
        return NewAppReady(
            user=row["user_name"],
            source=row["source"],
            app_name=row["name"],
            app_version=event.app_version,
            app_info=self.reads.rendered_entry(row, event),
            at=event.timestamp,
        )
