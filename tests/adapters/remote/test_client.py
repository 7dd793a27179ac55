"""The shared HTTP plumbing: retries with backoff, timeouts, strict JSON decoding."""

from __future__ import annotations

import asyncio
import pickle
from typing import Any

import httpx
import pytest
import respx

from market_ledger.adapters.remote.client import (
    RetrySettings,
    decode_envelope_data,
    decode_json,
    decode_object,
    send,
)
from market_ledger.service.ports import RemoteError

URL = "http://remote.test/thing"
FAST = RetrySettings(attempts=3, base_delay=0.001)


def run_send(**kwargs: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient() as client:
            return await send(client, "thing", "GET", URL, timeout=1.0, **kwargs)

    return asyncio.run(go())


def test_remote_error_message_names_service_url_and_reason() -> None:
    error = RemoteError("market source", "http://m.test/x", "HTTP 500: boom", status=500)
    assert str(error) == "market source at http://m.test/x: HTTP 500: boom"
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.service, copy.url, copy.reason, copy.status) == (
        "market source",
        "http://m.test/x",
        "HTTP 500: boom",
        500,
    )


def test_retry_settings_back_off_exponentially_from_the_base() -> None:
    settings = RetrySettings(attempts=4, base_delay=2.0)
    assert [settings.delay_before(k) for k in (1, 2, 3, 4)] == [0.0, 2.0, 4.0, 8.0]
    with pytest.raises(ValueError):
        RetrySettings(attempts=0)


@respx.mock
def test_given_two_5xx_then_200_when_sent_with_three_attempts_then_the_200_is_returned() -> None:
    route = respx.get(URL).mock(
        side_effect=[httpx.Response(503), httpx.Response(502), httpx.Response(200, json={})]
    )
    assert run_send(retry=FAST).status_code == 200
    assert route.call_count == 3


@respx.mock
def test_given_a_transport_error_every_time_when_sent_then_the_error_counts_the_attempts() -> None:
    route = respx.get(URL).mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(RemoteError) as caught:
        run_send(retry=FAST)
    assert route.call_count == 3
    assert "transport error: ConnectError: refused" in caught.value.reason
    assert "after 3 attempts" in caught.value.reason
    assert caught.value.status is None


@respx.mock
def test_given_a_404_when_sent_then_it_is_not_retried_and_names_status_and_body() -> None:
    route = respx.get(URL).mock(return_value=httpx.Response(404, text="no such thing"))
    with pytest.raises(RemoteError) as caught:
        run_send(retry=FAST)
    assert route.call_count == 1
    assert caught.value.status == 404
    assert caught.value.reason == "HTTP 404: no such thing"


@respx.mock
def test_given_a_read_timeout_when_sent_then_the_reason_says_timed_out() -> None:
    respx.get(URL).mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(RemoteError, match=r"timed out after 1 s"):
        run_send()


def decode(response: httpx.Response, how: str) -> Any:
    response.request = httpx.Request("GET", URL)
    if how == "json":
        return decode_json(response, "thing")
    if how == "object":
        return decode_object(response, "thing")
    return decode_envelope_data(response, "thing")


@pytest.mark.parametrize(
    ("response", "how", "reason"),
    [
        (httpx.Response(200, content=b""), "json", "HTTP 200 with an empty body"),
        (httpx.Response(200, content=b"  \n"), "json", "HTTP 200 with an empty body"),
        (
            httpx.Response(200, text="<html>hi</html>", headers={"content-type": "text/html"}),
            "json",
            "body is not JSON (text/html): <html>hi</html>",
        ),
        (
            httpx.Response(200, json=[1]),
            "object",
            "wrong shape: the response must be an object, got array",
        ),
        (
            httpx.Response(200, json={"success": False, "message": "db down"}),
            "envelope",
            "answered success=false: db down",
        ),
        (
            httpx.Response(200, json={"message": "?"}),
            "envelope",
            "wrong shape: 'success' must be true or false, got null: ?",
        ),
    ],
)
def test_bad_bodies_become_remote_errors_with_a_clear_reason(
    response: httpx.Response, how: str, reason: str
) -> None:
    with pytest.raises(RemoteError) as caught:
        decode(response, how)
    assert caught.value.reason == reason


def test_a_json_body_decodes_whatever_its_content_type() -> None:
    response = httpx.Response(200, content=b'{"a": 1}', headers={"content-type": "text/plain"})
    assert decode(response, "object") == {"a": 1}
