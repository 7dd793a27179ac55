"""Prometheus metrics of the service, in one registry served at ``GET /metrics``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

PHASE_SECONDS = Histogram(
    "ledger_cycle_phase_seconds",
    "Duration of each phase of the pipeline cycle.",
    ["phase"],
    registry=REGISTRY,
    buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
CYCLES = Counter(
    "ledger_cycles_total", "Pipeline cycles run, by outcome.", ["outcome"], registry=REGISTRY
)
RENDERS = Counter(
    "ledger_renders_total", "Render attempts, by outcome.", ["outcome"], registry=REGISTRY
)
SOURCE_SYNCS = Counter(
    "ledger_source_syncs_total",
    "Market source syncs, by source and outcome.",
    ["source", "outcome"],
    registry=REGISTRY,
)
PROJECTOR_LAG = Gauge(
    "ledger_projector_lag_events",
    "Events in the log that the views have not applied yet.",
    registry=REGISTRY,
)
LOG_HEAD = Gauge("ledger_log_head", "Position of the newest event in the log.", registry=REGISTRY)
NATS_INTAKE = Counter(
    "ledger_nats_intake_total",
    "NATS messages taken in, by subject kind and outcome.",
    ["kind", "outcome"],
    registry=REGISTRY,
)
NATS_PUBLISHED = Counter(
    "ledger_nats_notifications_total",
    "Notifications published on NATS, by type.",
    ["notify_type"],
    registry=REGISTRY,
)
NATS_CONNECTED = Gauge(
    "ledger_nats_connected", "1 while the NATS connection is up.", registry=REGISTRY
)
HTTP_REQUESTS = Counter(
    "ledger_http_requests_total",
    "HTTP requests answered, by route and status.",
    ["route", "status"],
    registry=REGISTRY,
)
ROLE_HELD = Gauge(
    "ledger_role_held", "1 while this instance holds the role.", ["role"], registry=REGISTRY
)
ROLE_CHANGES = Counter(
    "ledger_role_changes_total",
    "Times this instance took or let go of the role.",
    ["role", "change"],
    registry=REGISTRY,
)
ROLE_RENEWALS = Counter(
    "ledger_role_lease_renewals_total",
    "Renewals of the role's lease by this instance.",
    ["role"],
    registry=REGISTRY,
)
NOTIFIER_LAG = Gauge(
    "ledger_notifier_lag_events",
    "Events in the log the notifier (whichever instance holds it) has not announced yet.",
    registry=REGISTRY,
)

ROLE_LAG_SECONDS = Gauge(
    "ledger_role_lag_seconds",
    "How long the oldest work of the role has waited, whichever instance holds it.",
    ["role"],
    registry=REGISTRY,
)


class PrometheusRoleMetrics:
    """The roles' changes and renewals on this instance, in the registry above."""

    def changed(self, role: str, held: bool) -> None:
        ROLE_HELD.labels(role).set(1 if held else 0)
        ROLE_CHANGES.labels(role, "taken" if held else "let go").inc()

    def renewed(self, role: str) -> None:
        ROLE_RENEWALS.labels(role).inc()


class PrometheusCycleMetrics:
    """The cycle's measurements, in the registry above."""

    def phase_took(self, phase: str, seconds: float) -> None:
        PHASE_SECONDS.labels(phase).observe(seconds)

    def cycle_ended(self, outcome: str) -> None:
        CYCLES.labels(outcome).inc()

    def log_position(self, head: int, lag: int) -> None:
        LOG_HEAD.set(head)
        PROJECTOR_LAG.set(lag)

    def render_ended(self, outcome: str) -> None:
        RENDERS.labels(outcome).inc()

    def source_synced(self, source_id: str, outcome: str) -> None:
        SOURCE_SYNCS.labels(source_id, outcome).inc()
