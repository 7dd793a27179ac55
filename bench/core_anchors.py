"""The raw library doing the bare version of the core bench's work, in the same run.

A plain event-sourced application of the eventsourcing library (its ``Application``, a plain
``Aggregate`` subclass, the same transcoder and database settings as the ledger's store) appends
the very events the ledger just decided: each event's fields become the data of one event of a
plain aggregate with the same stream id. One event per transaction, the raw side gets each
aggregate from the library's repository (or creates it when there is none), as the ledger
finds out whether a stream exists; in batches it is told which events start their stream and
creates those without a read (the library has no bulk read; a read per new stream would make
the raw side slower than the ledger's bulk loads, not a bound). What is left to the ledger is
its own work (admission, deciding, folding, its loads), which the ratio measures.

The log is read raw in a child process, as the ledger's rebuild runs in one:

    .venv/bin/python bench/core_anchors.py read sqlite:///var/bench/ledger.db
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate, event

from market_ledger.adapters.event_store.settings import event_store_env, split_schema
from market_ledger.service.application import LedgerApplication

#: the fields every event has; the rest is the event's own data
COMMON = ("originator_id", "originator_version", "timestamp")
#: events read by one query, as the rebuild reads them
READ_PAGE = 5000
#: the library's own PostgreSQL recorder (the ledger's adds its fence)
LIBRARY_POSTGRES = "eventsourcing.postgres"


class RawStream(Aggregate):
    """A plain aggregate: its events carry the data of the ledger's events."""

    def __init__(self, stream: UUID, data: dict[str, Any]) -> None:
        self.data = data

    @staticmethod
    def create_id(stream: UUID) -> UUID:
        return stream

    @event("Recorded")
    def record(self, data: dict[str, Any]) -> None:
        self.data = data


class RawApplication(Application[UUID]):
    name = "RawAnchor"
    env = LedgerApplication.env  # the same aggregate cache as the ledger's store


def raw_env(database_url: str) -> dict[str, str]:
    """The ledger's store settings for ``database_url`` (its transcoder, its SQLite page
    cache), with the library's own recorder classes."""
    url, schema = split_schema(database_url)
    env = event_store_env(url, schema=schema)
    if "POSTGRES_DBNAME" in env:
        env["PERSISTENCE_MODULE"] = LIBRARY_POSTGRES
    return env


@dataclass
class Work:
    """What the raw side appends: (stream id, first event of its stream?, data) per event."""

    items: list[tuple[UUID, bool, dict[str, Any]]] = field(default_factory=list)

    @classmethod
    def of(cls, events: Sequence[Any]) -> Work:
        return cls(
            [
                (
                    e.originator_id,
                    e.originator_version == 1,
                    {k: v for k, v in e.__dict__.items() if k not in COMMON},
                )
                for e in events
            ]
        )


class RawAppender:
    """Appends :class:`Work` through the library, timing only the library's part."""

    def __init__(self, database_url: str) -> None:
        self.application = RawApplication(env=raw_env(database_url))
        self.seconds = 0.0
        self.events = 0

    def single(self, work: Work) -> None:
        """One event per transaction: load (or create) its aggregate, trigger, save."""
        app = self.application
        started = time.perf_counter()
        for stream, _, data in work.items:
            app.save(self._triggered(stream, data))
        self.seconds += time.perf_counter() - started
        self.events += len(work.items)

    def batched(self, work: Work, per_transaction: int) -> float:
        """Transactions of ``per_transaction`` events; returns the seconds spent."""
        app = self.application
        started = time.perf_counter()
        for start in range(0, len(work.items), per_transaction):
            pending: dict[UUID, RawStream] = {}
            for stream, first, data in work.items[start : start + per_transaction]:
                aggregate = pending.get(stream)
                if aggregate is not None:
                    aggregate.record(data)
                elif first:
                    pending[stream] = RawStream(stream, data)
                else:
                    aggregate = pending[stream] = app.repository.get(stream)
                    aggregate.record(data)
            app.save(*pending.values())
        spent = time.perf_counter() - started
        self.seconds += spent
        self.events += len(work.items)
        return spent

    def _triggered(self, stream: UUID, data: dict[str, Any]) -> RawStream:
        """The stream's aggregate with an event carrying ``data``: a new one if it has none."""
        try:
            aggregate: RawStream = self.application.repository.get(stream)
        except AggregateNotFoundError:
            return RawStream(stream, data)
        aggregate.record(data)
        return aggregate

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def close(self) -> None:
        self.application.close()


@dataclass
class Growth:
    """Rate of appends as the store grows: (events, seconds) of every transaction group."""

    steps: list[tuple[int, float]] = field(default_factory=list)

    def add(self, events: int, seconds: float) -> None:
        self.steps.append((events, seconds))

    @property
    def rate(self) -> float:
        """events/s over every group."""
        seconds = sum(spent for _, spent in self.steps)
        return sum(n for n, _ in self.steps) / seconds if seconds else 0.0

    @staticmethod
    def _rate(steps: Sequence[tuple[int, float]], share: float) -> float:
        """events/s of the leading groups of ``steps`` that hold ``share`` of the events."""
        wanted = share * sum(n for n, _ in steps)
        events, seconds = 0, 0.0
        for n, spent in steps:
            if events >= wanted and events:
                break
            events, seconds = events + n, seconds + spent
        return events / seconds if seconds else 0.0

    @property
    def first_and_last(self) -> tuple[float, float]:
        """Rates of the first 10 % and of the last 10 % of the events (whole groups: at
        least that share, each)."""
        return self._rate(self.steps, 0.1), self._rate(self.steps[::-1], 0.1)


def read_log(database_url: str, page: int = READ_PAGE) -> dict[str, float]:
    """Select and decode the whole notification log with the library's recorder and mapper."""
    app: Application[UUID] = Application(env=raw_env(database_url))
    select: Callable[..., Sequence[Any]] = app.recorder.select_notifications
    to_event = app.mapper.to_domain_event
    started = time.perf_counter()
    events, start = 0, 1
    while True:
        notifications = select(start=start, limit=page)
        for notification in notifications:
            to_event(notification)
        events += len(notifications)
        if len(notifications) < page:
            break
        start = notifications[-1].id + 1
    seconds = time.perf_counter() - started
    app.close()
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"events": events, "seconds": seconds, "peak_rss_mib": peak_mib}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("action", choices=["read"])
    parser.add_argument("database_url")
    parser.add_argument("--page", type=int, default=READ_PAGE)
    args = parser.parse_args()
    print(json.dumps(read_log(args.database_url, args.page)))


if __name__ == "__main__":
    main()
