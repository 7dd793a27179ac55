"""Notifications out: JSON messages on ``<NATS_SUBJECT_SYSTEM_MARKET_STATE>.<user>``.

``publish`` returns only once the server has the messages (a flush round trip), and raises
the notifier's :class:`PublishFailed` otherwise, so a caller that advances its position after
``publish`` sends every notification at least once. While NATS is away it fails at once instead of
letting the client buffer messages for a later reconnect.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import nats.errors
import orjson

from market_ledger.adapters.metrics import NATS_PUBLISHED
from market_ledger.adapters.nats.connection import NatsConnection
from market_ledger.adapters.nats.messages import MSG_ID_HEADER
from market_ledger.service.notifier import PublishFailed

__all__ = ["NatsPublisher", "Notification", "PublishFailed"]

log = logging.getLogger(__name__)


@attrs.frozen
class Notification:
    user: str
    notify_type: str
    payload: Mapping[str, Any]
    #: a smaller payload to send instead when ``payload`` exceeds the server's size limit
    compact: Mapping[str, Any] | None = None
    #: sent as ``Nats-Msg-Id``: the same for every publication of the same change
    message_id: str = ""


class NatsPublisher:
    def __init__(
        self, connection: NatsConnection, subject_prefix: str, *, flush_timeout: float = 5.0
    ) -> None:
        self.connection = connection
        self.subject_prefix = subject_prefix
        self.flush_timeout = flush_timeout

    def subject_for(self, user: str) -> str:
        return f"{self.subject_prefix}.{user}"

    async def publish(self, notifications: Sequence[Notification]) -> None:
        if not notifications:
            return
        self.connection.start()
        client = self.connection.client
        if client is None:
            raise PublishFailed("NATS is not connected")
        sent: list[str] = []
        try:
            for notification in notifications:
                data = self._encode(notification, client.max_payload)
                if data is None:
                    continue
                headers = (
                    {MSG_ID_HEADER: notification.message_id} if notification.message_id else None
                )
                await client.publish(self.subject_for(notification.user), data, headers=headers)
                sent.append(notification.notify_type)
            await client.flush(timeout=self.flush_timeout)  # type: ignore[arg-type]
        except (TimeoutError, nats.errors.Error, OSError) as error:
            raise PublishFailed(f"{type(error).__name__}: {error}") from error
        for notify_type in sent:
            NATS_PUBLISHED.labels(notify_type).inc()

    def _encode(self, notification: Notification, limit: int) -> bytes | None:
        """The message body; the compact form when the full one is too large, or None (logged)
        when neither fits: a notification that can never be sent must not stop the others."""
        data = orjson.dumps(notification.payload)
        if len(data) <= limit:
            return data
        if notification.compact is not None:
            compact = orjson.dumps(notification.compact)
            if len(compact) <= limit:
                log.warning(
                    "NATS: %s for %s is %d bytes (limit %d); sent without its large parts",
                    notification.notify_type,
                    notification.user,
                    len(data),
                    limit,
                )
                return compact
        log.error(
            "NATS: %s for %s is %d bytes, over the server's limit of %d; not sent",
            notification.notify_type,
            notification.user,
            len(data),
            limit,
        )
        return None
