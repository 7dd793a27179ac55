"""The gauges ``GET /metrics`` reads from the log and the views at each scrape.

They describe the shared store, not this instance: every instance reports the same log head
and the same lag per role, whichever instance holds the role.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from market_ledger.adapters.http_api.common import HttpServices
from market_ledger.adapters.metrics import LOG_HEAD, NOTIFIER_LAG, PROJECTOR_LAG, ROLE_LAG_SECONDS
from market_ledger.projections import role_lag
from market_ledger.projections.notifier_state import define_notifier_tables, read_notifier_position
from market_ledger.service.notifier import DEFAULT_NAME

log = logging.getLogger(__name__)
NOTIFIER_TABLES = define_notifier_tables()


def refresh_gauges(services: HttpServices) -> None:
    """Log head, and each role's lag, as of this scrape (the service also sets some as it runs).

    A read that fails is logged and leaves its gauges as they were; the scrape still answers.
    """
    now = datetime.now(UTC)
    try:
        head = services.projector.head()
        position = services.projector.position()
    except Exception:
        log.warning("metrics: cannot read the log positions", exc_info=True)
        return
    LOG_HEAD.set(head)
    PROJECTOR_LAG.set(max(head - position, 0))
    try:
        ROLE_LAG_SECONDS.labels("projector").set(
            role_lag.event_lag_seconds(services.application, position, now)
        )
        with services.read() as conn:
            announced = read_notifier_position(conn, NOTIFIER_TABLES, DEFAULT_NAME)
            ROLE_LAG_SECONDS.labels("cycle").set(
                role_lag.cycle_lag_seconds(conn, services.tables, now)
            )
            ROLE_LAG_SECONDS.labels("tasks").set(
                role_lag.tasks_lag_seconds(conn, services.tables, now)
            )
        if announced is not None:
            NOTIFIER_LAG.set(max(head - announced, 0))
            ROLE_LAG_SECONDS.labels("notifier").set(
                role_lag.event_lag_seconds(services.application, announced, now)
            )
    except Exception:
        log.warning("metrics: cannot read the roles' lag", exc_info=True)
