"""What app-service's answer to a task operation comes to: accepted with its operation id,
rejected with a reason a user can read, or not known (the call must not be sent again)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import attrs
import pytest

from market_ledger.adapters.app_service.operations import AppServiceOperations
from market_ledger.domain.task_events import MAX_EXCERPT
from market_ledger.service.app_operations import (
    Accepted,
    AnswerUnknown,
    EnvValue,
    Operation,
    Rejected,
)
from tests.adapters.app_service.scripted import (
    ACCEPTED,
    HangingUp,
    ScriptedAppService,
    refusing_port,
)
from tests.support.fakes import Reply

T = TypeVar("T")
TOKEN = "eyJhbGciOiJIUzI1NiJ9.alice-token-5mQ1xExampleSig"
SECRET_ENV = "hunter2-correct-horse"
REPO = "http://charts.internal:82/"
INSTALL = Operation(
    kind="install",
    user="alice",
    app_name="jellyfin",
    token=TOKEN,
    source="market.olares",
    envs=(EnvValue("ADMIN_PASSWORD", SECRET_ENV),),
)
KINDS = {
    "install": INSTALL,
    "clone": attrs.evolve(INSTALL, kind="clone", raw_app_name="jellyfin", request_hash="bdedfa"),
    "upgrade": attrs.evolve(INSTALL, kind="upgrade", version="10.11.0"),
    "uninstall": Operation(kind="uninstall", user="alice", app_name="jellyfin", token=TOKEN),
    "cancel": Operation(kind="cancel", user="alice", app_name="jellyfin", token=TOKEN),
}
APPENV = {
    "code": 422,
    "message": "app env missing required values",
    "data": {
        "type": "appenv",
        "Data": {
            "missingValues": [
                {"envName": "ADMIN_PASSWORD", "type": "password", "required": True},
                {"envName": "SMTP_HOST", "type": "string", "required": True},
            ]
        },
    },
}


def run(make: Callable[[], Awaitable[T]]) -> T:
    async def go() -> T:
        return await make()

    return asyncio.run(go())


def operations_at(port: int, timeout: float = 5.0) -> AppServiceOperations:
    return AppServiceOperations("127.0.0.1", port, repo_url=REPO, timeout=timeout)


def answer_to(reply: Reply, operation: Operation = INSTALL) -> Accepted | Rejected:
    """What ``submit`` returns when app-service answers ``reply``; it is asked exactly once."""
    with ScriptedAppService(reply) as service:
        outcome = run(lambda: operations_at(service.port).submit(operation))
        assert len(service.requests) == 1
    return outcome


def rejection(reply: Reply, operation: Operation = INSTALL) -> Rejected:
    outcome = answer_to(reply, operation)
    assert isinstance(outcome, Rejected), outcome
    return outcome


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_given_code_200_with_an_op_id_when_any_kind_is_answered_then_it_is_accepted_with_it(
    kind: str,
) -> None:
    outcome = answer_to(Reply.json(ACCEPTED), KINDS[kind])
    assert outcome == Accepted(
        op_id="7f3c2a9e1b",
        answer='{"code": 200, "message": "success", "data": {"opID": "7f3c2a9e1b"}}',
    )


def test_given_code_200_without_data_when_an_uninstall_is_answered_then_it_is_accepted() -> None:
    outcome = answer_to(Reply.json({"code": 200, "message": "success"}), KINDS["uninstall"])
    assert isinstance(outcome, Accepted) and outcome.op_id == ""


@pytest.mark.parametrize("code", [200.0, 200])
def test_given_code_200_as_any_json_number_then_it_is_an_acceptance(code: float) -> None:
    assert isinstance(answer_to(Reply.json({"code": code, "data": {"opID": 7}})), Accepted)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_given_code_400_in_an_http_200_answer_when_any_kind_is_answered_then_it_is_rejected(
    kind: str,
) -> None:
    body = {"code": 400, "message": "app jellyfin is not in a cancelable state"}
    outcome = rejection(Reply.json(body), KINDS[kind])
    assert outcome.reason == (
        "app-service answered HTTP 200, code 400: app jellyfin is not in a cancelable state"
    )
    assert outcome.answer == '{"code": 400, "message": "app jellyfin is not in a cancelable state"}'


def test_given_an_http_500_when_answered_then_it_is_rejected_and_not_sent_again() -> None:
    outcome = rejection(Reply.json({"code": 500, "message": "helm: boom"}, status=500))
    assert outcome.reason == "app-service answered HTTP 500, code 500: helm: boom"


def test_given_missing_env_values_when_answered_422_then_the_reason_names_the_envs() -> None:
    outcome = rejection(Reply.json(APPENV, status=422))
    assert outcome.reason == (
        "app-service answered HTTP 422, code 422: app env missing required values; "
        "these envs need a value: ADMIN_PASSWORD, SMTP_HOST"
    )


def test_given_a_body_that_is_not_json_then_the_reason_says_so() -> None:
    outcome = rejection(Reply.garbage(status=502))
    assert outcome.reason == "app-service answered HTTP 502 with a body that is not JSON"
    assert outcome.answer.startswith("<html>")


def test_given_an_empty_body_then_the_reason_says_so() -> None:
    outcome = rejection(Reply.empty(status=200))
    assert outcome.reason == "app-service answered HTTP 200 with an empty body"
    assert outcome.answer == ""


def test_given_json_that_is_not_an_object_then_it_is_rejected() -> None:
    outcome = rejection(Reply.json([{"code": 200}]))
    assert outcome.reason == "app-service answered HTTP 200 with JSON that is not an object"


@pytest.mark.parametrize("code", [True, "200", None])
def test_given_a_code_that_is_not_a_number_then_it_is_no_acceptance(code: object) -> None:
    outcome = rejection(Reply.json({"code": code, "message": "odd", "data": {"opID": "x"}}))
    assert outcome.reason == "app-service answered HTTP 200 without a numeric code: odd"


def test_given_no_message_then_the_reason_says_there_was_none() -> None:
    outcome = rejection(Reply.json({"code": 403}, status=403))
    assert outcome.reason == "app-service answered HTTP 403, code 403: (no message)"


def test_given_a_long_answer_then_what_is_kept_is_cut_to_the_excerpt_length() -> None:
    outcome = rejection(Reply.json({"code": 500, "message": "x" * (3 * MAX_EXCERPT)}, status=500))
    assert len(outcome.answer) == MAX_EXCERPT
    assert len(outcome.reason) < 400


def test_given_an_answer_with_a_url_credential_then_it_is_redacted() -> None:
    body = {"code": 500, "message": "pull https://bot:pa55word@registry.test/x failed"}
    outcome = rejection(Reply.json(body, status=500))
    assert "pa55word" not in outcome.reason and "pa55word" not in outcome.answer
    assert "registry.test" in outcome.reason


def test_given_an_answer_echoing_the_token_and_an_env_value_then_neither_is_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # given app-service quoting the request's token and secret env value back
    body = {"code": 401, "message": f"token {TOKEN} refused; ADMIN_PASSWORD={SECRET_ENV}"}
    # when answered
    with caplog.at_level(logging.DEBUG):
        outcome = rejection(Reply.json(body, status=401))
    # then the reason, the kept answer and the logs hold neither
    for text in (outcome.reason, outcome.answer, caplog.text):
        assert TOKEN not in text and SECRET_ENV not in text
    assert "refused" in outcome.reason


def test_given_an_answer_slower_than_the_timeout_then_the_answer_is_unknown_and_sent_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # given app-service answering only after the call's deadline
    with ScriptedAppService(Reply.json(ACCEPTED).later(3.0)) as service:
        # when an install is submitted with a short timeout
        with caplog.at_level(logging.DEBUG), pytest.raises(AnswerUnknown) as raised:
            run(lambda: operations_at(service.port, timeout=0.3).submit(INSTALL))
        # then whether app-service took it is not known, and it was asked once
        assert len(service.requests) == 1
    text = str(raised.value)
    assert "may have taken it" in text and "0.3 s" in text
    assert raised.value.__cause__ is None  # httpx's error holds the request's headers
    assert TOKEN not in text and TOKEN not in caplog.text


def test_given_a_server_that_hangs_up_after_the_request_then_the_answer_is_unknown() -> None:
    with HangingUp() as server:
        with pytest.raises(AnswerUnknown) as raised:
            run(lambda: operations_at(server.port).submit(INSTALL))
        assert server.received.is_set()
    assert "broke off before its answer" in str(raised.value)
    assert TOKEN not in str(raised.value)


def test_given_nobody_listening_then_the_operation_is_rejected_as_not_reached() -> None:
    with refusing_port() as port:
        outcome = run(lambda: operations_at(port).submit(INSTALL))
    assert isinstance(outcome, Rejected)
    assert outcome.reason.startswith("app-service could not be reached: ConnectError")
    assert TOKEN not in outcome.reason and outcome.answer == ""


def test_given_a_timeout_that_is_not_positive_then_the_client_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        AppServiceOperations("127.0.0.1", 1, repo_url=REPO, timeout=0)
