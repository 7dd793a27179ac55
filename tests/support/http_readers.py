"""HTTP readers on threads of their own, calling a running ``serve`` without pause.

Each reader goes round a list of read routes for as long as :meth:`Readers.running` lasts and
keeps every answer's route, status and times, so a test can ask which calls failed and
which were in flight at a given moment.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import attrs
import httpx

API = "/app-store/api/v2"
#: the read routes of the market and the ledger, for the admin user
READ_ROUTES = (
    f"{API}/market/hash",
    f"{API}/market/data",
    f"{API}/market/state",
    f"{API}/ledger/catalog",
    f"{API}/ledger/status",
    f"{API}/ledger/history?app=affine",
    f"{API}/ledger/tasks",
)


@attrs.frozen
class Answer:
    route: str
    status: int  # 0: no HTTP answer at all (the error is in ``text``)
    started: float
    ended: float
    text: str


class Readers:
    """``count`` threads reading ``routes`` of ``base_url`` as ``user`` in a loop."""

    def __init__(
        self, base_url: str, user: str, routes: Sequence[str] = READ_ROUTES, count: int = 4
    ) -> None:
        self.base_url = base_url
        self.user = user
        self.routes = tuple(routes)
        self.count = count
        self._answers: list[Answer] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def answers(self) -> list[Answer]:
        with self._lock:
            return list(self._answers)

    def failed(self) -> list[Answer]:
        return [a for a in self.answers() if a.status != 200]

    def answered_between(self, start: float, end: float) -> list[Answer]:
        """The calls that were in flight at some moment between ``start`` and ``end``."""
        return [a for a in self.answers() if a.started <= end and a.ended >= start]

    @contextmanager
    def running(self) -> Iterator[Readers]:
        threads = [
            threading.Thread(target=self._read, args=(n,), daemon=True) for n in range(self.count)
        ]
        for thread in threads:
            thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            for thread in threads:
                thread.join(30)

    def _read(self, offset: int) -> None:
        headers = {"X-Bfl-User": self.user}
        with httpx.Client(base_url=self.base_url, headers=headers, timeout=30) as client:
            n = offset
            while not self._stop.is_set():
                route = self.routes[n % len(self.routes)]
                n += 1
                started = time.monotonic()
                try:
                    response = client.get(route)
                    status, text = response.status_code, response.text[:300]
                except httpx.HTTPError as error:
                    status, text = 0, f"{type(error).__name__}: {error}"
                with self._lock:
                    self._answers.append(Answer(route, status, started, time.monotonic(), text))
