"""Tasks end to end over a whole run of ``serve``: an operation whose outcome never comes is
timed out, and once the service has stopped, the log with its tasks rebuilds the views it
left and tells each app's story with the tasks in it."""

from __future__ import annotations

from pathlib import Path

from tests.support.serve_process import ledger_command
from tests.support.task_stack import task_id_of, task_stack


def test_given_an_accepted_install_whose_outcome_never_comes_then_it_times_out(
    tmp_path: Path,
) -> None:
    settings = {"LEDGER_TASK_DEADLINE": "1", "LEDGER_TASK_SWEEP_INTERVAL": "0.2"}
    with task_stack(tmp_path, **settings) as stack:
        stack.fake.accept_silently("alist", "install")
        task_id = task_id_of(stack.install("alist"))

        timed_out = stack.wait_status(task_id, "failed", "timed_out")

        assert timed_out["op_id"] == stack.fake.op_ids("install")[-1]
        assert stack.wait_points(task_id, 3) == [
            "task_execute",
            "task_finished_succeed",
            "task_outcome",
        ]
        assert stack.inbox.points(task_id)[2][1]["extensions"]["outcome"] == "timed_out"
        assert stack.last_installed("alist") is None


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
