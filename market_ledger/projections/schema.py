"""The projection tables.

Defined once here; the Alembic migrations create the live tables with exactly this shape
(a test compares them), and ``rebuild`` creates prefixed copies of the same definitions to
fill from position 0 before swapping them in.

Whatever the domain accepts, these columns hold (market_ledger.domain.limits): a bounded column is
either a
name (user, source, app, feed: the domain refuses longer ones, and they are indexed, so an
unbounded type would only move the failure to PostgreSQL's index size limit) or a value of
fixed width made by the ledger itself (stream ids in hex, instants, digests, statuses,
history event names). Every other text column is ``Text``, and holds any length.
"""

from __future__ import annotations

import attrs
import sqlalchemy as sa

from market_ledger.domain.limits import DIGEST_LENGTH, MAX_NAME

#: user names, app ids and names, source ids and feed names: the domain refuses longer ones
_NAME = sa.String(MAX_NAME)

LIVE_PREFIX = ""
REBUILD_PREFIX = "rebuild_"


@attrs.frozen
class ViewTables:
    metadata: sa.MetaData
    position: sa.Table
    users: sa.Table
    sources: sa.Table
    listings: sa.Table
    installations: sa.Table
    history: sa.Table
    feed_cursors: sa.Table
    manifests: sa.Table
    parked_messages: sa.Table
    tasks: sa.Table
    last_installed: sa.Table
    checkpoints: sa.Table

    @property
    def all(self) -> tuple[sa.Table, ...]:
        return (
            self.position,
            self.users,
            self.sources,
            self.listings,
            self.installations,
            self.history,
            self.feed_cursors,
            self.manifests,
            self.parked_messages,
            self.tasks,
            self.last_installed,
            self.checkpoints,
        )


def _text(name: str, *, nullable: bool = True) -> sa.Column[str]:
    return sa.Column(name, sa.Text, nullable=nullable)


def define_tables(prefix: str = LIVE_PREFIX, *, indexes: bool = True) -> ViewTables:
    """The view tables, their names prefixed with ``prefix``."""
    metadata = sa.MetaData()
    p = prefix
    position = sa.Table(
        f"{p}projector_position",
        metadata,
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("position", sa.BigInteger, nullable=False),
    )
    users = sa.Table(
        f"{p}users",
        metadata,
        sa.Column("user_name", _NAME, primary_key=True),
        _text("role", nullable=False),
        _text("zone", nullable=False),
        sa.Column("registered", sa.Boolean, nullable=False),
        _text("hash", nullable=False),
        sa.Column("position", sa.BigInteger, nullable=False),
    )
    sources = sa.Table(
        f"{p}sources",
        metadata,
        sa.Column("source_id", _NAME, primary_key=True),
        _text("source_type", nullable=False),
        _text("base_url", nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("removed", sa.Boolean, nullable=False),
        _text("remote_hash", nullable=False),
        _text("catalog_version", nullable=False),
        sa.Column("app_count", sa.Integer, nullable=False),
        _text("extras", nullable=False),
        _text("extras_digest", nullable=False),
        sa.Column("position", sa.BigInteger, nullable=False),
    )
    listings = sa.Table(
        f"{p}listings",
        metadata,
        sa.Column("listing_id", sa.String(32), primary_key=True),
        sa.Column("user_name", _NAME, nullable=False),
        sa.Column("source", _NAME, nullable=False),
        sa.Column("app_id", _NAME, nullable=False),
        _text("name", nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        _text("offered_version", nullable=False),
        _text("offered_digest", nullable=False),
        _text("pending_version"),
        _text("pending_digest"),
        _text("latest_version"),
        _text("latest_digest"),
        _text("labels", nullable=False),
        sa.Column("delisted", sa.Boolean, nullable=False),
        _text("delist_reason"),
        sa.Column("withdrawn", sa.Boolean, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("retry_at", sa.String(32)),
        _text("failure_step"),
        _text("failure_reason"),
        _text("rendered"),
        _text("rendered_digest"),
        sa.Column("updated_at", sa.String(32), nullable=False),
        sa.Column("position", sa.BigInteger, nullable=False),
    )
    installations = sa.Table(
        f"{p}installations",
        metadata,
        sa.Column("installation_id", sa.String(32), primary_key=True),
        sa.Column("user_name", _NAME, nullable=False),
        sa.Column("name", _NAME, nullable=False),
        _text("source", nullable=False),
        _text("state", nullable=False),
        _text("op_type", nullable=False),
        _text("progress", nullable=False),
        _text("app_version", nullable=False),
        _text("raw_app_name", nullable=False),
        _text("title", nullable=False),
        _text("entrances", nullable=False),
        _text("shared_entrances", nullable=False),
        _text("event_id", nullable=False),
        sa.Column("observed_at", sa.String(32), nullable=False),
        _text("origin", nullable=False),
        sa.Column("removed", sa.Boolean, nullable=False),
        sa.Column("position", sa.BigInteger, nullable=False),
    )
    history = sa.Table(
        f"{p}history",
        metadata,
        sa.Column("position", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("user_name", _NAME, nullable=False),
        sa.Column("source", _NAME, nullable=False),
        sa.Column("app", _NAME, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        _text("details", nullable=False),
    )
    feed_cursors = sa.Table(
        f"{p}feed_cursors",
        metadata,
        sa.Column("feed", _NAME, primary_key=True),
        sa.Column("position", sa.BigInteger, nullable=False),
    )
    manifests = sa.Table(
        f"{p}manifests",
        metadata,
        sa.Column("digest", sa.String(DIGEST_LENGTH), primary_key=True),
        sa.Column("app_id", _NAME, nullable=False),
        _text("content", nullable=False),
    )
    if indexes:
        sa.Index(
            f"ix_{p}listings_user_source_app",
            listings.c.user_name,
            listings.c.source,
            listings.c.app_id,
            unique=True,
        )
        sa.Index(f"ix_{p}listings_status", listings.c.status)
        sa.Index(
            f"ix_{p}installations_user_name",
            installations.c.user_name,
            installations.c.name,
            unique=True,
        )
        sa.Index(f"ix_{p}history_user_app", history.c.user_name, history.c.app, history.c.position)
    parked_messages = define_parked_messages(metadata, p, indexes=indexes)
    tasks, last_installed = define_task_tables(metadata, p, indexes=indexes)
    checkpoints = define_checkpoints(metadata, p, indexes=indexes)
    return ViewTables(
        metadata=metadata,
        position=position,
        users=users,
        sources=sources,
        listings=listings,
        installations=installations,
        history=history,
        feed_cursors=feed_cursors,
        manifests=manifests,
        parked_messages=parked_messages,
        tasks=tasks,
        last_installed=last_installed,
        checkpoints=checkpoints,
    )


def define_parked_messages(metadata: sa.MetaData, prefix: str, *, indexes: bool) -> sa.Table:
    """Inbound messages the intake parked, with what became of them."""
    table = sa.Table(
        f"{prefix}parked_messages",
        metadata,
        sa.Column("message_id", sa.String(64), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("failure", sa.String(16), nullable=False),
        _text("subject", nullable=False),
        _text("payload", nullable=False),
        sa.Column("encoding", sa.String(16), nullable=False),
        sa.Column("truncated", sa.Boolean, nullable=False),
        _text("headers", nullable=False),
        _text("reason", nullable=False),
        sa.Column("deliveries", sa.Integer, nullable=False),
        sa.Column("times_parked", sa.Integer, nullable=False),
        sa.Column("replay_failures", sa.Integer, nullable=False),
        _text("resolved_by"),
        sa.Column("parked_at", sa.String(32), nullable=False),
        sa.Column("updated_at", sa.String(32), nullable=False),
        sa.Column("position", sa.BigInteger, nullable=False),
    )
    if indexes:
        sa.Index(f"ix_{prefix}parked_messages_status", table.c.status, table.c.parked_at)
    return table


def define_task_tables(
    metadata: sa.MetaData, prefix: str, *, indexes: bool
) -> tuple[sa.Table, sa.Table]:
    """The tasks (one row per task, as its events left it) and, per user and app, the last
    install, upgrade or clone whose outcome was observed to succeed."""
    tasks = sa.Table(
        f"{prefix}tasks",
        metadata,
        sa.Column("task_id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("user_name", _NAME, nullable=False),
        sa.Column("app_name", _NAME, nullable=False),
        sa.Column("source", _NAME, nullable=False),
        _text("version", nullable=False),
        #: the task's own status (market_ledger.domain.task_events.TaskStatus)
        sa.Column("state", sa.String(24), nullable=False),
        #: the market's wire status: pending, running, completed, failed or canceled
        sa.Column("status", sa.String(16), nullable=False),
        #: the real outcome, once known: succeeded, failed, canceled, timed_out, interrupted
        sa.Column("outcome", sa.String(16)),
        _text("op_id", nullable=False),
        _text("error"),
        #: the request's other fields as JSON (env names with redacted values, flags, clone)
        _text("request", nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("started_at", sa.String(32)),
        sa.Column("accepted_at", sa.String(32)),
        sa.Column("completed_at", sa.String(32)),
        sa.Column("position", sa.BigInteger, nullable=False),
    )
    last_installed = sa.Table(
        f"{prefix}last_installed",
        metadata,
        sa.Column("user_name", _NAME, primary_key=True),
        sa.Column("app_name", _NAME, primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        _text("version", nullable=False),
        sa.Column("source", _NAME, nullable=False),
        sa.Column("task_id", sa.String(32), nullable=False),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("position", sa.BigInteger, nullable=False),
    )
    if indexes:
        sa.Index(f"ix_{prefix}tasks_user_app", tasks.c.user_name, tasks.c.app_name)
        sa.Index(f"ix_{prefix}tasks_state", tasks.c.state)
    return tasks, last_installed


def define_checkpoints(metadata: sa.MetaData, prefix: str, *, indexes: bool) -> sa.Table:
    """The rows time travel starts from (market_ledger.projections.checkpoints): each version
    of a user, source, listing or installation row kept under the checkpoint that follows the
    event that made it, so the state at checkpoint C is, per row, the newest version at or
    before C. ``user_name`` is the row's user (empty for a source, which every user sees);
    ``row`` is NULL for the version the live view still holds."""
    table = sa.Table(
        f"{prefix}checkpoints",
        metadata,
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("row_key", _NAME, primary_key=True),
        sa.Column("checkpoint", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("user_name", _NAME, nullable=False),
        _text("row"),
    )
    if indexes:
        sa.Index(
            f"ix_{prefix}checkpoints_user",
            table.c.user_name,
            table.c.kind,
            table.c.row_key,
            table.c.checkpoint,
        )
    return table
