"""Time travel: a user's view rows as they were at an earlier position of the log.

The rows are rebuilt in memory by applying the events up to that position, read through the
one log reader, with the very row functions the projector uses
(:mod:`market_ledger.projections.rows`), and the hash is computed from them by the same
function, so a catalog built from them is exactly what the views held when the projector stood
at that position. They start from the user's rows at the nearest checkpoint before it
(:mod:`market_ledger.projections.checkpoints`), so at most one interval of the log is read;
without one, from position 0.

Only the streams that matter are decoded: the user's own stream, every market source, and the
user's listings and installations. Their ids are read from the live views, which never delete
a row, so every listing or installation that existed at an earlier position has one; events
after the views' position are decoded and kept when they concern the user.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import attrs
import sqlalchemy as sa
from eventsourcing.persistence import Notification
from sqlalchemy.engine import Connection

from market_ledger.domain import identity, installation, listing, market_source, user
from market_ledger.domain.events import EVENT_CLASSES, LedgerEvent
from market_ledger.projections.checkpoints import Checkpoint, nearest_checkpoint
from market_ledger.projections.log_reader import EventStore, LogReader
from market_ledger.projections.projector import read_position
from market_ledger.projections.rows import Row, installation_row, listing_row, source_row, user_row
from market_ledger.projections.schema import ViewTables
from market_ledger.projections.user_hash import user_hash

#: notifications read from the log per query
PAGE = 2000
_SOURCE_TOPICS = "market_source."
_USER_STREAM_TOPICS = ("listing.", "installation.")
#: the topics that change a user's rows (manifest contents and feed cursors do not: they are
#: not even read from the log)
_REPLAYED_TOPICS = tuple(
    sorted(
        topic
        for topic in EVENT_CLASSES
        if topic.startswith((*_USER_STREAM_TOPICS, _SOURCE_TOPICS, "user."))
    )
)


@attrs.frozen
class KnownStreams:
    """The user's listing and installation streams the views knew of at ``position``."""

    position: int
    ids: frozenset[UUID]


@attrs.frozen
class ReplayedRows:
    """The rows of one user at ``position``; ``user`` is None if never registered by then."""

    position: int
    user: Row | None
    listings: list[Row]
    installations: list[Row]
    sources: list[Row]

    @property
    def registered(self) -> bool:
        return self.user is not None and bool(self.user["registered"])

    @property
    def hash(self) -> str:
        """The user's hash at ``position``, computed as the projector computes it."""
        return user_hash(self.listings, self.installations, self.sources)


def known_streams(conn: Connection, tables: ViewTables, user_name: str) -> KnownStreams:
    """The user's streams in the views; the position is read first, so the ids cover it."""
    position = read_position(conn, tables)
    t = tables
    listing_ids = conn.execute(
        sa.select(t.listings.c.listing_id).where(t.listings.c.user_name == user_name)
    ).scalars()
    installation_ids = conn.execute(
        sa.select(t.installations.c.installation_id).where(t.installations.c.user_name == user_name)
    ).scalars()
    ids = frozenset(UUID(hex=value) for value in [*listing_ids, *installation_ids])
    return KnownStreams(position=position, ids=ids)


def checkpoint_for(
    conn: Connection, tables: ViewTables, user_name: str, position: int, known: KnownStreams
) -> Checkpoint | None:
    """The user's rows at the nearest checkpoint at or before ``position`` that the views had
    passed when ``known`` was read (``conn`` reads the views as ``known`` was read)."""
    return nearest_checkpoint(conn, tables, user_name, position, known.position)


def replay_user(
    application: EventStore,
    user_name: str,
    position: int,
    known: KnownStreams,
    start: Checkpoint | None = None,
) -> ReplayedRows:
    """Apply the log up to ``position`` (inclusive) to the user's rows at ``start`` (a
    checkpoint at or before it), or, without one, to fresh in-memory rows."""
    if start is not None and start.position > position:
        raise ValueError(f"checkpoint {start.position} is after position {position}")
    reader = LogReader(application)
    replay = _Replay(reader, user_name, known)
    after = 0
    if start is not None:
        replay.start_from(start)
        after = start.position
    while after < position:
        page = reader.notifications(after, position, PAGE, topics=_REPLAYED_TOPICS)
        if not page:
            break
        for notification in page:
            replay.take(notification)
        after = page[-1].id
    return ReplayedRows(
        position=position,
        user=replay.user,
        listings=list(replay.listings.values()),
        installations=list(replay.installations.values()),
        sources=list(replay.sources.values()),
    )


class _Replay:
    def __init__(self, reader: LogReader, user_name: str, known: KnownStreams):
        self.to_event = reader.decode
        self.user_name = user_name
        self.user_stream = identity.user_id(user_name)
        self.known = known
        self.user: Row | None = None
        self.listings: dict[UUID, Row] = {}
        self.installations: dict[UUID, Row] = {}
        self.sources: dict[str, Row] = {}

    def start_from(self, start: Checkpoint) -> None:
        self.user = dict(start.user) if start.user is not None else None
        self.listings = {key: dict(row) for key, row in start.listings.items()}
        self.installations = {key: dict(row) for key, row in start.installations.items()}
        self.sources = {key: dict(row) for key, row in start.sources.items()}

    def wanted(self, notification: Notification) -> bool:
        """Whether to decode: decided from the stream id and topic alone (decoding costs)."""
        stream = _stream_id(notification)
        topic = notification.topic
        if stream == self.user_stream or topic.startswith(_SOURCE_TOPICS):
            return True
        if not topic.startswith(_USER_STREAM_TOPICS):
            return False
        if stream in self.known.ids or stream in self.listings or stream in self.installations:
            return True
        # A stream the views did not know yet: only its first event says whose it is.
        return notification.id > self.known.position and topic in _FIRST_TOPICS

    def take(self, notification: Notification) -> None:
        if not self.wanted(notification):
            return
        event = self.to_event(notification)
        position = notification.id
        stream = event.originator_id
        if isinstance(event, listing.AnyListingEvent):
            if stream in self.listings or _belongs(event, self.user_name):
                self.listings[stream] = listing_row(self.listings.get(stream), event, position)
        elif isinstance(event, installation.InstallationEvent):
            if stream in self.installations or _belongs(event, self.user_name):
                self.installations[stream] = installation_row(
                    self.installations.get(stream), event, position
                )
        elif isinstance(event, user.UserEvent):
            if stream == self.user_stream:
                self.user = user_row(self.user, event, position)
        elif isinstance(event, market_source.SourceEvent):
            self.sources[event.source_id] = source_row(
                self.sources.get(event.source_id), event, position
            )


_FIRST_TOPICS = frozenset({listing.Offered.TOPIC, installation.StateObserved.TOPIC})


def _belongs(event: LedgerEvent, user_name: str) -> bool:
    """Whether the first event of a stream names this user."""
    if isinstance(event, listing.Offered | installation.StateObserved):
        return event.user == user_name
    return False


def _stream_id(notification: Notification) -> UUID:
    value = notification.originator_id
    return value if isinstance(value, UUID) else UUID(str(value))


def position_at(application: EventStore, moment: datetime, head: int) -> int:
    """The position of the last event decided at or before ``moment`` (0 if none).

    A binary search over the log: events are appended in the order they were decided, so
    their timestamps grow with their positions.
    """
    reader = LogReader(application)
    low, high = 0, head  # the answer is in [low, high]; the event at low is not after moment
    while low < high:
        middle = (low + high + 1) // 2
        found = _first_from(reader, middle, high)
        if found is None:
            high = middle - 1  # no event in [middle, high]
            continue
        event = reader.decode(found)
        if event.timestamp <= moment:
            low = found.id
        else:
            high = middle - 1
    return low


def _first_from(reader: LogReader, start: int, stop: int) -> Notification | None:
    page = reader.notifications(start - 1, stop, 1)
    return page[0] if page else None
