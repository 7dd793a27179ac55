"""Given/when/then for the task aggregate: its id, its request and every step of its lifecycle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from market_ledger.domain import task
from market_ledger.domain.admission import check_command
from market_ledger.domain.decider import DecisionContext
from market_ledger.domain.identity import task_stream_id
from market_ledger.domain.redaction import REDACTED
from market_ledger.domain.task_events import (
    TaskAccepted,
    TaskDequeued,
    TaskDispatched,
    TaskInterrupted,
    TaskOutcomeObserved,
    TaskRejected,
    TaskRequested,
    TaskStatus,
    TaskTimedOut,
)
from market_ledger.service.handler import DECIDERS
from tests.support.decider import DeciderSpec

AT = datetime(2026, 12, 3, 14, 0, tzinfo=UTC)
CONTEXT = DecisionContext(at=AT)
ID = "20261203140000-a1B2c3"
CANCEL_ID = "20261203140001-zz9900"
tasks: DeciderSpec[task.TaskState] = DeciderSpec(task.TASK, CONTEXT)


def request(task_id: str = ID, **fields: Any) -> task.RequestTask:
    values: dict[str, Any] = {
        "kind": task.INSTALL,
        "user": "alice",
        "app_name": "firefox",
        "source": "market.olares",
        "version": "1.0.2",
        "envs": (("API_KEY", "s3cret-value"), ("EMPTY", "")),
    }
    values.update(fields)
    return task.RequestTask(task_id, **values)


def clone(**fields: Any) -> task.RequestTask:
    values: dict[str, Any] = {
        "kind": task.CLONE,
        "app_name": "firefoxabc123",
        "raw_app_name": "firefox",
        "request_hash": "abc123",
        "title": "Firefox <work> & more",
        "entrances": (("web", "Firefox Web"),),
    }
    values.update(fields)
    return request(**values)


def accepted(op_id: str = "op-1") -> tuple[Any, ...]:
    return (request(), task.DispatchTask(ID), task.AcceptTask(ID, op_id))


def later(seconds: float) -> DecisionContext:
    return DecisionContext(at=AT + timedelta(seconds=seconds))


# --- the id ----------------------------------------------------------------------------------


def test_given_a_time_and_a_suffix_when_making_a_task_id_then_it_has_the_wire_format() -> None:
    made = task.new_task_id(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "Ab3dE9")
    assert made == "20260102030405-Ab3dE9"
    assert task.task_id_problem(made) is None


@pytest.mark.parametrize("suffix", ["abc", "abcdefg", "ab-def", "ü12345"])
def test_given_a_bad_suffix_when_making_a_task_id_then_it_is_refused(suffix: str) -> None:
    with pytest.raises(ValueError, match="six letters or digits"):
        task.new_task_id(AT, suffix)


@pytest.mark.parametrize(
    ("task_id", "problem"),
    [
        ("2026120314000-a1b2c3", "of the form"),
        ("20261203140000_a1b2c3", "of the form"),
        ("20261203140000-a1b2c", "of the form"),
        ("20261303140000-a1b2c3", "real date"),
        ("20260230140000-a1b2c3", "real date"),
    ],
)
def test_given_a_malformed_task_id_when_requesting_then_it_is_refused(
    task_id: str, problem: str
) -> None:
    tasks.when(request(task_id)).then_rejected(problem)


def test_given_two_task_ids_then_each_task_has_its_own_stream() -> None:
    assert task_stream_id(ID) == task_stream_id(ID) == request().aggregate_id
    assert task_stream_id(ID) != task_stream_id(CANCEL_ID)


# --- the request -----------------------------------------------------------------------------


def test_given_no_task_when_requested_then_env_values_are_redacted_and_names_kept() -> None:
    then = tasks.when(request()).then(TaskRequested)
    event = then.events[0]
    assert event.envs == [["API_KEY", REDACTED], ["EMPTY", ""]]
    assert "s3cret-value" not in repr(event) and "s3cret-value" not in repr(request())
    assert then.state is not None and then.state.status == TaskStatus.REQUESTED
    assert (then.state.kind, then.state.user, then.state.app_name) == (
        "install",
        "alice",
        "firefox",
    )


def test_given_a_request_when_the_same_request_comes_again_then_nothing_is_added() -> None:
    tasks.given(request()).when(request()).then_nothing()


def test_given_a_request_when_another_request_uses_its_id_then_it_is_refused() -> None:
    tasks.given(request()).when(request(app_name="chrome")).then_rejected("already used")


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"kind": "reinstall"}, "unknown task kind"),
        ({"user": ""}, "user and app name are required"),
        ({"app_name": ""}, "user and app name are required"),
        ({"version": ""}, "source and version are required"),
        ({"kind": task.UPGRADE, "source": ""}, "source and version are required"),
        ({"envs": (("", "x"),)}, "env without a name"),
        ({"envs": (("A\x00", "x"),)}, "contains a NUL"),
    ],
)
def test_given_an_incomplete_request_when_requested_then_it_is_refused(
    fields: dict[str, Any], reason: str
) -> None:
    tasks.when(request(**fields)).then_rejected(reason)


@pytest.mark.parametrize("kind", [task.UNINSTALL, task.CANCEL])
def test_given_an_uninstall_or_cancel_when_requested_without_source_or_version_then_it_is_kept(
    kind: str,
) -> None:
    then = tasks.when(request(kind=kind, source="", version="", envs=(), all=True))
    assert then.then(TaskRequested).events[0].all is True


def test_given_a_clone_when_requested_then_its_original_hash_title_and_entrances_are_kept() -> None:
    event = tasks.when(clone()).then(TaskRequested).events[0]
    assert (event.raw_app_name, event.request_hash) == ("firefox", "abc123")
    assert event.title == "Firefox <work> & more" and event.entrances == [["web", "Firefox Web"]]


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"request_hash": "ABC123"}, "6-hex request hash"),
        ({"raw_app_name": ""}, "original app"),
        ({"app_name": "firefox"}, "original's name \\+ request hash"),
    ],
)
def test_given_a_clone_with_an_inconsistent_name_when_requested_then_it_is_refused(
    fields: dict[str, Any], reason: str
) -> None:
    tasks.when(clone(**fields)).then_rejected(reason)


# --- dispatch, acceptance, rejection -----------------------------------------------------------


def test_given_no_request_when_dispatched_then_it_is_refused() -> None:
    tasks.when(task.DispatchTask(ID)).then_rejected("no task")


def test_given_a_queued_task_when_dispatched_twice_then_it_is_dispatched_once() -> None:
    then = tasks.given(request()).when(task.DispatchTask(ID)).then(TaskDispatched)
    assert then.state is not None and then.state.dispatched_at == AT
    then.after.when(task.DispatchTask(ID)).then_nothing()


def test_given_a_queued_task_when_accepted_or_rejected_before_dispatch_then_it_is_refused() -> None:
    given = tasks.given(request())
    given.when(task.AcceptTask(ID, "op-1")).then_rejected("cannot be accepted.*requested")
    given.when(task.RejectTask(ID, "no")).then_rejected("cannot be rejected.*requested")


def test_given_a_dispatched_task_when_accepted_then_the_operation_id_is_kept() -> None:
    then = tasks.given(request(), task.DispatchTask(ID)).when(task.AcceptTask(ID, "op-1"))
    state = then.then(TaskAccepted).state
    assert state is not None and (state.status, state.op_id) == (TaskStatus.ACCEPTED, "op-1")
    then.after.when(task.AcceptTask(ID, "op-1")).then_nothing()
    then.after.when(task.AcceptTask(ID, "op-2")).then_rejected("cannot be accepted")
    then.after.when(task.RejectTask(ID, "late")).then_rejected("cannot be rejected.*accepted")


def test_given_a_dispatched_task_when_rejected_then_the_answer_is_kept_without_secrets() -> None:
    answer = '{"code":422,"message":"missing env","token=abc123"} ' + "x" * 10_000
    given = tasks.given(request(), task.DispatchTask(ID))
    then = given.when(task.RejectTask(ID, "code 422", answer)).then(TaskRejected)
    event = then.events[0]
    assert "abc123" not in event.backend_answer and "missing env" in event.backend_answer
    assert len(event.backend_answer) == task.MAX_EXCERPT
    then.after.when(task.RejectTask(ID, "code 422", answer)).then_nothing()
    then.after.when(task.AcceptTask(ID, "op-1")).then_rejected("cannot be accepted.*rejected")
    then.after.when(task.DispatchTask(ID)).then_rejected("cannot be dispatched.*rejected")


# --- cancel before dispatch ------------------------------------------------------------------


@pytest.mark.parametrize("make", [request, clone])
def test_given_a_queued_install_when_a_cancel_dequeues_it_then_it_is_removed(make: Any) -> None:
    then = tasks.given(make()).when(task.DequeueTask(ID, CANCEL_ID)).then(TaskDequeued)
    assert then.state is not None and then.state.status == TaskStatus.DEQUEUED
    then.after.when(task.DequeueTask(ID, CANCEL_ID)).then_nothing()
    then.after.when(task.DispatchTask(ID)).then_rejected("cannot be dispatched.*dequeued")


def test_given_a_dispatched_install_when_a_cancel_would_dequeue_it_then_it_is_refused() -> None:
    given = tasks.given(request(), task.DispatchTask(ID))
    given.when(task.DequeueTask(ID, CANCEL_ID)).then_rejected("taken off the queue.*dispatched")


def test_given_a_queued_uninstall_when_a_cancel_would_dequeue_it_then_it_is_refused() -> None:
    given = tasks.given(request(kind=task.UNINSTALL))
    given.when(task.DequeueTask(ID, CANCEL_ID)).then_rejected("a cancel removes installs")
    tasks.given(request()).when(task.DequeueTask(ID, "nope")).then_rejected("canceling task id")


# --- outcome, timeout, interruption ------------------------------------------------------------


def test_given_an_accepted_task_when_its_outcome_is_observed_then_it_is_closed_once() -> None:
    observe = task.ObserveOutcome(ID, task.SUCCEEDED, "running", "op-1", AT)
    then = tasks.given(*accepted()).when(observe).then(TaskOutcomeObserved)
    assert then.state is not None and then.state.status == TaskStatus.SUCCEEDED
    assert then.state.closed
    then.after.when(observe).then_nothing()
    then.after.when(task.ObserveOutcome(ID, task.FAILED, "installFailed")).then_nothing()


def test_given_a_dispatched_task_when_an_outcome_arrives_before_acceptance_then_it_is_refused() -> (
    None
):
    given = tasks.given(request(), task.DispatchTask(ID))
    given.when(task.ObserveOutcome(ID, task.SUCCEEDED, "running")).then_rejected("dispatched")


def test_given_an_accepted_task_when_a_stale_report_arrives_then_nothing_is_added() -> None:
    given = tasks.given(*accepted())
    other_operation = task.ObserveOutcome(ID, task.FAILED, "installFailed", "op-0")
    given.when(other_operation).then_nothing()
    before_dispatch = AT - timedelta(seconds=1)
    earlier = task.ObserveOutcome(ID, task.FAILED, "installFailed", "", before_dispatch)
    given.when(earlier).then_nothing()


def test_given_an_accepted_task_when_an_unknown_outcome_is_reported_then_it_is_refused() -> None:
    tasks.given(*accepted()).when(task.ObserveOutcome(ID, "done", "x")).then_rejected("unknown")


def test_given_an_accepted_task_when_its_deadline_passes_then_it_times_out_once() -> None:
    given = tasks.given(*accepted())
    deadline = task.TimeOutTask(ID, timedelta(minutes=10))
    given.when(deadline, later(599)).then_rejected("not due")
    then = given.when(deadline, later(600)).then(TaskTimedOut)
    assert then.events[0].deadline_seconds == 600
    then.after.when(deadline, later(700)).then_nothing()
    then.after.when(task.ObserveOutcome(ID, task.SUCCEEDED, "running", "op-1")).then_nothing()


def test_given_a_closed_or_unaccepted_task_when_timing_out_then_nothing_or_a_refusal() -> None:
    deadline = task.TimeOutTask(ID, timedelta(0))
    tasks.given(request(), task.DispatchTask(ID)).when(deadline).then_rejected("timed out")
    observed = task.ObserveOutcome(ID, task.SUCCEEDED, "running", "op-1")
    tasks.given(*accepted(), observed).when(deadline).then_nothing()


@pytest.mark.parametrize("steps", [(), (task.DispatchTask(ID),)])
def test_given_a_task_not_yet_accepted_when_interrupted_then_it_is_closed_with_the_reason(
    steps: tuple[Any, ...],
) -> None:
    interrupt = task.InterruptTask(ID, "the user's session ended before it was sent")
    then = tasks.given(request(), *steps).when(interrupt).then(TaskInterrupted)
    assert then.state is not None and then.state.reason.startswith("the user's session")
    then.after.when(interrupt).then_nothing()
    then.after.when(task.DispatchTask(ID)).then_rejected("cannot be dispatched.*interrupted")


def test_given_an_accepted_task_when_interrupted_then_it_keeps_waiting_for_its_outcome() -> None:
    interrupt = task.InterruptTask(ID, "restart")
    tasks.given(*accepted()).when(interrupt).then_rejected("waits for its outcome")
    tasks.given(request()).when(task.InterruptTask(ID, "")).then_rejected("needs a reason")
    rejected = (request(), task.DispatchTask(ID), task.RejectTask(ID, "no"))
    tasks.given(*rejected).when(interrupt).then_rejected("cannot be interrupted.*rejected")


# --- wiring ------------------------------------------------------------------------------------


@pytest.mark.parametrize("command_type", task.TASK.commands)
def test_every_task_command_is_decided_by_the_task_aggregate(command_type: type) -> None:
    assert DECIDERS[command_type] is task.TASK


def test_given_a_task_command_when_admitted_then_its_limits_are_known() -> None:
    check_command(request())
    check_command(task.ObserveOutcome(ID, task.SUCCEEDED, "running", observed_at=AT))


# --- reconciliation and a cancel settled in the queue ----------------------------------------


def test_given_a_dispatched_task_when_app_service_shows_it_then_it_waits_as_accepted() -> None:
    then = tasks.given(request(), task.DispatchTask(ID))
    then = then.when(task.ReconcileTask(ID, found="installing")).then(task.TaskReconciled)
    assert then.state is not None and then.state.status == TaskStatus.ACCEPTED
    assert then.state.op_id == "" and then.state.accepted_at == AT
    then.after.when(task.ObserveOutcome(ID, task.SUCCEEDED, "running", observed_at=AT)).then(
        TaskOutcomeObserved
    )


def test_given_an_accepted_task_when_reconciled_again_then_nothing_is_added() -> None:
    tasks.given(*accepted()).when(task.ReconcileTask(ID, found="running")).then_nothing()


def test_given_a_queued_task_when_reconciled_then_it_is_refused() -> None:
    tasks.given(request()).when(task.ReconcileTask(ID, found="absent")).then_rejected(
        "cannot be reconciled"
    )


def cancel_request() -> task.RequestTask:
    return task.RequestTask(CANCEL_ID, kind=task.CANCEL, user="alice", app_name="firefox")


def test_given_a_queued_cancel_when_it_removed_its_install_then_it_is_settled() -> None:
    then = tasks.given(cancel_request()).when(task.SettleCancelInQueue(CANCEL_ID, ID))
    then = then.then(task.TaskSettledInQueue)
    assert then.events[0].removed_task == ID
    assert then.state is not None and then.state.closed
    then.after.when(task.SettleCancelInQueue(CANCEL_ID, ID)).then_nothing()


def test_given_an_install_when_settled_as_a_cancel_then_it_is_refused() -> None:
    tasks.given(request()).when(task.SettleCancelInQueue(ID, CANCEL_ID)).then_rejected(
        "not a cancel"
    )


def test_given_a_dispatched_cancel_when_settled_in_the_queue_then_it_is_refused() -> None:
    tasks.given(cancel_request(), task.DispatchTask(CANCEL_ID)).when(
        task.SettleCancelInQueue(CANCEL_ID, ID)
    ).then_rejected("cannot be settled")


def test_given_a_whole_second_report_from_the_second_of_the_dispatch_then_it_closes_the_task() -> (
    None
):
    at_dispatch = DecisionContext(at=AT.replace(microsecond=700_000))
    then = tasks.given(request()).when(task.DispatchTask(ID), at_dispatch).then(TaskDispatched)
    then = then.after.when(task.AcceptTask(ID, "op-1"), at_dispatch).then(TaskAccepted)
    listed = task.ObserveOutcome(ID, task.SUCCEEDED, "running", observed_at=AT)  # .000
    then.after.when(listed, at_dispatch).then(TaskOutcomeObserved)


def test_given_a_report_from_the_second_before_the_dispatch_then_it_closes_nothing() -> None:
    earlier = AT - timedelta(seconds=1)
    tasks.given(*accepted()).when(
        task.ObserveOutcome(ID, task.SUCCEEDED, "running", observed_at=earlier)
    ).then_nothing()
