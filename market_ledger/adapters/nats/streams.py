"""The JetStream stream and durable consumer the intake reads, and who may share them.

Several deployments may share one NATS server. Each takes in its own subjects, through a
stream and a durable consumer named for it: by default the names are derived from the
subjects (replicas of one deployment, configured alike, share them; a deployment with
other subjects gets other names), or set with ``NATS_INTAKE_STREAM`` and
``NATS_INTAKE_DURABLE``. The deployment with the historical default subjects keeps the
historical names, so its stream and consumer are found again after an upgrade.

What is safe, and what makes the intake refuse to start (:class:`IntakeConflict`):

* the stream named exists and captures exactly our subjects: ours, or a replica's; used;
* it exists with other subjects: another deployment's (or our subjects changed); changing
  it would hand that deployment's consumers our messages or take its subjects away:
  refused;
* it does not exist: if no stream captures any of our subjects it is created; if exactly
  one captures exactly our subjects (one created by hand, or under another name) it is
  used, each deployment with its own consumer and its own copy of every message (the
  stream keeps messages by limits, so a consumer's acknowledgement takes nothing from
  another's); if streams capture only some of them, or more, refused;
* the durable consumer exists on that stream for other subjects: another deployment's (one
  consumer shared by two deployments splits the messages of both between them): refused.
  Otherwise it is created, or updated to our settings.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence

import attrs
import nats.js.errors
from nats.js import api
from nats.js.client import JetStreamContext

from market_ledger.adapters.config import Settings

log = logging.getLogger(__name__)

PullSubscription = JetStreamContext.PullSubscription

#: the names every deployment used before they were configurable, kept for the default subjects
LEGACY_STREAM = "MARKET_LEDGER_INTAKE"
LEGACY_DURABLE = "market-ledger-intake"
LEGACY_SUBJECTS = frozenset({"os.application.*"})


class IntakeConflict(RuntimeError):
    """Taking in from this stream or consumer would take another deployment's messages."""


@attrs.frozen
class IntakeNames:
    stream: str
    durable: str


def intake_subjects(settings: Settings) -> list[str]:
    subjects = [settings.subject_app_state]
    if settings.subject_user_state and settings.subject_user_state not in subjects:
        subjects.append(settings.subject_user_state)
    return subjects


def intake_names(settings: Settings) -> IntakeNames:
    """The configured names, else names derived from the subjects taken in."""
    subjects = frozenset(intake_subjects(settings))
    if subjects == LEGACY_SUBJECTS:
        stream, durable = LEGACY_STREAM, LEGACY_DURABLE
    else:
        digest = hashlib.sha256("\n".join(sorted(subjects)).encode()).hexdigest()[:10]
        stream, durable = f"{LEGACY_STREAM}_{digest.upper()}", f"{LEGACY_DURABLE}-{digest}"
    return IntakeNames(
        stream=settings.nats_intake_stream or stream,
        durable=settings.nats_intake_durable or durable,
    )


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: ``*`` matches one token, a final ``>`` one or more."""
    want, have = pattern.split("."), subject.split(".")
    for index, token in enumerate(want):
        if token == ">":
            return len(have) > index
        if index >= len(have) or (token != "*" and token != have[index]):
            return False
    return len(want) == len(have)


def subjects_overlap(first: str, second: str) -> bool:
    """Whether some subject matches both patterns."""
    a, b = first.split("."), second.split(".")
    for index in range(max(len(a), len(b))):
        x = a[index] if index < len(a) else None
        y = b[index] if index < len(b) else None
        if x == ">":
            return y is not None
        if y == ">":
            return x is not None
        if x is None or y is None:
            return False
        if x != y and "*" not in (x, y):
            return False
    return True


def _listed(subjects: Iterable[str]) -> str:
    return ", ".join(sorted(subjects)) or "(none)"


async def subscribe(
    js: JetStreamContext,
    names: IntakeNames,
    subjects: Sequence[str],
    *,
    batch_size: int,
    ack_wait: float,
    max_age: float,
    duplicate_window: float,
) -> tuple[str, PullSubscription]:
    """The stream capturing our subjects and a pull subscription on our durable consumer."""
    stream = await ensure_stream(
        js, names.stream, subjects, max_age=max_age, duplicate_window=duplicate_window
    )
    config = api.ConsumerConfig(
        durable_name=names.durable,
        deliver_policy=api.DeliverPolicy.ALL,
        ack_policy=api.AckPolicy.EXPLICIT,
        ack_wait=ack_wait,
        max_deliver=-1,
        max_ack_pending=max(4 * batch_size, 1000),
        filter_subject=subjects[0] if len(subjects) == 1 else None,
        filter_subjects=list(subjects) if len(subjects) > 1 else None,
    )
    await ensure_consumer(js, stream, config, subjects)
    subscription = await js.pull_subscribe_bind(
        durable=names.durable, stream=stream, pending_msgs_limit=16 * batch_size
    )
    return stream, subscription


async def ensure_stream(
    js: JetStreamContext,
    name: str,
    subjects: Sequence[str],
    *,
    max_age: float,
    duplicate_window: float,
) -> str:
    """The name of the stream to read our subjects from; see the module's rules."""
    wanted = set(subjects)
    found = await _stream_info(js, name)
    if found is None:
        overlapping = [
            info
            for info in await _all_streams(js)
            if any(subjects_overlap(a, b) for a in wanted for b in info.config.subjects or ())
        ]
        if not overlapping:
            config = api.StreamConfig(
                name=name,
                subjects=list(subjects),
                retention=api.RetentionPolicy.LIMITS,
                storage=api.StorageType.FILE,
                max_age=max_age,
                duplicate_window=duplicate_window,
            )
            try:
                await js.add_stream(config)
            except nats.js.errors.BadRequestError:
                found = await _stream_info(js, name)  # a replica may have just created it
                if found is None:
                    raise
            else:
                log.info("NATS: created stream %s capturing %s", name, _listed(subjects))
                return name
        elif len(overlapping) == 1 and set(overlapping[0].config.subjects or ()) == wanted:
            owner = overlapping[0].config.name
            assert owner is not None
            log.info(
                "NATS: stream %s already captures exactly %s; using it", owner, _listed(wanted)
            )
            return owner
        else:
            described = "; ".join(
                f"stream {info.config.name} captures {_listed(info.config.subjects or ())}"
                for info in overlapping
            )
            raise IntakeConflict(
                f"NATS: this deployment takes in {_listed(wanted)}, but {described}: taking "
                "them in from there would take another deployment's messages or share them. "
                "Give each deployment subjects of its own; if the stream is this deployment's "
                "from an earlier configuration, delete it once its messages are taken in."
            )
    assert found is not None
    have = set(found.config.subjects or ())
    if have != wanted:
        raise IntakeConflict(
            f"NATS: stream {name} exists and captures {_listed(have)}, but this deployment "
            f"takes in {_listed(wanted)}: another deployment uses this stream name, or this "
            "one's subjects changed. Set NATS_INTAKE_STREAM to a name of this deployment's "
            "own; if the stream is this deployment's, delete it once its messages are taken in."
        )
    return name


async def ensure_consumer(
    js: JetStreamContext, stream: str, config: api.ConsumerConfig, subjects: Sequence[str]
) -> None:
    """Create or update our durable consumer, unless it exists for other subjects."""
    durable = config.durable_name
    assert durable is not None
    try:
        info = await js.consumer_info(stream, durable)
    except nats.js.errors.NotFoundError:
        info = None
    if info is not None:
        have = set(info.config.filter_subjects or ())
        if info.config.filter_subject:
            have.add(info.config.filter_subject)
        if not have:  # no filter: every subject of the stream
            stream_info = await js.stream_info(stream)
            have = set(stream_info.config.subjects or ())
        if have != set(subjects):
            raise IntakeConflict(
                f"NATS: durable consumer {durable} on stream {stream} takes in {_listed(have)}, "
                f"but this deployment takes in {_listed(subjects)}: another deployment uses "
                "this consumer name (sharing it would split both deployments' messages "
                "between them), or this one's subjects changed. Set NATS_INTAKE_DURABLE to a "
                "name of this deployment's own; if the consumer is this deployment's, delete it."
            )
    await js.add_consumer(stream, config)


async def _stream_info(js: JetStreamContext, name: str) -> api.StreamInfo | None:
    try:
        return await js.stream_info(name)
    except nats.js.errors.NotFoundError:
        return None


async def _all_streams(js: JetStreamContext) -> list[api.StreamInfo]:
    streams: list[api.StreamInfo] = []
    while True:
        page = await js.streams_info(offset=len(streams))
        if not page:
            return streams
        streams.extend(page)
