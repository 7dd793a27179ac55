"""Read answers kept while nothing at all was committed to the store: served on the event
loop, with no thread hop and no query.

On SQLite, ``PRAGMA data_version`` of one connection changes whenever any other connection,
of this process or another, commits to the database; asking it reads a counter the database
keeps in shared memory (a few microseconds), so the event loop asks it itself. An answer read
in a snapshot begun after the version was asked is current for as long as the version stays
the same: a commit in between changes the version, and the answer is read again (at worst
once too often, never stale). On PostgreSQL there is no such counter: every request reads.
"""

from __future__ import annotations

import sqlite3
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

from market_ledger.adapters.http_api.common import HttpServices, in_thread, read_in_thread

T = TypeVar("T")


class StoreWatch:
    """The store's commit counter as one connection of its own sees it (SQLite only)."""

    def __init__(self, services: HttpServices) -> None:
        self._services = services
        self._connection: Any = None
        #: None until :meth:`open` ran (in a store thread: it may connect)
        self.usable: bool | None = None
        self._lock = threading.Lock()

    def open(self) -> None:
        with self._lock:
            if self.usable is not None:
                return
            with self._services.read() as conn:
                engine = conn.engine
            database = engine.url.database
            self.usable = engine.dialect.name == "sqlite" and database not in (None, "", ":memory:")
            if self.usable:
                connection = engine.raw_connection()
                connection.detach()  # its own for good: it takes no place in the pool
                weakref.finalize(self, connection.close)
                self._connection = connection

    def version(self) -> int | None:
        """A number that changes with every commit to the store; None when unknown."""
        if not self.usable:
            return None
        with self._lock:  # one app may be served from more than one event loop thread
            try:
                cursor = self._connection.cursor()
                try:
                    cursor.execute("PRAGMA data_version")
                    return int(cursor.fetchone()[0])
                finally:
                    cursor.close()
            except sqlite3.Error:
                return None  # unknown: the request reads, and meets the store's trouble there


class UnchangedAnswers(Generic[T]):
    """Answers by key, each kept while the store's commit counter stays where it was when the
    answer was read (at most ``capacity``, least recently used out)."""

    def __init__(self, watch: StoreWatch, capacity: int) -> None:
        self.watch = watch
        self.capacity = capacity
        self._answers: OrderedDict[Hashable, tuple[int, T]] = OrderedDict()
        self._lock = threading.Lock()

    async def get(self, key: Hashable, read: Callable[[], T]) -> T:
        """The kept answer when nothing was committed since it was read, else ``read()`` in
        a store thread (its errors are not kept)."""
        if self.watch.usable is None:
            await in_thread(self.watch.open)
        version = self.watch.version()
        if version is not None:
            with self._lock:
                kept = self._answers.get(key)
                if kept is not None and kept[0] == version:
                    self._answers.move_to_end(key)
                    return kept[1]
        answer = await read_in_thread(read)
        if version is not None:
            with self._lock:
                self._answers[key] = (version, answer)
                self._answers.move_to_end(key)
                while len(self._answers) > self.capacity:
                    self._answers.popitem(last=False)
        return answer
