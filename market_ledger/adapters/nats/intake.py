"""The NATS intake: app-state and user events in, as commands.

With JetStream (the normal case) a stream captures the app-state and user subjects, so
nothing published while the service is down or restarting is lost, and a durable pull
consumer takes the messages a batch at a time (which stream and consumer, and when the
intake refuses to share one with another deployment: :mod:`market_ledger.adapters.nats.streams`). A
batch
is acknowledged only after the handler committed its events; a crash in between redelivers
it, which is harmless: the domain ignores an event id it has seen, and records an
observation older than the applied one as ignored instead of applying it. The same holds
for publisher duplicates (the ``Nats-Msg-Id`` header, when a publisher sets one, also lets
the stream drop a duplicate within its window, and stands in for a missing ``eventID``) and
for messages out of order.

Without JetStream the intake falls back to plain subscriptions (one queue group, so replicas
share the work) and says so in the log: delivery is then at most once.

What happens to each message, and why one message's failure is never the intake's:
:mod:`market_ledger.adapters.nats.processing`. The intake stops only when told to, or when it
refuses a
stream or consumer that would take another deployment's messages (:class:`IntakeConflict`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

import attrs
import nats.errors
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from market_ledger.adapters.config import Settings
from market_ledger.adapters.nats.connection import NatsConnection, display_url, jetstream_available
from market_ledger.adapters.nats.messages import parse_message
from market_ledger.adapters.nats.processing import MessageProcessor
from market_ledger.adapters.nats.streams import (
    IntakeConflict,
    PullSubscription,
    intake_names,
    intake_subjects,
    subject_matches,
    subscribe,
)
from market_ledger.service.intake import IntakeLedger, Parser

log = logging.getLogger(__name__)

WEEK = 7 * 24 * 3600.0

__all__ = ["IntakeConflict", "NatsIntake", "subject_matches"]


class NatsIntake:
    def __init__(
        self,
        ledger: IntakeLedger,
        settings: Settings,
        *,
        connection: NatsConnection | None = None,
        stream: str | None = None,
        durable: str | None = None,
        batch_size: int = 256,
        fetch_timeout: float = 0.5,
        gather_timeout: float = 0.005,
        ack_wait: float = 30.0,
        max_age: float = WEEK,
        duplicate_window: float = 120.0,
        poison_after: int = 20,
        core_retry_delay: float = 0.5,
        jetstream: bool | None = None,
        parse: Parser = parse_message,
    ) -> None:
        """``connection`` may be shared with the notifier (its owner closes it); without one,
        the intake opens its own from ``settings.nats_url`` (no URL: NATS is off).
        ``stream`` and ``durable`` default to the configured or derived names
        (:func:`market_ledger.adapters.nats.streams.intake_names`). ``jetstream`` forces the mode;
        None asks the server. A batch is the first message (waited for up to
        ``fetch_timeout``) and what else arrives within ``gather_timeout``, up to
        ``batch_size``. ``parse`` turns a message into its command (the default reads the
        wire formats of :mod:`market_ledger.adapters.nats.messages`)."""
        self.ledger = ledger
        self.settings = settings
        self._owns_connection = connection is None and settings.nats_url is not None
        if connection is None and settings.nats_url is not None:
            connection = NatsConnection(settings.nats_url, name="market-ledger-intake")
        self.connection = connection
        names = intake_names(settings)
        self.stream = stream or names.stream
        self.durable = durable or names.durable
        self.batch_size = batch_size
        self.fetch_timeout = fetch_timeout
        self.gather_timeout = gather_timeout
        self.ack_wait = ack_wait
        self.max_age = max_age
        self.duplicate_window = duplicate_window
        self.jetstream = jetstream
        #: what happens to each message taken in
        self.processor = MessageProcessor(
            ledger,
            settings,
            poison_after=poison_after,
            core_retry_delay=core_retry_delay,
            parse=parse,
        )
        #: "off", "starting", "jetstream", "core" or "refused", for status reports
        self.mode = "off" if connection is None else "starting"

    @property
    def subjects(self) -> list[str]:
        return intake_subjects(self.settings)

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
                stream, subscription = await subscribe(
                    client.jetstream(timeout=5.0),
                    attrs.evolve(
                        intake_names(self.settings), stream=self.stream, durable=self.durable
                    ),
                    self.subjects,
                    batch_size=self.batch_size,
                    ack_wait=self.ack_wait,
                    max_age=self.max_age,
                    duplicate_window=self.duplicate_window,
                )
                self.mode = "jetstream"
                log.info(
                    "NATS: taking in %s from stream %s with durable consumer %s (JetStream)",
                    ", ".join(self.subjects),
                    stream,
                    self.durable,
                )
                delay = 0.5
                await self._consume(subscription, stop)
            except IntakeConflict as conflict:
                self.mode = "refused"
                log.error("%s", conflict)
                raise
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
            await self.processor.process_guarded(messages, durable=True)

    async def _run_core(self, stop: asyncio.Event) -> None:
        assert self.connection is not None
        queue: asyncio.Queue[Msg] = asyncio.Queue()

        async def enqueue(message: Msg) -> None:
            queue.put_nowait(message)

        subscriptions = await self._subscribe_core(enqueue, stop)
        if subscriptions is None:
            return
        self.mode = "core"
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
                await self.processor.process_guarded(batch, durable=False)
        finally:
            stopping.cancel()
            for subscription in subscriptions:
                with contextlib.suppress(Exception):
                    await subscription.unsubscribe()

    async def _subscribe_core(
        self, enqueue: Callable[[Msg], Awaitable[None]], stop: asyncio.Event
    ) -> list[Subscription] | None:
        """Plain subscriptions on every subject (the client keeps them across reconnects);
        None when stopped first."""
        assert self.connection is not None
        delay = 0.5
        while not stop.is_set():
            client = await self.connection.connect(stop)
            if client is None:
                return None
            subscriptions: list[Subscription] = []
            try:
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
                return subscriptions
            except Exception as error:
                log.warning(
                    "NATS: subscribing failed (%s: %s); trying again in %gs",
                    type(error).__name__,
                    error,
                    delay,
                )
                for subscription in subscriptions:
                    with contextlib.suppress(Exception):
                        await subscription.unsubscribe()
                await _sleep(stop, delay)
                delay = min(delay * 2, 10.0)
        return None

    async def process(self, messages: Sequence[Msg], *, durable: bool) -> None:
        """Take a batch in (see :meth:`MessageProcessor.process`)."""
        await self.processor.process(messages, durable=durable)


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    """Sleep, waking early when ``stop`` is set."""
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
