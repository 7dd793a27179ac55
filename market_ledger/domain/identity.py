"""Aggregate identities, derived deterministically from their keys.

The same key always gives the same stream id, in every process and on every backend, so two
writers that both decide about ``(alice, market.olares, firefox)`` meet on one stream and the
event store's ``(stream, version)`` uniqueness settles who was first.
"""

from __future__ import annotations

import json
from functools import lru_cache
from uuid import UUID, uuid5

LEDGER_NAMESPACE = UUID("8a3c5d0e-2f4b-5c6d-9e7f-0a1b2c3d4e5f")
#: the key is named by its JSON list, which no two different keys share
_ENCODER = json.JSONEncoder()


@lru_cache(maxsize=1 << 17)
def _stream_id(kind: str, *key: str) -> UUID:
    return uuid5(LEDGER_NAMESPACE, _ENCODER.encode([kind, *key]))


def listing_id(user: str, source: str, app_id: str) -> UUID:
    return _stream_id("listing", user, source, app_id)


def installation_id(user: str, app_name: str) -> UUID:
    return _stream_id("installation", user, app_name)


def user_id(name: str) -> UUID:
    return _stream_id("user", name)


def market_source_id(source: str) -> UUID:
    return _stream_id("market-source", source)


def manifest_id(digest: str) -> UUID:
    return _stream_id("manifest", digest)


def feed_cursor_id(feed: str) -> UUID:
    return _stream_id("feed-cursor", feed)


def task_stream_id(task_id: str) -> UUID:
    """One stream per task, named by its wire id (``YYYYMMDDhhmmss-xxxxxx``)."""
    return _stream_id("task", task_id)
