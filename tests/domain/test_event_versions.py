"""The rule of event versions: every stored version of an event is read as today's.

A class names its current topic and the ones it was stored under before; from each older
version there must be an upcaster step by step to the current one. ``version_problems`` is
the rule; a class breaking it is refused when defined, and every class the ledger knows is
checked here, so a change of shape that forgets an upcaster fails the suite.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

from market_ledger.domain import listing
from market_ledger.domain.events import EVENT_CLASSES, LedgerEvent, version_problems

# the aggregates register their events on import; the application imports them all
from market_ledger.service.application import LedgerApplication  # noqa: F401

CLASSES = sorted(set(EVENT_CLASSES.values()), key=lambda cls: cls.TOPIC)


@pytest.mark.parametrize("cls", CLASSES, ids=[cls.TOPIC for cls in CLASSES])
def test_given_an_event_class_of_the_ledger_then_its_topics_and_upcasters_agree(
    cls: type[LedgerEvent],
) -> None:
    assert version_problems(cls) == []
    for topic in cls.stored_topics():
        assert EVENT_CLASSES[topic] is cls


def test_given_former_topics_then_the_class_has_an_upcaster_per_version_step() -> None:
    versioned = [cls for cls in CLASSES if cls.__dict__.get("FORMER_TOPICS")]

    missing = {
        cls.TOPIC: name
        for cls in versioned
        for name in (f"upcast_v{n}_v{n + 1}" for n in range(1, cls.class_version))
        if not callable(getattr(cls, name, None))
    }

    assert listing.Rendered in versioned  # the change of shape made since the v1 store
    assert all(cls.class_version > 1 for cls in versioned)
    assert missing == {}


def test_given_a_rendered_v1_state_when_upcast_then_it_has_todays_fields() -> None:
    state: dict[str, Any] = {"app_version": "1.0.0", "digest": "d", "rendered": "{}", "images": {}}

    listing.Rendered.upcast_v1_v2(state)

    fields = {f.name for f in dataclasses.fields(listing.Rendered)}
    assert set(state) | {"originator_id", "originator_version", "timestamp"} == fields
    assert state["replaces"] is None


class _Unregistered:
    """Stands for an event class (the rule reads only its attributes): never registered."""

    TOPIC: ClassVar[str] = "thing.Changed.v3"
    FORMER_TOPICS: ClassVar[tuple[str, ...]] = ("thing.Changed.v1", "thing.Changed.v2")
    class_version: ClassVar[int] = 3

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["added"] = None

    @staticmethod
    def upcast_v2_v3(state: dict[str, Any]) -> None:
        state["later"] = None


def _variant(**attributes: Any) -> type[Any]:
    """A copy of ``_Unregistered`` with some attributes changed (None: left out)."""
    own = {k: v for k, v in vars(_Unregistered).items() if not k.startswith("__")}
    changed = {k: v for k, v in {**own, **attributes}.items() if v is not None}
    return type("Variant", (), changed)


def test_given_an_event_with_an_upcaster_per_step_then_the_rule_finds_nothing() -> None:
    assert version_problems(_Unregistered) == []


@pytest.mark.parametrize(
    ("attributes", "problem"),
    [
        ({"upcast_v2_v3": None}, "no upcast_v2_v3 for the events stored at version 2"),
        ({"upcast_v1_v2": None}, "no upcast_v1_v2 for the events stored at version 1"),
        ({"class_version": 2}, "TOPIC 'thing.Changed.v3' is version 3 but class_version is 2"),
        ({"TOPIC": "thing.Changed"}, "topic 'thing.Changed' is not of the form"),
        ({"FORMER_TOPICS": ("thing.Changed.v4",)}, "former topic 'thing.Changed.v4' is newer"),
    ],
    ids=["missing-last-step", "missing-first-step", "version-mismatch", "no-version", "newer"],
)
def test_given_an_event_whose_versions_disagree_then_the_rule_names_what_is_wrong(
    attributes: dict[str, Any], problem: str
) -> None:
    problems = version_problems(_variant(**attributes))

    assert any(p.startswith(problem) for p in problems), problems


def test_given_a_new_version_without_its_upcaster_when_defined_then_it_is_refused() -> None:
    with pytest.raises(TypeError, match=r"Forgetful: no upcast_v1_v2 for the events stored at"):

        @dataclass(frozen=True)
        class Forgetful(LedgerEvent):
            TOPIC = "thing.Forgotten.v2"
            FORMER_TOPICS = ("thing.Forgotten.v1",)
            class_version: ClassVar[int] = 2

    assert "thing.Forgotten.v1" not in EVENT_CLASSES
    assert "thing.Forgotten.v2" not in EVENT_CLASSES
