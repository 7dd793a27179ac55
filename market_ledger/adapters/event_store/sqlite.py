"""The library's SQLite event store, with a page cache sized for a large log.

SQLite's default page cache is 2 MiB per connection. Appending to a log of a million events
touches the stream index at random places (stream ids are uuids), and with a small cache
most of those pages are read again from the operating system on every transaction. A
larger cache keeps the index in memory; it is a bound, not an allocation.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.sqlite import SQLiteConnection, SQLiteFactory

#: page cache of each event store connection, in KiB
CACHE_KIB = 16 * 1024


class TunedSQLiteFactory(SQLiteFactory):
    def __init__(self, env: Any) -> None:
        super().__init__(env)
        pool = self.datastore.pool
        create = pool._create_connection

        def create_tuned() -> SQLiteConnection:
            connection = create()
            connection._sqlite_conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            return connection

        pool._create_connection = create_tuned  # type: ignore[method-assign]
