"""What the intake does with each message it receives, whatever goes wrong.

Whatever goes wrong with one message is that message's failure, never the intake's: it is
counted, logged and, when it will not get better by itself, parked in the store
(:mod:`market_ledger.adapters.nats.parking`) for an operator to list, replay or discard.

* A malformed message, or one whose parsing fails in any other way, is parked at once and
  terminated (it would fail the same way again).
* A batch the handler fails on is retried message by message, so one bad message does not
  hold back the others. With JetStream a message that keeps failing for a reason other than
  the database being unreachable is parked and terminated after ``poison_after``
  deliveries; before that it is handed back for redelivery, with a growing delay.
* Without JetStream nothing redelivers a message: one whose handling fails ``CORE_ATTEMPTS``
  times is parked.
* When even parking fails (the store is down), a JetStream message is handed back for
  redelivery; a plain subscription's is logged as lost, with its subject and payload.
* A failure to acknowledge (the connection dropped) only means a redelivery, which
  handling again tolerates.

State messages for a user who is not registered are recorded all the same (the user's catalog
shows them once the user is registered), and logged and counted as ``unknown_user``.

Counted in ``ledger_nats_intake_total{kind, outcome}``: kind ``app_state`` or ``user``;
outcome ``accepted``, ``unknown_user``, ``rejected`` (the domain refused the command, e.g.
removing an unknown user), ``ignored`` (a user event that changes nothing), ``malformed``
(parked as such), ``parked`` (parsing or handling failed for good: parked), ``retried``
(handed back for redelivery) or ``failed`` (lost: not even parking it worked).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Sequence

import attrs
import eventsourcing.persistence as es_persistence
import sqlalchemy.exc
from nats.aio.msg import Msg

from market_ledger.adapters.config import Settings
from market_ledger.adapters.metrics import NATS_INTAKE
from market_ledger.adapters.nats.messages import parse_message
from market_ledger.adapters.nats.parking import park_command, redact_payload
from market_ledger.adapters.nats.streams import subject_matches
from market_ledger.domain import parked_message as pm
from market_ledger.domain.decider import Command
from market_ledger.domain.installation import ObserveInstallationState
from market_ledger.service.handler import ConcurrencyConflict
from market_ledger.service.intake import (
    APP_STATE,
    USER,
    Applied,
    IntakeLedger,
    MalformedMessage,
    Parser,
    apply_commands,
    command_for,
    failure_reason,
)

#: the intake's own logger: operators follow one logger for everything the intake does
log = logging.getLogger("market_ledger.adapters.nats.intake")

#: without JetStream, how often a message that fails is tried before it is parked
CORE_ATTEMPTS = 5
#: how much of a lost message's payload its log line shows
LOST_PAYLOAD_SHOWN = 2048

_TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,
    ConcurrencyConflict,
    sqlite3.OperationalError,
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    es_persistence.OperationalError,
    es_persistence.InterfaceError,
)


@attrs.frozen
class _Parsed:
    message: Msg
    kind: str
    command: Command


class MessageProcessor:
    def __init__(
        self,
        ledger: IntakeLedger,
        settings: Settings,
        *,
        poison_after: int = 20,
        core_retry_delay: float = 0.5,
        parse: Parser = parse_message,
    ) -> None:
        self.ledger = ledger
        self.settings = settings
        self.poison_after = poison_after
        self.core_retry_delay = core_retry_delay
        self.parse_message = parse

    def kind_of(self, subject: str) -> str:
        """``user`` on the user subject, else ``app_state``."""
        if subject_matches(self.settings.subject_app_state, subject):
            return APP_STATE
        user_subject = self.settings.subject_user_state
        return USER if user_subject and subject_matches(user_subject, subject) else APP_STATE

    def parse(self, kind: str, message: Msg) -> Command | None:
        """The command a message becomes (None: it changes nothing)."""
        read = self.parse_message(kind, message.data, message.subject, message.headers)
        return None if read is None else command_for(read)

    async def process_guarded(self, messages: Sequence[Msg], *, durable: bool) -> None:
        """:meth:`process`, which handles every failure of a message itself; should anything
        escape it all the same, the intake goes on (unsettled JetStream messages come back
        after the acknowledgement wait)."""
        try:
            await self.process(messages, durable=durable)
        except Exception:
            log.exception(
                "NATS: a batch of %d messages failed unexpectedly; %s",
                len(messages),
                "unsettled ones are redelivered" if durable else "taking in the next",
            )

    async def process(self, messages: Sequence[Msg], *, durable: bool) -> None:
        """Parse, handle in one transaction, then acknowledge (``durable``) a batch."""
        parsed: list[_Parsed] = []
        for message in messages:
            kind = APP_STATE
            try:
                kind = self.kind_of(message.subject)
                command = self.parse(kind, message)
            except MalformedMessage as error:
                log.warning(
                    "NATS: malformed %s message on %s (%s); parking it, then %s",
                    kind,
                    message.subject,
                    error,
                    "terminated" if durable else "dropped",
                )
                await self._park(
                    message, kind, pm.MALFORMED, error, durable=durable, outcome="malformed"
                )
                continue
            except Exception as error:
                log.error(
                    "NATS: parsing a %s message on %s failed (%s: %s); parking it, then %s",
                    kind,
                    message.subject,
                    type(error).__name__,
                    error,
                    "terminated" if durable else "dropped",
                )
                await self._park(message, kind, pm.UNPARSABLE, error, durable=durable)
                continue
            if command is None:
                NATS_INTAKE.labels(kind, "ignored").inc()
                if durable:
                    await _settle_quietly(message.ack())
                continue
            parsed.append(_Parsed(message, kind, command))
        if not parsed:
            return
        try:
            applied = await asyncio.to_thread(self.apply, [p.command for p in parsed])
        except Exception as error:
            log.warning(
                "NATS: handling a batch of %d messages failed (%s: %s); retrying one by one",
                len(parsed),
                type(error).__name__,
                error,
            )
            await self._one_by_one(parsed, durable=durable)
            return
        await self._settle(parsed, applied, durable=durable)

    async def _one_by_one(self, parsed: Sequence[_Parsed], *, durable: bool) -> None:
        for item in parsed:
            try:
                applied = await asyncio.to_thread(self.apply, [item.command])
            except Exception as error:
                await self._failed(item, error, durable=durable)
            else:
                await self._settle([item], applied, durable=durable)

    async def _settle(self, parsed: Sequence[_Parsed], applied: Applied, *, durable: bool) -> None:
        for index, item in enumerate(parsed):
            command = item.command
            if index in applied.rejected:
                log.info(
                    "NATS: %s message on %s refused: %s",
                    item.kind,
                    item.message.subject,
                    applied.rejected[index],
                )
                outcome = "rejected"
            elif index in applied.unknown_users and isinstance(command, ObserveInstallationState):
                log.warning(
                    "NATS: app state of %r for unknown user %r recorded; it shows in the "
                    "user's catalog once the user is registered",
                    command.name,
                    command.user,
                )
                outcome = "unknown_user"
            else:
                outcome = "accepted"
            NATS_INTAKE.labels(item.kind, outcome).inc()
            if durable:
                await _settle_quietly(item.message.ack())

    async def _failed(self, item: _Parsed, error: Exception, *, durable: bool) -> None:
        message = item.message
        if not durable:
            # Nothing redelivers a plain subscription's message: try again a few times (the
            # store may be busy for a moment) before parking it.
            delay = self.core_retry_delay
            for _ in range(CORE_ATTEMPTS - 1):
                await asyncio.sleep(delay)
                delay *= 2
                try:
                    applied = await asyncio.to_thread(self.apply, [item.command])
                except Exception as again:
                    error = again
                    continue
                await self._settle([item], applied, durable=False)
                return
            log.error(
                "NATS: %s message on %s not handled after %d attempts (%s: %s); parked",
                item.kind,
                message.subject,
                CORE_ATTEMPTS,
                type(error).__name__,
                error,
            )
            await self._park(
                message, item.kind, pm.FAILED, error, durable=False, deliveries=CORE_ATTEMPTS
            )
            return
        delivered = _deliveries(message)
        if not isinstance(error, _TRANSIENT) and delivered >= self.poison_after:
            log.error(
                "NATS: %s message on %s failed %d times (%s: %s); parking it, then terminated",
                item.kind,
                message.subject,
                delivered,
                type(error).__name__,
                error,
            )
            await self._park(message, item.kind, pm.FAILED, error, durable=True)
            return
        delay = min(2.0 ** (delivered - 1), 30.0)
        log.warning(
            "NATS: %s message on %s not handled (%s: %s); redelivery in %gs",
            item.kind,
            message.subject,
            type(error).__name__,
            error,
            delay,
        )
        NATS_INTAKE.labels(item.kind, "retried").inc()
        await _settle_quietly(message.nak(delay=delay))

    # --- parking ---------------------------------------------------------------------------------

    async def _park(
        self,
        message: Msg,
        kind: str,
        failure: str,
        error: BaseException,
        *,
        durable: bool,
        outcome: str = "parked",
        deliveries: int | None = None,
    ) -> None:
        """Record the message in the store, count ``outcome``, then terminate it (JetStream).

        When the store cannot take the record, a JetStream message is handed back for
        redelivery; a plain subscription's is tried a few more times, then logged as lost,
        with its payload, as is one whose record the domain refuses (which the record's
        clean-up should make impossible).
        """
        attempts = 1 if durable else CORE_ATTEMPTS
        delay = self.core_retry_delay
        problem: BaseException | None = None
        for attempt in range(1, attempts + 1):
            try:
                command = park_command(
                    kind=kind,
                    subject=message.subject,
                    data=message.data or b"",
                    headers=message.headers,
                    failure=failure,
                    reason=failure_reason(error),
                    deliveries=deliveries or _deliveries(message),
                )
                recorded = await asyncio.to_thread(self.ledger.handler.handle, command)
            except Exception as failed:
                problem = failed
                if attempt < attempts:
                    await asyncio.sleep(delay)
                    delay *= 2
                continue
            if recorded.rejections:
                self._lost(message, kind, "; ".join(r.reason for r in recorded.rejections))
            else:
                NATS_INTAKE.labels(kind, outcome).inc()
            if durable:
                await _settle_quietly(message.term())
            return
        assert problem is not None
        if durable:
            delay = min(2.0 ** (_deliveries(message) - 1), 30.0)
            log.warning(
                "NATS: parking a %s message on %s failed (%s: %s); redelivery in %gs",
                kind,
                message.subject,
                type(problem).__name__,
                problem,
                delay,
            )
            NATS_INTAKE.labels(kind, "retried").inc()
            await _settle_quietly(message.nak(delay=delay))
            return
        self._lost(message, kind, f"{type(problem).__name__}: {problem}")

    @staticmethod
    def _lost(message: Msg, kind: str, why: str) -> None:
        """The last resort: the log line is the only record, so it carries the payload."""
        shown = redact_payload(message.data or b"")[:LOST_PAYLOAD_SHOWN]
        log.error(
            "NATS: %s message on %s lost: it could not be parked either (%s); payload: %s",
            kind,
            message.subject,
            why,
            shown.decode("utf-8", errors="backslashreplace"),
        )
        NATS_INTAKE.labels(kind, "failed").inc()

    # --- the transaction (runs in a worker thread) ------------------------------------------------

    def apply(self, commands: Sequence[Command]) -> Applied:
        """Handle the commands in one transaction (see :func:`apply_commands`)."""
        return apply_commands(self.ledger, commands)


def _deliveries(message: Msg) -> int:
    """How often JetStream delivered the message (1 for a plain subscription's)."""
    try:
        return int(message.metadata.num_delivered or 1)
    except Exception:
        return 1


async def _settle_quietly(settling: Awaitable[None]) -> None:
    """Acknowledge, hand back or terminate a message; a failure to (the connection dropped)
    only means it is redelivered, which handling again tolerates."""
    try:
        await settling
    except Exception as error:
        log.warning("NATS: settling a message failed (%s: %s)", type(error).__name__, error)
