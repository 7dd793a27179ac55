"""The command handler of a running service: it says whether writes succeed, and wakes the
projector after each commit.

Every write of the service (the cycle's phases, the NATS intake, the HTTP API) goes through
the one handler of the wired ledger, so this is where "the store takes writes" is known.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import psycopg
import sqlalchemy as sa
from eventsourcing import persistence as es_persistence

from market_ledger.adapters.health import HealthBoard
from market_ledger.domain.decider import Command
from market_ledger.service.handler import CommandHandler, Outcome
from market_ledger.service.reasons import error_reason

PART = "store_writes"

#: errors that say the store cannot take the write (not that the command was wrong)
STORE_ERRORS: tuple[type[BaseException], ...] = (
    es_persistence.PersistenceError,
    sa.exc.SQLAlchemyError,
    sqlite3.Error,
    psycopg.Error,
    OSError,
)


class WatchedHandler(CommandHandler):
    """``inner``, reporting the outcome of its writes to ``health`` as part ``store_writes``
    and calling ``on_commit(position)`` after each transaction that wrote events: every
    writer of the service (the cycle, the NATS intake, the HTTP API) goes through it, so this
    is the one place that wakes the projector."""

    def __init__(
        self,
        inner: CommandHandler,
        health: HealthBoard,
        on_commit: Callable[[int], None] | None = None,
    ) -> None:
        # The same handler, state and all (its cache of settled streams included): only
        # what happens around ``handle`` differs.
        self.__dict__.update(inner.__dict__)
        self.health = health
        self.on_commit = on_commit

    def handle(self, *commands: Command) -> Outcome:
        try:
            outcome = super().handle(*commands)
        except STORE_ERRORS as error:
            self.health.failing(PART, error_reason(error))
            raise
        if outcome.events:
            self.health.ok(PART)
            if self.on_commit is not None and outcome.position is not None:
                self.on_commit(outcome.position)
        return outcome
