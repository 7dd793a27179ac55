"""The base of every event the ledger stores.

Events are the library's frozen dataclasses. Each concrete event names its stored topic
explicitly (``TOPIC = "listing.Offered.v1"``) and registers it, so renaming or moving a class
never breaks the replay of events written before.

A new version of an event gets the next topic (``listing.Rendered.v2``), keeps the former
ones in ``FORMER_TOPICS`` and sets the library's ``class_version``; its ``upcast_v1_v2``
staticmethod turns the stored state of a version 1 event into version 2 when it is read.
A class whose topics and upcasters do not agree (:func:`version_problems`) is refused when
it is defined, so an event that forgets an upcaster never reaches a replay.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.domain import DomainEvent
from eventsourcing.utils import register_topic

EVENT_CLASSES: dict[str, type[LedgerEvent]] = {}
#: a stored topic: ``<aggregate>.<Event>.v<version>``
_VERSIONED_TOPIC = re.compile(r"^[a-z_]+\.[A-Za-z]+\.v([1-9][0-9]*)$")


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
        problems = version_problems(cls)
        if problems:
            raise TypeError(f"{cls.__qualname__}: " + "; ".join(problems))
        for topic in cls.stored_topics():
            known = EVENT_CLASSES.get(topic)
            if known is not None and known.__qualname__ != cls.__qualname__:
                raise TypeError(f"topic {topic!r} is used by {known} and {cls}")
            EVENT_CLASSES[topic] = cls
            register_topic(topic, cls)


def version_problems(cls: type[Any]) -> list[str]:
    """What is wrong with how an event class names its versions (nothing, for a sound one).

    Its ``TOPIC`` ends in ``.v<class_version>``; each former topic ends in the version its
    events were stored at, no later than that; and for every step from the oldest version
    stored to the current one there is an ``upcast_vN_vN+1`` staticmethod.
    """
    current = getattr(cls, "class_version", 1)
    problems: list[str] = []
    versions: list[int] = []
    for topic in (cls.__dict__["TOPIC"], *cls.__dict__.get("FORMER_TOPICS", ())):
        found = _VERSIONED_TOPIC.match(topic) if isinstance(topic, str) else None
        if found is None:
            problems.append(f"topic {topic!r} is not of the form 'aggregate.Event.vN'")
        else:
            versions.append(int(found.group(1)))
    if problems:
        return problems
    if versions[0] != current:
        problems.append(
            f"TOPIC {cls.__dict__['TOPIC']!r} is version {versions[0]} but class_version is "
            f"{current}"
        )
    problems += [
        f"former topic {topic!r} is newer than class_version {current}"
        for topic, version in zip(cls.__dict__.get("FORMER_TOPICS", ()), versions[1:], strict=True)
        if version > current
    ]
    problems += [
        f"no upcast_v{step}_v{step + 1} for the events stored at version {step}"
        for step in range(min(versions), current)
        if not callable(getattr(cls, f"upcast_v{step}_v{step + 1}", None))
    ]
    return problems


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
