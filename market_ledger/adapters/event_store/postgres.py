"""The library's PostgreSQL event store, with appends fenced by the writing job's lease.

The library runs ``_insert_events`` inside the transaction that appends the events, before
them. When the work in progress writes under a role's lease
(:data:`market_ledger.service.fencing.writing_under`), that hook checks the lease row and
locks it until the append commits: a stale holder's append fails (a division by zero the
check provokes on purpose, raised as :class:`LeaseLost`), so a paused leader that resumes
after another took over appends nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresFactory
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from market_ledger.service.fencing import LeaseLost, writing_under

#: fails (division by zero) unless the lease is the live one; locks it until commit
FENCE_CHECK = """
WITH live AS (
    SELECT 1 FROM {table}
    WHERE role = %s AND holder = %s AND token = %s
      AND expires_at > extract(epoch FROM clock_timestamp())
    FOR SHARE
)
SELECT 1 / (SELECT count(*) FROM live)
"""


class FencedPostgresRecorder(PostgresApplicationRecorder):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.datastore.enable_db_functions:
            # the library's database functions append without the hook the fence runs in
            raise ValueError("the ledger's event store needs the library's DB functions off")

    def _insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        super()._insert_events(curs, stored_events, **kwargs)
        lease = writing_under.get()
        if lease is not None and stored_events:
            schema = self.datastore.schema
            table = Identifier(schema, "role_leases") if schema else Identifier("role_leases")
            curs.execute(
                SQL(FENCE_CHECK).format(table=table), (lease.role, lease.holder, lease.token)
            )

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        try:
            ids: Sequence[int] | None = super().insert_events(stored_events, **kwargs)
            return ids
        except Exception as error:
            lease = writing_under.get()
            if lease is not None and "division by zero" in str(error):
                raise LeaseLost(lease) from None
            raise


class FencedPostgresFactory(PostgresFactory):
    application_recorder_class = FencedPostgresRecorder
