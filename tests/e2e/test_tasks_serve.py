"""Tasks end to end: ``serve`` as a process, a real nats-server, and a fake app-service that
runs each operation's lifecycle and publishes it on the subjects the service consumes.

One stack serves every test of this module; each test works on apps of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.task_stack import (
    BOB_TOKEN,
    LEDGER,
    MARKET,
    REPO_HOST,
    REPO_PORT,
    SOURCE,
    TOKEN,
    VERSIONS,
    TaskStack,
    task_id_of,
    task_stack,
)

STILL_RUNNING = "Task is still running, query task status for result"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TaskStack]:
    """The stack, its cycle run once at the start: here every task is closed by the app
    states app-service publishes, never by status correction's reading of its list."""
    settings = {"LEDGER_TASK_SYNC_WAIT": "3", "PIPELINE_INTERVAL": "600"}
    with task_stack(tmp_path_factory.mktemp("tasks"), **settings) as running:
        yield running


def accepted(stack: TaskStack, task_id: str, user: str = "alice") -> dict[str, Any]:
    """The task once app-service took it: ``completed`` on the wire, no outcome yet."""
    found = stack.wait_status(task_id, "completed", user=user)
    assert found["outcome"] is None, found
    return found


def test_given_an_install_when_app_service_runs_it_then_the_task_completes_with_its_outcome(
    stack: TaskStack,
) -> None:
    stack.fake.pause_at("alist", "installing")
    task_id = task_id_of(stack.install("alist"))

    (call,) = stack.service.wait_for(lambda: stack.calls_to("alist", "install"), "the call")
    assert call.method == "POST" and call.query == {}
    headers = {k: call.headers.get(k) for k in ("x-authorization", "x-bfl-user", "content-type")}
    assert headers == {
        "x-authorization": TOKEN,
        "x-bfl-user": "alice",
        "content-type": "application/json",
    }
    assert (call.headers["x-market-user"], call.headers["x-market-source"]) == ("alice", SOURCE)
    assert list(call.json().items()) == [
        ("repoUrl", f"http://{REPO_HOST}:{REPO_PORT}/"),
        ("source", "market"),
        ("x_market_user", "alice"),
        ("x_market_source", SOURCE),
        ("envs", []),
    ]
    stack.wait_published("alist", "installing")
    waiting = accepted(stack, task_id)
    assert waiting["op_id"] == stack.fake.op_ids("install")[-1]
    assert stack.last_installed("alist") is None, "accepted is not installed"

    stack.fake.resume("alist")
    done = stack.wait_status(task_id, "completed", "succeeded")

    assert stack.cli_json("task", "show", task_id) == done
    assert (done["kind"], done["user"], done["version"]) == ("install", "alice", VERSIONS["alist"])
    assert stack.wait_points(task_id, 3) == [
        "task_execute",
        "task_finished_succeed",
        "task_outcome",
    ]
    points = stack.inbox.points(task_id)
    assert {subject for subject, _ in points} == {f"{stack.nats.names.market}.alice"}
    assert points[2][1]["extensions"]["outcome"] == "succeeded"
    installed = stack.last_installed("alist")
    assert installed is not None
    assert (installed["task_id"], installed["version"]) == (task_id, VERSIONS["alist"])


def test_given_an_install_that_fails_after_acceptance_then_it_is_told_succeed_then_failed(
    stack: TaskStack,
) -> None:
    """Acceptance is told as before (task_finished_succeed), but the task does not stay
    "completed": the replaced system showed an install that failed as completed."""
    stack.fake.fail_install("anythingllm")
    task_id = task_id_of(stack.install("anythingllm"))

    failed = stack.wait_status(task_id, "failed", "failed")

    assert "installFailed" in failed["error"]
    assert stack.wait_points(task_id, 3) == [
        "task_execute",
        "task_finished_succeed",
        "task_outcome",
    ]
    assert stack.inbox.points(task_id)[2][1]["extensions"]["outcome"] == "failed"
    assert stack.last_installed("anythingllm") is None


def test_given_an_install_under_way_when_canceled_then_it_is_canceled_and_the_cancel_succeeds(
    stack: TaskStack,
) -> None:
    """The replaced system could never mark an install canceled."""
    stack.fake.pause_at("appsmith", "downloading")
    install = task_id_of(stack.install("appsmith"))
    stack.wait_published("appsmith", "downloading")
    accepted(stack, install)

    cancel = task_id_of(stack.cancel("appsmith"))

    stack.wait_status(install, "canceled", "canceled")
    stack.wait_status(cancel, "completed", "succeeded")
    (call,) = stack.calls_to("appsmith", "cancel")
    assert call.query == {"type": ["operate"]} and call.headers["x-authorization"] == TOKEN
    closed_by = [
        e["app_state"]
        for e in stack.history("appsmith")
        if e["event"] == "task_outcome_observed" and e["task_id"] in (install, cancel)
    ]
    assert closed_by == ["installingCanceled", "installingCanceled"]
    assert stack.wait_points(install, 3) == [
        "task_execute",
        "task_finished_succeed",
        "task_outcome",
    ]
    assert stack.inbox.points(install)[2][1]["extensions"]["outcome"] == "canceled"


def test_given_a_cancel_reported_under_its_own_operation_then_the_install_is_canceled_too(
    stack: TaskStack,
) -> None:
    stack.fake.lifecycles.cancel_reports_as = "cancel"
    try:
        stack.fake.pause_at("awesomedigitalhuman", "downloading")
        install = task_id_of(stack.install("awesomedigitalhuman"))
        stack.wait_published("awesomedigitalhuman", "downloading")
        accepted(stack, install)

        cancel = task_id_of(stack.cancel("awesomedigitalhuman"))

        stack.wait_status(install, "canceled", "canceled")
        done = stack.wait_status(cancel, "completed", "succeeded")
    finally:
        stack.fake.lifecycles.cancel_reports_as = "install"
    (message,) = [
        m
        for _, m in stack.fake.published
        if m["state"] == "installingCanceled" and m["name"] == "awesomedigitalhuman"
    ]
    assert (message["opType"], message["opID"]) == ("cancel", done["op_id"])


def test_given_a_queued_install_when_canceled_then_it_leaves_the_queue_and_nothing_is_sent(
    stack: TaskStack,
) -> None:
    stack.fake.hang("astral", "upgrade")
    try:
        upgrade = task_id_of(stack.upgrade("astral"))
        stack.fake.hangs.wait_for_waiting(1)
        install = task_id_of(stack.install("astral"))

        cancel = task_id_of(stack.cancel("astral"))

        stack.wait_status(install, "canceled", "canceled")
        stack.wait_status(cancel, "completed", "succeeded")
        assert stack.wait_points(install, 2) == ["task_finished_canceled", "task_outcome"]
        assert stack.calls_to("astral", "install") == []
        assert stack.calls_to("astral", "cancel") == []
    finally:
        stack.fake.release()
    stack.wait_status(upgrade, "completed", "succeeded")


def test_given_one_app_s_call_hanging_then_other_apps_and_users_are_served_meanwhile(
    stack: TaskStack,
) -> None:
    """In the replaced system one hung call held every user's tasks."""
    stack.fake.hang("astrbot", "install")
    try:
        hung = task_id_of(stack.install("astrbot"))
        stack.fake.hangs.wait_for_waiting(1)

        alice = task_id_of(stack.install("audiobookshelf"))
        bob = task_id_of(stack.install("bazarr", "bob"))

        stack.wait_status(alice, "completed", "succeeded")
        stack.wait_status(bob, "completed", "succeeded", user="bob")
        still = stack.task_json(hung)
        assert still is not None and (still["status"], still["op_id"]) == ("running", None)
    finally:
        stack.fake.release()
    stack.wait_status(hung, "completed", "succeeded")


def test_given_a_double_click_then_both_answers_name_one_task_and_one_call_is_made(
    stack: TaskStack,
) -> None:
    stack.fake.pause_at("bisheng", "pending")
    first = task_id_of(stack.install("bisheng"))
    second = task_id_of(stack.install("bisheng"))
    stack.wait_published("bisheng", "pending")
    again = task_id_of(stack.install("bisheng"))

    assert first == second == again
    stack.fake.resume("bisheng")
    stack.wait_status(first, "completed", "succeeded")
    assert len(stack.calls_to("bisheng", "install")) == 1


def test_given_alice_s_task_then_bob_can_neither_read_nor_cancel_it_and_an_admin_can_read_it(
    stack: TaskStack,
) -> None:
    stack.fake.pause_at("blinko", "downloading")
    task_id = task_id_of(stack.install("blinko"))
    stack.wait_published("blinko", "downloading")
    accepted(stack, task_id)

    hidden = stack.task(task_id, "bob")
    listed = stack.service.get(f"{LEDGER}/tasks", "bob").json()["data"]
    state = stack.service.get(f"{MARKET}/runtime/state", "bob").json()["data"]
    bobs_cancel = task_id_of(stack.cancel("blinko", "bob"))

    assert (hidden.status_code, hidden.json()["message"]) == (404, "Task not found")
    assert task_id not in {t["task_id"] for t in listed}
    assert task_id not in state["tasks"]
    assert stack.task(task_id, "admin").status_code == 200
    bobs = stack.wait_status(bobs_cancel, "failed", "failed", user="bob")
    assert (bobs["user"], bobs["kind"]) == ("bob", "cancel")
    (call,) = stack.calls_to("blinko", "cancel")
    assert (call.headers["x-bfl-user"], call.headers["x-authorization"]) == ("bob", BOB_TOKEN)
    alices = stack.task_json(task_id)
    assert alices is not None and (alices["status"], alices["outcome"]) == ("completed", None)
    stack.fake.resume("blinko")
    stack.wait_status(task_id, "completed", "succeeded")


def test_given_sync_when_app_service_accepts_then_the_answer_carries_the_result(
    stack: TaskStack,
) -> None:
    answer = stack.install("bytebase", sync=True)

    assert answer.status_code == 200, answer.text
    assert answer.json()["message"] == "App installation completed successfully"
    data = answer.json()["data"]
    assert (data["status"], data["operation"], data["app_name"]) == (
        "success",
        "install",
        "bytebase",
    )
    assert data["opID"] == stack.operations_of("bytebase")[0].op_id
    stack.wait_status(data["task_id"], "completed", "succeeded")


def test_given_sync_when_app_service_does_not_answer_in_time_then_202_with_the_task_id(
    stack: TaskStack,
) -> None:
    stack.fake.hang("calendar", "install")
    try:
        answer = stack.install("calendar", sync=True)

        assert answer.status_code == 202, answer.text
        assert answer.json()["message"] == STILL_RUNNING
        task_id = answer.json()["data"]["task_id"]
        assert stack.task_json(task_id) is not None
    finally:
        stack.fake.release()
    stack.wait_status(task_id, "completed", "succeeded")
