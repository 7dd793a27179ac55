"""Tasks end to end, against what the replaced system got wrong: any answer taken as success,
tokens and env values shown to anyone, app states closing tasks they were not about, upgrades
and clones that no state could close, and a failed cancel failing the install too.

One stack (``serve``, a real nats-server, the fake app-service) serves every test here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httpx
import pytest

from market_ledger.domain.clone_name import clone_app_name, clone_request_hash
from tests.support.fakes.app_state_messages import AppState
from tests.support.task_stack import (
    LEDGER,
    MARKET,
    SOURCE,
    TOKEN,
    VERSIONS,
    TaskStack,
    task_id_of,
    task_stack,
)

#: an env value alice gives an install: like her token, it must never be written anywhere
SECRET = "env-secret-9b71c04e5a"
PREINSTALLED = {"calibre": "running"}
#: each kind of task, asked for with ``"sync": true``, and the words of its failure
KINDS: dict[str, tuple[Callable[[TaskStack], httpx.Response], str]] = {
    "install": (lambda s: s.install("chromium", sync=True), "Installation failed"),
    "clone": (lambda s: s.clone("calibre", "Spare", sync=True), "Clone installation failed"),
    "upgrade": (lambda s: s.upgrade("calibre", sync=True), "Upgrade failed"),
    "uninstall": (lambda s: s.uninstall("calibre", sync=True), "Uninstallation failed"),
    "cancel": (lambda s: s.cancel("calibre", sync=True), "Cancel installation failed"),
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TaskStack]:
    tmp = tmp_path_factory.mktemp("defects")
    with task_stack(tmp, preinstalled=PREINSTALLED, LEDGER_TASK_SYNC_WAIT="5") as running:
        yield running


def set_fault(stack: TaskStack, fault: str) -> str:
    """Make every operation call answer ``fault``; the reason the task is rejected with."""
    if fault == "missing_env":
        stack.fake.missing_env(["API_KEY", "DB_URL"])
        return (
            "app-service answered HTTP 422, code 422: app env missing required values; "
            "these envs need a value: API_KEY, DB_URL"
        )
    if fault == "error_500":
        stack.fake.error_500()
        return "app-service answered HTTP 500, code 500: internal error"
    stack.fake.garbage()
    return "app-service answered HTTP 502 with a body that is not JSON"


@pytest.mark.parametrize("fault", ["missing_env", "error_500", "garbage"])
def test_given_app_service_refusing_then_every_kind_of_task_fails_with_a_readable_reason(
    stack: TaskStack, fault: str
) -> None:
    """The replaced system took any answer to an uninstall, upgrade or cancel as success."""
    reason = set_fault(stack, fault)
    try:
        answers = {kind: ask(stack) for kind, (ask, _) in KINDS.items()}
    finally:
        stack.fake.clear_faults()

    for kind, answer in answers.items():
        assert answer.status_code == 500, (kind, answer.text)
        body = answer.json()
        assert body["success"] is False
        assert body["message"] == f"{KINDS[kind][1]}: {reason}"
        data = body["data"]
        assert (data["status"], data["operation"], data["error"]) == ("failed", kind, reason)
        task = stack.wait_status(data["task_id"], "failed", "failed")
        assert task["error"] == reason
        if fault == "garbage":
            assert "502 Bad Gateway" in data["response"]
        else:
            assert data["backend_response"]["code"] == int(reason.split("code ")[1][:3])
    assert (
        "alice/calibre"
        in stack.service.get(f"{MARKET}/runtime/state", "alice").json()["data"]["app_states"]
    ), "the uninstall was refused: the app is still there"


def everything_written(stack: TaskStack, task_ids: list[str]) -> dict[str, str]:
    """Every place the service writes or answers, by name."""
    get = stack.service.get
    places = {
        "serve log": stack.service.log.read_text(),
        "tasks route": get(f"{LEDGER}/tasks", "alice").text,
        "runtime/state": get(f"{MARKET}/runtime/state", "alice").text,
        "runtime/state (admin)": get(f"{MARKET}/runtime/state", "admin").text,
        "history": stack.cli("history", "--user", "alice", "--app", "cmproxy", "--json"),
        "task list": stack.cli("task", "list", "--json"),
        "notifications": json.dumps(stack.inbox.messages),
    }
    for task_id in task_ids:
        places[f"task route {task_id}"] = stack.task(task_id).text
        places[f"task show {task_id}"] = stack.cli("task", "show", task_id, "--json")
    for path in sorted(stack.tmp.glob("ledger.db*")):
        places[path.name] = path.read_bytes().decode("latin-1")
    return places


def test_given_a_token_and_an_env_value_then_neither_is_written_anywhere_but_sent(
    stack: TaskStack,
) -> None:
    """The replaced system kept the token with the task and showed it to every user."""
    envs = [{"envName": "API_KEY", "value": SECRET}]
    echo = f"token {TOKEN} may not install with API_KEY={SECRET}"
    stack.fake.business_error("cmproxy", "install", times=1, message=echo)
    refused = stack.install("cmproxy", envs=envs, sync=True)
    installed = task_id_of(stack.install("cmproxy", envs=envs))
    stack.wait_status(installed, "completed", "succeeded")

    refused_id = refused.json()["data"]["task_id"]
    assert refused.status_code == 500 and "may not install" in refused.json()["message"]
    calls = stack.calls_to("cmproxy", "install")
    assert [c.headers["x-authorization"] for c in calls] == [TOKEN, TOKEN]
    assert [c.json()["envs"] for c in calls] == [envs, envs]
    places = {"refused answer": refused.text, **everything_written(stack, [refused_id, installed])}
    assert not [name for name, text in places.items() if TOKEN in text], "the token was written"
    assert not [name for name, text in places.items() if SECRET in text], "the env value was"
    assert "API_KEY" in places[f"task route {installed}"] or "API_KEY" in places["runtime/state"]


def open_until_published(stack: TaskStack, app: str, state: str) -> dict[str, object]:
    """The task of ``app``'s install once ``state`` was published and taken in."""
    task_id = task_id_of(stack.install(app))
    stack.wait_published(app, state)
    stack.service.wait_for(stack.intake_idle, "the app states taken in")
    found = stack.task_json(task_id)
    assert found is not None
    return found


def publish_running(stack: TaskStack, app: str, op_id: str) -> None:
    stack.fake.publish_state(AppState("alice", app, "running", "install", op_id))


@pytest.mark.parametrize(
    ("app", "how"), [("chaosmesh", "old_time"), ("chinesesubfinder", "other_op")]
)
def test_given_a_failure_reported_before_the_install_or_for_another_operation_then_it_stays_open(
    stack: TaskStack, app: str, how: str
) -> None:
    """In the replaced system any state of the app could close the task it had open."""
    stack.fake.fail_install(app)
    stack.fake.publish_stale(app, how, state="installFailed")
    try:
        task = open_until_published(stack, app, "installFailed")
    finally:
        stack.fake.clear_failures(app)

    assert (task["status"], task["outcome"]) == ("completed", None)
    publish_running(stack, app, str(task["op_id"]))
    stack.wait_status(str(task["task_id"]), "completed", "succeeded")


def outcomes_in_history(stack: TaskStack, app: str) -> dict[str, str]:
    """task id -> the app state each outcome of ``app``'s history was observed from."""
    return {
        e["task_id"]: e["app_state"]
        for e in stack.history(app)
        if e["event"] == "task_outcome_observed"
    }


def test_given_an_upgrade_then_it_keeps_its_operation_id_and_its_own_states_close_it(
    stack: TaskStack,
) -> None:
    """The replaced system never kept an upgrade's operation id: no state could close it."""
    stack.fake.install("alice", "coder", source="market.olares")
    stack.service.wait_for(lambda: stack.installed("coder"), "coder recorded")
    stack.fake.fail_upgrade("coder")
    failed = task_id_of(stack.upgrade("coder"))
    first = stack.wait_status(failed, "failed", "failed")
    stack.fake.clear_failures("coder")
    upgraded = task_id_of(stack.upgrade("coder"))
    second = stack.wait_status(upgraded, "completed", "succeeded")

    assert [first["op_id"], second["op_id"]] == stack.fake.op_ids("upgrade")[-2:]
    assert outcomes_in_history(stack, "coder") == {failed: "upgradeFailed", upgraded: "running"}
    last = stack.last_installed("coder")
    assert last is not None and (last["kind"], last["task_id"]) == ("upgrade", upgraded)


def test_given_a_clone_then_its_own_states_close_it_when_it_fails_and_when_it_runs(
    stack: TaskStack,
) -> None:
    """The replaced system could never fail a clone from its state."""
    broken = clone_app_name("calibre", clone_request_hash(SOURCE, "calibre", "Broken"))
    stack.fake.fail_install(broken)
    failed = task_id_of(stack.clone("calibre", "Broken"))
    stack.wait_status(failed, "failed", "failed")
    work = clone_app_name("calibre", clone_request_hash(SOURCE, "calibre", "Work"))
    cloned = task_id_of(stack.clone("calibre", "Work"))
    done = stack.wait_status(cloned, "completed", "succeeded")

    assert (done["kind"], done["app_name"], done["version"]) == ("clone", work, VERSIONS["calibre"])
    (call,) = stack.calls_to(work, "install")
    body = call.json()
    assert (body["rawAppName"], body["requestHash"], body["title"]) == (
        "calibre",
        work[-6:],
        "Work",
    )
    assert outcomes_in_history(stack, work) == {cloned: "running"}
    assert outcomes_in_history(stack, broken) == {failed: "installFailed"}
    last = stack.last_installed(work)
    assert last is not None and (last["kind"], last["task_id"]) == ("clone", cloned)


def test_given_a_cancel_that_fails_then_only_the_cancel_fails_and_the_install_goes_on(
    stack: TaskStack,
) -> None:
    """The replaced system failed the install too when its cancel failed."""
    stack.fake.accept_silently("comfyui", "install", times=1)
    install = task_id_of(stack.install("comfyui"))
    stack.wait_status(install, "completed")

    cancel = task_id_of(stack.cancel("comfyui"))
    stack.wait_status(cancel, "failed", "failed")

    stack.wait_published("comfyui", "installCancelFailed")
    still = stack.task_json(install)
    assert still is not None and (still["status"], still["outcome"]) == ("completed", None)
    publish_running(stack, "comfyui", str(still["op_id"]))
    stack.wait_status(install, "completed", "succeeded")
    assert outcomes_in_history(stack, "comfyui") == {
        cancel: "installCancelFailed",
        install: "running",
    }
