"""Tasks end to end at the service's limits and over a whole run of ``serve``: an operation
whose outcome never comes is timed out, an install waiting for a free slot can still be
taken off the queue, and once the service has stopped, the log with its tasks rebuilds the
views it left and tells each app's story with the tasks in it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.serve_process import ledger_command
from tests.support.task_stack import TaskStack, task_id_of, task_stack


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TaskStack]:
    """A stack with one call to app-service at a time and a deadline of a second."""
    settings = {
        "LEDGER_TASK_DEADLINE": "1",
        "LEDGER_TASK_SWEEP_INTERVAL": "0.2",
        "LEDGER_TASK_CONCURRENCY": "1",
    }
    with task_stack(tmp_path_factory.mktemp("small"), **settings) as stack:
        yield stack


def test_given_an_accepted_install_whose_outcome_never_comes_then_it_times_out(
    small: TaskStack,
) -> None:
    small.fake.accept_silently("alist", "install", times=1)
    task_id = task_id_of(small.install("alist"))

    timed_out = small.wait_status(task_id, "failed", "timed_out")

    assert timed_out["op_id"] == small.fake.op_ids("install")[-1]
    assert small.wait_points(task_id, 3) == [
        "task_execute",
        "task_finished_succeed",
        "task_outcome",
    ]
    assert small.inbox.points(task_id)[2][1]["extensions"]["outcome"] == "timed_out"
    assert small.last_installed("alist") is None


def test_given_every_slot_taken_when_an_install_waiting_for_one_is_canceled_then_none_is_sent(
    small: TaskStack,
) -> None:
    small.fake.hang("affine", "install")
    try:
        busy = task_id_of(small.install("affine"))
        small.fake.hangs.wait_for_waiting(1)
        waiting = task_id_of(small.install("anythingllm"))

        cancel = task_id_of(small.cancel("anythingllm"))

        small.wait_status(waiting, "canceled", "canceled")
        small.wait_status(cancel, "completed", "succeeded")
    finally:
        small.fake.release()
    small.wait_status(busy, "completed")
    assert small.calls_to("anythingllm", "install") == []
    assert small.calls_to("anythingllm", "cancel") == []


def test_given_a_run_with_tasks_when_serve_stopped_then_the_log_rebuilds_its_views_and_history(
    tmp_path: Path,
) -> None:
    with task_stack(tmp_path) as stack:
        installed = task_id_of(stack.install("alist"))
        stack.wait_status(installed, "completed", "succeeded")
        stack.service.wait_for(lambda: stack.installed("alist"), "alist installed")
        removed = task_id_of(stack.uninstall("alist"))
        stack.wait_status(removed, "completed", "succeeded")
        stack.fake.error_500("affine", "install", times=1)
        refused = task_id_of(stack.install("affine"))
        stack.wait_status(refused, "failed", "failed")
        env = stack.env

    rebuilt = ledger_command("rebuild", "--verify", env=env, check=False)
    history = stack.history("alist")

    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert "rows identical" in rebuilt.stdout
    tasks = {e["task_id"] for e in history if e["event"].startswith("task_")}
    assert tasks == {installed, removed}
    story = [
        (e["event"], e.get("state") or e.get("kind"))
        for e in history
        if e["event"] in ("task_requested", "task_outcome_observed")
        or (e["event"] == "state_observed" and e["origin"] == "app-state")
    ]
    assert story == [
        ("task_requested", "install"),
        ("state_observed", "pending"),
        ("state_observed", "downloading"),
        ("state_observed", "installing"),
        ("state_observed", "running"),
        ("task_outcome_observed", "install"),
        ("task_requested", "uninstall"),
        ("state_observed", "uninstalling"),
        ("state_observed", "uninstalled"),
        ("task_outcome_observed", "uninstall"),
    ]
