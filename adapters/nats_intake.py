"""The NATS intake: app-state and user events in, as commands.

With JetStream (the normal case) a stream captures the app-state and user subjects, so
nothing published while the service is down or restarting is lost, and a durable pull
consumer takes the messages a batch at a time. A batch is acknowledged only after the
handler committed its events; a crash in between redelivers it, which is harmless: the
domain ignores an event id it has seen, and records an observation older than the applied
one as ignored instead of applying it. The same holds for publisher duplicates (the
``Nats-Msg-Id`` header, when a publisher sets one, also lets the stream drop a duplicate
within its window, and stands in for a missing ``eventID``) and for messages out of order.

A malformed message is logged with the reason, counted and terminated (never redelivered).
A batch the handler fails on is retried message by message, so one bad message does not hold
back the others; a message that keeps failing for a reason other than the database being
unreachable is terminated after ``poison_after`` deliveries and logged as an error.

Without JetStream the intake falls back to plain subscriptions (one queue group, so replicas
share the work) and says so in the log: delivery is then at most once.

State messages for a user who is not registered are recorded all the same (the user's catalog
shows them once the user is registered), and logged and counted as ``unknown_user``.

Counted in ``ledger_nats_intake_total{kind, outcome}``: kind ``app_state`` or ``user``;
outcome ``accepted``, ``unknown_user``, ``rejected`` (the domain refused the command, e.g.
removing an unknown user), ``ignored`` (a user event that changes nothing), ``malformed``,
``retried`` (handed back for redelivery) or ``failed`` (given up on).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

import attrs
import eventsourcing.persistence as es_persistence
import nats.errors
import nats.js.errors
import sqlalchemy.exc
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import api
from nats.js.client import JetStreamContext
from sqlalchemy.engine import Connection

from adapters.config import Settings
from adapters.metrics import NATS_INTAKE
from adapters.nats_connection import NatsConnection, display_url, jetstream_available
from adapters.nats_messages import (
    MalformedMessage,
    parse_app_state,
    parse_user_event,
    with_known_invisibility,
    with_resolved_sources,
)
from domain import commands as c
from domain.handler import CommandHandler, ConcurrencyConflict
from projections.queries import registered_users
from projections.schema import ViewTables

log = logging.getLogger(__name__)

#: without JetStream, how often a batch that fails is tried before it is reported lost
CORE_ATTEMPTS = 5

DEFAULT_STREAM = "MARKET_LEDGER_INTAKE"
DEFAULT_DURABLE = "market-ledger-intake"
APP_STATE = "app_state"
USER = "user"
WEEK = 7 * 24 * 3600.0

PullSubscription = JetStreamContext.PullSubscription

_TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,
    ConcurrencyConflict,
    sqlite3.OperationalError,
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    es_persistence.OperationalError,
    es_persistence.InterfaceError,
)


class IntakeLedger(Protocol):
    """What the intake needs of the wired ledger."""

    handler: CommandHandler
    tables: ViewTables

    def read(self) -> AbstractContextManager[Connection]: ...


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: ``*`` matches one token, a final ``>`` one or more."""
    want, have = pattern.split("."), subject.split(".")
    for index, token in enumerate(want):
        if token == ">":
            return len(have) > index
        if index >= len(have) or (token != "*" and token != have[index]):
            return False
    return len(want) == len(have)


@attrs.frozen
class Applied:
    """What one call of the handler did with a batch of commands, by index in the batch."""

    events: int
    rejected: dict[int, str] = attrs.field(factory=dict)
    unknown_users: frozenset[int] = frozenset()
    #: the log position of the last event written, if any
    position: int | None = None


@attrs.frozen
class _Parsed:
    message: Msg
    kind: str
    command: c.Command


class NatsIntake:
    def __init__(
        self,
        ledger: IntakeLedger,
        settings: Settings,
        *,
        connection: NatsConnection | None = None,
        stream: str = DEFAULT_STREAM,
        durable: str = DEFAULT_DURABLE,
        batch_size: int = 256,
        fetch_timeout: float = 0.5,
        gather_timeout: float = 0.005,
        ack_wait: float = 30.0,
        max_age: float = WEEK,
        duplicate_window: float = 120.0,
        poison_after: int = 20,
        jetstream: bool | None = None,
        on_commit: Callable[[int], None] | None = None,
    ) -> None:
        """``connection`` may be shared with the notifier (its owner closes it); without one,
        the intake opens its own from ``settings.nats_url`` (no URL: NATS is off).
        ``jetstream`` forces the mode; None asks the server. A batch is the first message
        (waited for up to ``fetch_timeout``) and what else arrives within ``gather_timeout``,
        up to ``batch_size``. ``on_commit(position)`` is called after each transaction that
        wrote events, e.g. to wake the projector instead of letting it poll."""
        self.ledger = ledger
        self.settings = settings
        self._owns_connection = connection is None and settings.nats_url is not None
        if connection is None and settings.nats_url is not None:
            connection = NatsConnection(settings.nats_url, name="market-ledger-intake")
        self.connection = connection
        self.stream = stream
        self.durable = durable
        self.batch_size = batch_size
        self.fetch_timeout = fetch_timeout
        self.gather_timeout = gather_timeout
        self.ack_wait = ack_wait
        self.max_age = max_age
        self.duplicate_window = duplicate_window
        self.poison_after = poison_after
        self.jetstream = jetstream
        self.on_commit = on_commit
        #: "off", "starting", "jetstream" or "core", for status reports
        self.mode = "off" if connection is None else "starting"

    @property
    def subjects(self) -> list[str]:
        subjects = [self.settings.subject_app_state]
        if self.settings.subject_user_state:
            subjects.append(self.settings.subject_user_state)
        return subjects

    # --- running -------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Take messages in until ``stop`` is set; survives NATS going away, without limit."""
        if self.connection is None:
            log.info("NATS is off (no NATS_URL): app-state and user events are not taken in")
            await stop.wait()
            return
        try:
            use_jetstream = await self._choose_mode(stop)
            if use_jetstream is None:
                return
            if use_jetstream:
                await self._run_jetstream(stop)
            else:
                await self._run_core(stop)
        finally:
            if self._owns_connection:
                await self.connection.close()

    async def _choose_mode(self, stop: asyncio.Event) -> bool | None:
        assert self.connection is not None
        while not stop.is_set():
            client = await self.connection.connect(stop)
            if client is None:
                return None
            if self.jetstream is not None:
                return self.jetstream
            try:
                return await jetstream_available(client)
            except (TimeoutError, nats.errors.Error) as error:
                log.warning(
                    "NATS: cannot tell whether JetStream is available (%s); asking again", error
                )
                await _sleep(stop, 1.0)
        return None

    async def _run_jetstream(self, stop: asyncio.Event) -> None:
        assert self.connection is not None
        delay = 0.5
        while not stop.is_set():
            client = await self.connection.connect(stop)
            if client is None:
                return
            subscription: PullSubscription | None = None
            try:
                stream, subscription = await self._subscribe(client)
                self.mode = "jetstream"
                log.info(
                    "NATS: taking in %s from stream %s with durable consumer %s (JetStream)",
                    ", ".join(self.subjects),
                    stream,
                    self.durable,
                )
                delay = 0.5
                await self._consume(subscription, stop)
            except (TimeoutError, nats.errors.Error, OSError) as error:
                log.warning(
                    "NATS: JetStream intake interrupted (%s: %s); setting it up again in %gs",
                    type(error).__name__,
                    error,
                    delay,
                )
                await _sleep(stop, delay)
                delay = min(delay * 2, 10.0)
            except Exception:
                log.exception("NATS: JetStream intake failed; setting it up again in %gs", delay)
                await _sleep(stop, delay)
                delay = min(delay * 2, 10.0)
            finally:
                if subscription is not None:
                    with contextlib.suppress(Exception):
                        await subscription.unsubscribe()

    async def _subscribe(self, client: Client) -> tuple[str, PullSubscription]:
        js = client.jetstream(timeout=5.0)
        stream = await self._ensure_stream(js)
        subjects = self.subjects
        config = api.ConsumerConfig(
            durable_name=self.durable,
            deliver_policy=api.DeliverPolicy.ALL,
            ack_policy=api.AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait,
            max_deliver=-1,
            max_ack_pending=max(4 * self.batch_size, 1000),
            filter_subject=subjects[0] if len(subjects) == 1 else None,
            filter_subjects=subjects if len(subjects) > 1 else None,
        )
        await js.add_consumer(stream, config)
        subscription = await js.pull_subscribe_bind(
            durable=self.durable, stream=stream, pending_msgs_limit=16 * self.batch_size
        )
        return stream, subscription

    async def _ensure_stream(self, js: JetStreamContext) -> str:
        """The stream capturing our subjects: ours (created or extended), or one that already
        captures them."""
        subjects = self.subjects
        try:
            info = await js.stream_info(self.stream)
        except nats.js.errors.NotFoundError:
            pass
        else:
            have = list(info.config.subjects or [])
            missing = [s for s in subjects if s not in have]
            if missing:
                await js.update_stream(info.config.evolve(subjects=have + missing))
                log.info("NATS: stream %s now also captures %s", self.stream, ", ".join(missing))
            return self.stream
        config = api.StreamConfig(
            name=self.stream,
            subjects=subjects,
            retention=api.RetentionPolicy.LIMITS,
            storage=api.StorageType.FILE,
            max_age=self.max_age,
            duplicate_window=self.duplicate_window,
        )
        try:
            await js.add_stream(config)
        except nats.js.errors.BadRequestError as error:
            # Another stream may capture the subjects already (subjects overlap).
            owners = {await _stream_of(js, subject) for subject in subjects}
            if len(owners) == 1 and None not in owners:
                owner = owners.pop()
                assert owner is not None
                log.info("NATS: stream %s already captures %s; using it", owner, subjects)
                return owner
            raise error
        log.info("NATS: created stream %s capturing %s", self.stream, ", ".join(subjects))
        return self.stream

    async def _consume(self, subscription: PullSubscription, stop: asyncio.Event) -> None:
        assert self.connection is not None
        while not stop.is_set():
            if not self.connection.connected:
                await _sleep(stop, 0.1)  # do not queue pull requests behind a dead socket
                continue
            try:
                messages = await subscription.fetch(1, timeout=self.fetch_timeout)
            except TimeoutError:  # nothing to take in (the client raises either kind)
                continue
            if self.batch_size > 1:
                # A pull for many messages is held until it is full or expires: gather for
                # a few milliseconds only, so a trickle is not held back for a batch.
                with contextlib.suppress(TimeoutError):
                    messages += await subscription.fetch(
                        self.batch_size - 1, timeout=self.gather_timeout
                    )
            await self.process(messages, durable=True)

    async def _run_core(self, stop: asyncio.Event) -> None:
        assert self.connection is not None
        self.mode = "core"
        queue: asyncio.Queue[Msg] = asyncio.Queue()

        async def enqueue(message: Msg) -> None:
            queue.put_nowait(message)

        client = await self.connection.connect(stop)
        if client is None:
            return
        subscriptions: list[Subscription] = []
        for subject in self.subjects:
            subscriptions.append(
                await client.subscribe(
                    subject,
                    queue=self.durable,
                    cb=enqueue,
                    pending_msgs_limit=1_000_000,
                    pending_bytes_limit=1024 * 1024 * 1024,
                )
            )
        log.warning(
            "NATS: %s has no JetStream; taking in %s through plain subscriptions: messages "
            "published while this service is down are lost",
            display_url(self.connection.url),
            ", ".join(self.subjects),
        )
        stopping = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                getting = asyncio.create_task(queue.get())
                await asyncio.wait({getting, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not getting.done():
                    getting.cancel()
                    break
                batch = [getting.result()]
                while len(batch) < self.batch_size and not queue.empty():
                    batch.append(queue.get_nowait())
                await self.process(batch, durable=False)
        finally:
            stopping.cancel()
            for subscription in subscriptions:
                with contextlib.suppress(Exception):
                    await subscription.unsubscribe()

    # --- processing ------------------------------------------------------------------------------

    def kind_of(self, subject: str) -> str:
        """``user`` on the user subject, else ``app_state``."""
        if subject_matches(self.settings.subject_app_state, subject):
            return APP_STATE
        user_subject = self.settings.subject_user_state
        return USER if user_subject and subject_matches(user_subject, subject) else APP_STATE

    def parse(self, kind: str, message: Msg) -> c.Command | None:
        if kind == APP_STATE:
            return parse_app_state(message.data, subject=message.subject, headers=message.headers)
        return parse_user_event(message.data)

    async def process(self, messages: Sequence[Msg], *, durable: bool) -> None:
        """Parse, handle in one transaction, then acknowledge (``durable``) a batch."""
        parsed: list[_Parsed] = []
        for message in messages:
            kind = self.kind_of(message.subject)
            try:
                command = self.parse(kind, message)
            except MalformedMessage as error:
                log.warning(
                    "NATS: malformed %s message on %s (%s); %s",
                    kind,
                    message.subject,
                    error,
                    "terminated" if durable else "dropped",
                )
                NATS_INTAKE.labels(kind, "malformed").inc()
                if durable:
                    await message.term()
                continue
            if command is None:
                NATS_INTAKE.labels(kind, "ignored").inc()
                if durable:
                    await message.ack()
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
        if applied.position is not None and self.on_commit is not None:
            self.on_commit(applied.position)
        for index, item in enumerate(parsed):
            if index in applied.rejected:
                log.info(
                    "NATS: %s message on %s refused: %s",
                    item.kind,
                    item.message.subject,
                    applied.rejected[index],
                )
                outcome = "rejected"
            elif index in applied.unknown_users:
                command = item.command
                assert isinstance(command, c.ObserveInstallationState)
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
                await item.message.ack()

    async def _failed(self, item: _Parsed, error: Exception, *, durable: bool) -> None:
        message = item.message
        if not durable:
            # Nothing redelivers a plain subscription's message: try again a few times (the
            # store may be busy for a moment) before reporting it lost.
            delay = 0.5
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
                "NATS: %s message on %s lost after %d attempts: handling failed (%s: %s)",
                item.kind,
                message.subject,
                CORE_ATTEMPTS,
                type(error).__name__,
                error,
            )
            NATS_INTAKE.labels(item.kind, "failed").inc()
            return
        delivered = message.metadata.num_delivered or 1
        if not isinstance(error, _TRANSIENT) and delivered >= self.poison_after:
            log.error(
                "NATS: %s message on %s failed %d times (%s: %s); terminated",
                item.kind,
                message.subject,
                delivered,
                type(error).__name__,
                error,
            )
            NATS_INTAKE.labels(item.kind, "failed").inc()
            await message.term()
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
        await message.nak(delay=delay)

    # --- the transaction (runs in a worker thread) ------------------------------------------------

    def apply(self, commands: Sequence[c.Command]) -> Applied:
        """Resolve sources, note unknown users and handle the commands in one transaction.

        A ``RegisterUser`` for a user who is registered already is left out: a repeated
        "user created" event must not reset a role an operator gave. Whether a user exists
        is read from the store for user events, and from the views (then the store, for a
        user the views do not know yet) for state messages, which only report it.
        """
        users = {
            command.user for command in commands if isinstance(command, c.ObserveInstallationState)
        }
        with self.ledger.read() as conn:
            batch = with_resolved_sources(conn, self.ledger.tables, commands)
            batch = with_known_invisibility(conn, self.ledger.tables, batch)
            in_views = registered_users(conn, self.ledger.tables, users)
        registered: dict[str, bool] = {}

        def is_registered(name: str, *, views_suffice: bool = False) -> bool:
            if name not in registered:
                if views_suffice and name in in_views:
                    registered[name] = True
                else:
                    state: Any = self.ledger.handler.state_of(c.RegisterUser(name))
                    registered[name] = bool(state is not None and state.registered)
            return registered[name]

        chosen: list[tuple[int, c.Command]] = []
        unknown: set[int] = set()
        for index, command in enumerate(batch):
            if isinstance(command, c.RegisterUser):
                if is_registered(command.name):
                    continue
                registered[command.name] = True
            elif isinstance(command, c.RemoveUser):
                is_registered(command.name)
                registered[command.name] = False
            elif isinstance(command, c.ObserveInstallationState) and not is_registered(
                command.user, views_suffice=True
            ):
                unknown.add(index)
            chosen.append((index, command))
        if not chosen:
            return Applied(events=0)
        outcome = self.ledger.handler.handle(*(command for _, command in chosen))
        index_of = {id(command): index for index, command in chosen}
        rejected = {index_of[id(r.command)]: r.reason for r in outcome.rejections}
        return Applied(len(outcome.events), rejected, frozenset(unknown), outcome.position)


async def _stream_of(js: JetStreamContext, subject: str) -> str | None:
    try:
        return await js.find_stream_name_by_subject(subject)
    except nats.js.errors.NotFoundError:
        return None


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    """Sleep, waking early when ``stop`` is set."""
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
