"""The base of every event the ledger stores.

Events are the library's frozen dataclasses. Each concrete event names its stored topic
explicitly (``TOPIC = "listing.Offered.v1"``) and registers it, so renaming or moving a class
never breaks the replay of events written before.

A new version of an event gets the next topic (``listing.Rendered.v2``), keeps the former
ones in ``FORMER_TOPICS`` and sets the library's ``class_version``; its ``upcast_v1_v2``
staticmethod turns the stored state of a version 1 event into version 2 when it is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.domain import DomainEvent
from eventsourcing.utils import register_topic

EVENT_CLASSES: dict[str, type[LedgerEvent]] = {}


@dataclass(frozen=True)
class LedgerEvent(DomainEvent):
    """An event of one of the ledger's aggregates.

    ``originator_id`` is the stream, ``originator_version`` the position in that stream, and
    ``timestamp`` the moment the ledger decided it.
    """

    TOPIC: ClassVar[str]
    #: topics the class was stored under before its current version (each class with an
    #: upcaster from the version stored under it, ``upcast_vN_vN+1``), still read on replay
    FORMER_TOPICS: ClassVar[tuple[str, ...]] = ()
    #: the name shown in history, e.g. ``render_failed``
    HISTORY_NAME: ClassVar[str] = ""

    @property
    def refusal(self) -> str | None:
        """For an event that records a refused command (kept for audit), why it was refused."""
        return None

    @classmethod
    def stored_topics(cls) -> tuple[str, ...]:
        """Every topic events of this class are stored under: today's, then former ones."""
        return (cls.TOPIC, *cls.__dict__.get("FORMER_TOPICS", ()))

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("TOPIC") is None:
            return  # an intermediate base, never stored
        for topic in cls.stored_topics():
            known = EVENT_CLASSES.get(topic)
            if known is not None and known.__qualname__ != cls.__qualname__:
                raise TypeError(f"topic {topic!r} is used by {known} and {cls}")
            EVENT_CLASSES[topic] = cls
            register_topic(topic, cls)


class Stamper:
    """Numbers the events a decision produces for one stream, at one moment."""

    def __init__(self, originator_id: UUID, version: int, at: Any) -> None:
        self.originator_id = originator_id
        self.version = version
        self.at = at

    def __call__(self, event_class: type[Any], **fields: Any) -> Any:
        self.version += 1
        return event_class(
            originator_id=self.originator_id,
            originator_version=self.version,
            timestamp=self.at,
            **fields,
        )
