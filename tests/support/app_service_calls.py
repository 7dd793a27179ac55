"""Operation calls to a fake app-service as the ledger makes them, and the app-state
messages it publishes, read back from the nats-server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from tests.support.nats_server import Inbox, Nats, connect, eventually

TOKEN = "token-for-tests"


def operation_path(action: str, app: str) -> str:
    path = f"/app-service/v1/apps/{app}/{action}"
    return f"{path}?type=operate" if action == "cancel" else path


def operation_headers(user: str, token: str | None = TOKEN) -> dict[str, str]:
    headers = {"X-Bfl-User": user, "Content-Type": "application/json"}
    if token is not None:
        headers["X-Authorization"] = token
    return headers


def call(
    base_url: str,
    action: str,
    app: str,
    *,
    user: str = "alice",
    body: Any = None,
    token: str | None = TOKEN,
    timeout: float = 10.0,
) -> httpx.Response:
    """One operation call from this thread (a cancel sends no body)."""
    if body is None and action != "cancel":
        body = {"source": "market", "repoUrl": "http://chart-repo.test/"}
    return httpx.post(
        base_url + operation_path(action, app),
        json=body,
        headers=operation_headers(user, token),
        timeout=timeout,
    )


def op_id_of(answer: httpx.Response) -> str:
    op_id: str = answer.json()["data"]["opID"]
    return op_id


def subject_prefix(nats: Nats) -> str:
    """The fake's subject prefix for the test's own app-state subjects."""
    return nats.names.app_state.removesuffix(".*")


@asynccontextmanager
async def app_states(nats: Nats) -> AsyncIterator[Inbox]:
    """The app-state messages of every user, from the moment the subscription is in place."""
    client = await connect(nats.url)
    inbox = Inbox()
    try:
        await client.subscribe(nats.names.app_state, cb=inbox.receive)
        await client.flush()
        yield inbox
    finally:
        await client.close()


def messages_of(inbox: Inbox, app: str) -> list[dict[str, Any]]:
    return [message for _, message in inbox.messages if message.get("name") == app]


def states_of(inbox: Inbox, app: str) -> list[str]:
    return [message["state"] for message in messages_of(inbox, app)]


async def until_state(inbox: Inbox, app: str, state: str) -> None:
    await eventually(lambda: state in states_of(inbox, app), what=f"{app} {state}")
