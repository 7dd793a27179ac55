"""The command handler on a real event store: transactions, rejections and conflicts."""

from __future__ import annotations

from typing import Any

import pytest

from domain import commands as c
from domain.decider import CommandRejected
from domain.handler import CommandHandler, ConcurrencyConflict
from domain.listing import ListingStatus
from market_ledger.bootstrap import Ledger
from tests.builders import offer, render
from tests.conftest import StoreFactory


def test_commands_handled_together_are_saved_in_one_transaction(ledger: Ledger) -> None:
    first = offer()
    outcome = ledger.handler.handle(c.RegisterUser("alice"), first, render(first))
    assert len(outcome.events) == 3
    assert outcome.position == ledger.projector.head() == 3
    state = ledger.handler.state_of(first)
    assert state.status is ListingStatus.LATEST


def test_a_rejected_command_is_reported_and_does_not_stop_the_others(ledger: Ledger) -> None:
    outcome = ledger.handler.handle(c.RemoveUser("nobody"), c.RegisterUser("alice"))
    assert [r.reason for r in outcome.rejections] == ["unknown user 'nobody'"]
    assert len(outcome.events) == 1
    with pytest.raises(CommandRejected, match="unknown user 'nobody'"):
        ledger.handler.execute(c.RemoveUser("nobody"))


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
    ledger.handler.execute(c.RegisterUser("alice"))
    handler = CommandHandler(ledger.application, max_attempts=2)
    real_save = ledger.application.events.put
    roles = iter(["admin", "normal", "admin", "normal"])

    def always_beaten(events: Any, **kwargs: Any) -> Any:
        other.handler.execute(c.RegisterUser("alice", role=next(roles)))
        return real_save(events, **kwargs)

    ledger.application.events.put = always_beaten  # type: ignore[method-assign]
    with pytest.raises(ConcurrencyConflict, match="lost the race 2 times"):
        handler.handle(c.RegisterUser("alice", role="owner"))
