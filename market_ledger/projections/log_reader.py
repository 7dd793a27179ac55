"""The one reader of the event log: the projector, rebuilds, time travel and the notifier.

The library reads notifications as dataclass objects built from named rows, then decodes
each through its mapper. For a rebuild of a million events that is a good part of the run,
so this reader selects plain tuples from the library's own table and decodes them directly:
the stored state through the application's transcoder, into the class its topic names, the
way the library's mapper does. With a cipher or compressor configured, or a recorder it
does not know, it uses the library's path instead.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import Notification
from eventsourcing.sqlite import SQLiteApplicationRecorder
from eventsourcing.utils import resolve_topic

if TYPE_CHECKING:
    from eventsourcing.postgres import PostgresApplicationRecorder

from market_ledger.domain.events import LedgerEvent

#: the event store the views are built from: the library's application object, opened by the
#: composition root (the views need its recorder and its mapper, nothing of the service's)
EventStore = Application[UUID]
Decoded = list[tuple[int, LedgerEvent]]
Rows = list[tuple[Any, ...]]


def _is_postgres(recorder: object) -> bool:
    """Whether ``recorder`` is the library's PostgreSQL one, without importing psycopg for a
    SQLite store (a sizeable part of a history process's memory): a PostgreSQL recorder's
    module is imported already."""
    module = sys.modules.get("eventsourcing.postgres")
    return module is not None and isinstance(recorder, module.PostgresApplicationRecorder)


class LogReader:
    def __init__(self, application: EventStore) -> None:
        self.application = application
        mapper = application.mapper
        self._plain = mapper.cipher is None and mapper.compressor is None
        self._decode_state = mapper.transcoder.decode
        self._classes: dict[str, Any] = {}
        self._select: Callable[[int, int | None, int], Rows] | None = None
        recorder = application.recorder
        if self._plain and isinstance(recorder, SQLiteApplicationRecorder):
            self._select = self._sqlite_select(recorder)
        elif self._plain and _is_postgres(recorder):
            self._select = self._postgres_select(cast("PostgresApplicationRecorder", recorder))

    def read(
        self,
        after: int,
        until: int | None,
        limit: int,
        *,
        topics: Sequence[str] = (),
    ) -> Decoded:
        """Events after position ``after`` (up to ``until``, at most ``limit``), decoded;
        with ``topics``, only events of those topics (the library filters them in SQL)."""
        if self._select is None or topics:
            notifications = self.application.recorder.select_notifications(
                start=after + 1, limit=limit, stop=until, topics=topics
            )
            to_event = self.application.mapper.to_domain_event
            return [(n.id, to_event(n)) for n in notifications]  # type: ignore[misc]
        return [self._decode(*row) for row in self._select(after, until, limit)]

    def notifications(
        self, after: int, until: int | None, limit: int, *, topics: Sequence[str] = ()
    ) -> Sequence[Notification]:
        """Notifications after ``after`` (up to ``until``, at most ``limit``), not decoded:
        for a reader that picks what to decode from a stream id and topic alone."""
        return self.application.recorder.select_notifications(
            start=after + 1, limit=limit, stop=until, topics=topics
        )

    def decode(self, notification: Notification) -> LedgerEvent:
        """One notification as its event, the way the library's mapper decodes it."""
        return cast(LedgerEvent, self.application.mapper.to_domain_event(notification))

    def _decode(
        self, position: int, originator_id: Any, version: int, topic: str, state: bytes
    ) -> tuple[int, LedgerEvent]:
        cls = self._classes.get(topic)
        if cls is None:
            cls = self._classes[topic] = resolve_topic(topic)
        fields = self._decode_state(state)
        fields["originator_id"] = (
            originator_id if isinstance(originator_id, UUID) else UUID(originator_id)
        )
        fields["originator_version"] = version
        stored_version = fields.pop("class_version", 1)
        for from_version in range(stored_version, getattr(cls, "class_version", 1)):
            getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(fields)
        event = object.__new__(cls)
        object.__setattr__(event, "__dict__", fields)
        return position, event

    @staticmethod
    def _sqlite_select(
        recorder: SQLiteApplicationRecorder,
    ) -> Callable[[int, int | None, int], Rows]:
        table = recorder.events_table_name
        bounded = (
            f"SELECT rowid, originator_id, originator_version, topic, state FROM {table} "
            "WHERE rowid > ? AND rowid <= ? ORDER BY rowid LIMIT ?"
        )
        open_ended = (
            f"SELECT rowid, originator_id, originator_version, topic, state FROM {table} "
            "WHERE rowid > ? ORDER BY rowid LIMIT ?"
        )

        def select(after: int, until: int | None, limit: int) -> Rows:
            with recorder.datastore.transaction(commit=False) as cursor:
                if until is None:
                    cursor.execute(open_ended, (after, limit))
                else:
                    cursor.execute(bounded, (after, until, limit))
                return [tuple(row) for row in cursor.fetchall()]

        return select

    @staticmethod
    def _postgres_select(
        recorder: PostgresApplicationRecorder,
    ) -> Callable[[int, int | None, int], Rows]:
        from psycopg.sql import SQL, Identifier

        columns = "notification_id, originator_id, originator_version, topic, state"
        bounded = SQL(
            "SELECT " + columns + " FROM {schema}.{table} WHERE notification_id > %s "
            "AND notification_id <= %s ORDER BY notification_id LIMIT %s"
        ).format(
            schema=Identifier(recorder.datastore.schema),
            table=Identifier(recorder.events_table_name),
        )
        open_ended = SQL(
            "SELECT " + columns + " FROM {schema}.{table} WHERE notification_id > %s "
            "ORDER BY notification_id LIMIT %s"
        ).format(
            schema=Identifier(recorder.datastore.schema),
            table=Identifier(recorder.events_table_name),
        )

        def select(after: int, until: int | None, limit: int) -> Rows:
            with recorder.datastore.get_connection() as conn, conn.cursor() as cursor:
                if until is None:
                    cursor.execute(open_ended, (after, limit))
                else:
                    cursor.execute(bounded, (after, until, limit))
                return [
                    (
                        r["notification_id"],
                        r["originator_id"],
                        r["originator_version"],
                        r["topic"],
                        bytes(r["state"]),
                    )
                    for r in cursor.fetchall()
                ]

        return select
