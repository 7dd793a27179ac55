"""What the use cases the CLI and the HTTP API share need from the wired ledger.

The composition root's ``Ledger`` satisfies each of these; a caller passes it as it is.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol

from sqlalchemy.engine import Connection

from market_ledger.domain.decider import Command
from market_ledger.projections.schema import ViewTables
from market_ledger.service.application import LedgerApplication
from market_ledger.service.handler import Outcome


class Commands(Protocol):
    """Where a use case sends its commands."""

    def execute(self, command: Command) -> Outcome: ...

    def handle(self, *commands: Command) -> Outcome: ...

    def state_of(self, command: Command) -> Any: ...


class LogHead(Protocol):
    def head(self) -> int: ...


class ViewsAndCommands(Protocol):
    """The views to read and the handler to write through."""

    @property
    def tables(self) -> ViewTables: ...

    @property
    def handler(self) -> Commands: ...

    def read(self) -> AbstractContextManager[Connection]: ...


class ViewsAndLog(Protocol):
    """The views, the log's head and the event store, for reading the past."""

    @property
    def tables(self) -> ViewTables: ...

    @property
    def projector(self) -> LogHead: ...

    @property
    def application(self) -> LedgerApplication: ...

    def read(self) -> AbstractContextManager[Connection]: ...
