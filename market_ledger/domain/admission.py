"""Which commands the views can hold: the limits of :mod:`market_ledger.domain.limits`, field by
field.

The command handler runs :func:`check_command` before deciding, so whatever built the
command (the pipeline, the NATS intake, the HTTP API, the CLI), a value the views cannot
hold is a rejection naming the field and the limit, reported like any other, and never an
event that stops the projector. Every command type must say which of its fields are names:
a new command without an entry here fails loudly instead of slipping past the limits.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import attrs

from market_ledger.domain import parked_message as pm
from market_ledger.domain import task
from market_ledger.domain.decider import Command
from market_ledger.domain.feed_cursor import ConsumeFeed
from market_ledger.domain.installation import ObserveInstallationState, RemoveInstallation
from market_ledger.domain.limits import (
    DIGEST_LENGTH,
    INT32,
    INT64,
    LimitExceeded,
    check_instant,
    check_integer,
    check_name,
    check_text,
)
from market_ledger.domain.listing import (
    DelistApp,
    OfferApp,
    RecordRender,
    RecordRenderFailure,
    RetryParked,
    UpdateImageInfo,
    WithdrawListing,
)
from market_ledger.domain.manifest_record import RecordManifest
from market_ledger.domain.market_source import (
    ConfigureSource,
    ObserveCatalog,
    RemoveSource,
    UpdateSourceExtras,
)
from market_ledger.domain.user import EnsureUserRegistered, MarkUserDirty, RegisterUser, RemoveUser

#: per command type, its fields that are names (keys of the views)
NAME_FIELDS: dict[type[Command], tuple[str, ...]] = {
    RegisterUser: ("name",),
    EnsureUserRegistered: ("name",),
    RemoveUser: ("name",),
    MarkUserDirty: ("name",),
    ConfigureSource: ("source_id",),
    RemoveSource: ("source_id",),
    ObserveCatalog: ("source_id",),
    UpdateSourceExtras: ("source_id",),
    OfferApp: ("user", "source", "app_id"),
    DelistApp: ("user", "source", "app_id"),
    RecordRender: ("user", "source", "app_id"),
    RecordRenderFailure: ("user", "source", "app_id"),
    RetryParked: ("user", "source", "app_id"),
    UpdateImageInfo: ("user", "source", "app_id"),
    WithdrawListing: ("user", "source", "app_id"),
    # an installation's source is shown in history beside the listings' sources
    ObserveInstallationState: ("user", "name", "source"),
    RemoveInstallation: ("user", "name"),
    ConsumeFeed: ("feed",),
    RecordManifest: (),
    # a parked message is named by a digest; its texts are checked like any other
    pm.ParkMessage: (),
    pm.RecordReplayFailure: (),
    pm.RecordReplay: (),
    pm.DiscardParkedMessage: (),
    # a task's names are those of the app it operates on; the others are checked as text
    task.RequestTask: ("user", "app_name", "source"),
    task.DispatchTask: (),
    task.AcceptTask: (),
    task.ReconcileTask: (),
    task.RejectTask: (),
    task.DequeueTask: (),
    task.SettleCancelInQueue: (),
    task.ObserveOutcome: (),
    task.TimeOutTask: (),
    task.InterruptTask: (),
}
#: per command type, its diagnostic text: made printable by the decider, never refused
DIAGNOSTIC_FIELDS: dict[type[Command], tuple[str, ...]] = {
    MarkUserDirty: ("reason",),
    DelistApp: ("reason",),
    RecordRenderFailure: ("step", "reason"),
    RetryParked: ("requested_by",),
    WithdrawListing: ("reason",),
    # app-service's answers and app states come from outside: kept printable, never refused
    task.RejectTask: ("reason", "backend_answer"),
    task.ReconcileTask: ("found",),
    task.ObserveOutcome: ("app_state",),
    task.InterruptTask: ("reason",),
}


def _manifest(manifest: Any) -> None:
    check_name("manifest.app_id", manifest.app_id)
    check_text("manifest.name", manifest.name)
    check_text("manifest.version", manifest.version)
    if len(manifest.digest) != DIGEST_LENGTH:
        raise LimitExceeded("manifest.digest", f"is not {DIGEST_LENGTH} characters long")


def _optional_instant(field: str, value: datetime | None) -> None:
    if value is not None:
        check_instant(field, value)


_OTHER_CHECKS: dict[type[Command], Callable[[Any], None]] = {
    ConfigureSource: lambda command: check_integer("priority", command.priority, INT32),
    ObserveCatalog: lambda command: check_integer("app_count", command.app_count, (0, INT32[1])),
    ConsumeFeed: lambda command: check_integer("up_to_id", command.up_to_id, INT64),
    OfferApp: lambda command: _manifest(command.manifest),
    RecordManifest: lambda command: _manifest(command.manifest),
    ObserveInstallationState: lambda command: check_instant("observed_at", command.observed_at),
    RemoveInstallation: lambda command: check_instant("observed_at", command.observed_at),
    task.ObserveOutcome: lambda command: _optional_instant("observed_at", command.observed_at),
}


def _known(command_type: type[Command]) -> type[Command]:
    for candidate in command_type.__mro__:
        if candidate in NAME_FIELDS:
            return candidate
    raise TypeError(f"no limits are known for {command_type.__name__}")


_TEXT_FIELDS: dict[type[Command], tuple[str, ...]] = {}


def _text_fields(command_type: type[Command]) -> tuple[str, ...]:
    """The plain text fields that are not names (nested values are stored as JSON)."""
    found = _TEXT_FIELDS.get(command_type)
    if found is None:
        kind = _known(command_type)
        skipped = {*NAME_FIELDS[kind], *DIAGNOSTIC_FIELDS.get(kind, ())}
        found = _TEXT_FIELDS[command_type] = tuple(
            field.name
            for field in attrs.fields(command_type)
            if field.type in (str, "str") and field.name not in skipped
        )
    return found


def check_command(command: Command) -> None:
    """Refuse (:class:`LimitExceeded`) a command carrying a value the views cannot hold."""
    kind = _known(type(command))
    for field in NAME_FIELDS[kind]:
        check_name(field, getattr(command, field))
    for field in _text_fields(type(command)):
        check_text(field, getattr(command, field))
    other = _OTHER_CHECKS.get(kind)
    if other is not None:
        other(command)
