"""The command handler on a real event store: transactions, rejections and conflicts."""

from __future__ import annotations

from typing import Any

import pytest

from market_ledger.bootstrap import Ledger
from market_ledger.domain.decider import CommandRejected
from market_ledger.domain.listing import ListingStatus
from market_ledger.domain.manifest_record import ManifestRecorded
from market_ledger.domain.user import RegisterUser, RemoveUser
from market_ledger.service.handler import CommandHandler, ConcurrencyConflict
from tests.conftest import StoreFactory
from tests.support.builders import offer, render


def test_commands_handled_together_are_saved_in_one_transaction(ledger: Ledger) -> None:
    first = offer()
    outcome = ledger.handler.handle(RegisterUser("alice"), first, render(first))
    # registered, the offer's content recorded once, offered, rendered
    assert len(outcome.events) == 4
    assert outcome.position == ledger.projector.head() == 4
    state = ledger.handler.state_of(first)
    assert state.status is ListingStatus.LATEST


def test_a_rejected_command_is_reported_and_does_not_stop_the_others(ledger: Ledger) -> None:
    outcome = ledger.handler.handle(RemoveUser("nobody"), RegisterUser("alice"))
    assert [r.reason for r in outcome.rejections] == ["unknown user 'nobody'"]
    assert len(outcome.events) == 1
    with pytest.raises(CommandRejected, match="unknown user 'nobody'"):
        ledger.handler.execute(RemoveUser("nobody"))


def test_a_concurrent_writer_makes_the_handler_decide_again_on_the_new_history(
    store: StoreFactory,
) -> None:
    pipeline, other = store.open(), store.open()
    v1, v2 = offer(version="1.0.0"), offer(version="2.0.0")
    pipeline.handler.execute(v1)
    pipeline.handler.state_of(v1)  # both writers have loaded version 1 of the stream
    other.handler.state_of(v1)

    real_save = pipeline.application.events.put
    calls: list[int] = []

    def save_after_a_competitor(events: Any, **kwargs: Any) -> Any:
        if not calls:
            other.handler.execute(v2)  # a newer offer lands between load and save
        calls.append(len(events))
        return real_save(events, **kwargs)

    pipeline.application.events.put = save_after_a_competitor  # type: ignore[method-assign]
    outcome = pipeline.handler.handle(render(v1))
    # First attempt: the v1 render collides with v2's offer. Second attempt: decided against
    # the new history, the v1 render is stale and refused: nothing is lost or overwritten.
    assert len(calls) == 1
    assert outcome.events == ()
    state = pipeline.handler.state_of(v1)
    assert (state.status, state.pending_version) == (ListingStatus.PENDING, "2.0.0")


def test_a_writer_that_keeps_losing_gives_up_with_a_clear_error(store: StoreFactory) -> None:
    ledger, other = store.open(), store.open()
    ledger.handler.execute(RegisterUser("alice"))
    handler = CommandHandler(ledger.application, max_attempts=2)
    real_save = ledger.application.events.put
    roles = iter(["admin", "normal", "admin", "normal"])

    def always_beaten(events: Any, **kwargs: Any) -> Any:
        other.handler.execute(RegisterUser("alice", role=next(roles)))
        return real_save(events, **kwargs)

    ledger.application.events.put = always_beaten  # type: ignore[method-assign]
    with pytest.raises(ConcurrencyConflict, match="lost the race 2 times"):
        handler.handle(RegisterUser("alice", role="owner"))


def test_an_entry_offered_to_every_user_is_recorded_once(ledger: Ledger) -> None:

    outcome = ledger.handler.handle(*(offer(user=f"user{i}") for i in range(5)))
    recorded = [e for e in outcome.events if isinstance(e, ManifestRecorded)]
    assert len(recorded) == 1 and len(outcome.events) == 6
    again = ledger.handler.handle(offer(user="user9"))
    assert not any(isinstance(e, ManifestRecorded) for e in again.events)


def test_a_group_of_commands_decides_on_streams_written_by_another_process(
    store: StoreFactory,
) -> None:
    writer, other = store.open(), store.open()
    v1 = offer(version="1.0.0")
    other.handler.handle(v1, render(v1))  # history this process has never loaded
    outcome = writer.handler.handle(render(v1), offer(version="1.0.0"), offer("zoo"))
    offered = [e for e in outcome.events if type(e).__name__ == "Offered"]
    assert [e.app_id for e in offered] == ["zoo"]  # the render and offer of v1 change nothing


def test_a_cached_stream_is_brought_up_to_date_before_a_group_decides(
    store: StoreFactory,
) -> None:
    writer, other = store.open(), store.open()
    v1, v2 = offer(version="1.0.0"), offer(version="2.0.0")
    writer.handler.handle(v1, offer("zoo"))  # writer now holds the stream in its cache
    other.handler.handle(v2, offer("yak"))  # another process moves it on
    outcome = writer.handler.handle(render(v1), render(v2))
    rendered = [e for e in outcome.events if type(e).__name__ == "Rendered"]
    assert [e.app_version for e in rendered] == ["2.0.0"]  # v1's render is stale, v2's lands
