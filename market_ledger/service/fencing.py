"""The lease a singleton job writes under, carried with its work.

A job held by lease (see market_ledger.service.roles) sets :data:`writing_under` for what it
runs; the event store checks that lease in the same transaction as the events it appends, and
refuses the append when the lease is no longer live (it expired and another instance took the
role). Threads started with ``asyncio.to_thread`` carry the value with them.
"""

from __future__ import annotations

from contextvars import ContextVar

from market_ledger.projections.role_leases import Lease
from market_ledger.projections.role_leases import LeaseLost as LeaseLost

#: the lease of the job on whose behalf events are being written, if any
writing_under: ContextVar[Lease | None] = ContextVar("writing_under", default=None)
