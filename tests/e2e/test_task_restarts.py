"""``serve`` stopped at each step of a task (SIGTERM, and SIGKILL) and started again on the same
store: what became of the task, with nothing sent to app-service again and the user's token
used for one call at most, never stored nor logged."""

from __future__ import annotations

import os
import shutil
import signal
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest

from market_ledger.domain.canonical import parse_instant
from market_ledger.service.task_watch import RESTARTED_IN_FLIGHT, RESTARTED_QUEUED
from tests.fixtures import EXAMPLE_CATALOG
from tests.support.app_service_calls import subject_prefix
from tests.support.fakes.app_service import FakeAppService
from tests.support.fakes.app_state_messages import status_time
from tests.support.fakes.http_fake import Reply
from tests.support.nats_server import nats_for_test
from tests.support.restart_process import (
    SOURCE,
    TOKEN,
    USER,
    Notices,
    ServeProcess,
    ledger_command,
    serve_env,
    wait_until,
)

APP = "affine"
STOPS = [pytest.param(signal.SIGTERM, id="sigterm"), pytest.param(signal.SIGKILL, id="sigkill")]
FINISHED_FAILED = ["task_finished_failed", "task_outcome"]


@attrs.frozen
class Setup:
    serve: ServeProcess
    fake: FakeAppService
    notices: Notices
    version: str
    workdir: Path

    def stop(self, signum: int) -> None:
        """Stop the service with ``signum``: a SIGTERM ends it cleanly, a SIGKILL at once."""
        code = self.serve.stop(signum)
        assert code == (0 if signum == signal.SIGTERM else -signal.SIGKILL), self.serve.logs()

    def restart(self, signum: int) -> None:
        self.stop(signum)
        self.serve.start()

    def accepted(self, task_id: str) -> dict[str, Any]:
        """The task once app-service's acceptance is recorded."""
        found: dict[str, Any] = self.serve.wait_task(
            task_id, lambda t: t["status"] == "completed", "accepted"
        )
        return found

    def ended(self, task_id: str) -> dict[str, Any]:
        """The task once its real outcome is known."""
        found: dict[str, Any] = self.serve.wait_task(
            task_id, lambda t: t["outcome"] is not None, "with its outcome"
        )
        return found

    def points(self, task_id: str, *expected: str) -> list[str]:
        """The task's points once the last of ``expected`` was published."""
        return wait_until(
            lambda: (p := self.notices.points(task_id))[-1:] == [expected[-1]] and p,
            f"the points of {task_id} up to {expected[-1]}",
        )

    def installs_sent(self) -> int:
        return self.fake.count("install")


@pytest.fixture(scope="module")
def store_with_the_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with the example catalog as its one source, copied by every test."""
    folder = tmp_path_factory.mktemp("template")
    env = {**os.environ, "LEDGER_DATABASE_URL": f"sqlite:///{folder}/ledger.db"}
    url = f"file://{EXAMPLE_CATALOG}"
    ledger_command("source", "add", SOURCE, "--type", "remote", "--url", url, env=env)
    return folder / "ledger.db"


@pytest.fixture
def setup(tmp_path: Path, store_with_the_catalog: Path) -> Iterator[Setup]:
    shutil.copy(store_with_the_catalog, tmp_path / "ledger.db")
    with (
        nats_for_test(tmp_path) as nats,
        FakeAppService(
            nats_url=nats.url, subject_prefix=subject_prefix(nats), step_delay=0.05
        ) as fake,
        Notices(nats).collecting() as notices,
    ):
        env = serve_env(tmp_path, nats, fake.host_port)
        serve = ServeProcess(env, tmp_path)
        try:
            serve.start()
            yield Setup(serve, fake, notices, serve.catalog_version(APP), tmp_path)
        finally:
            serve.close()


def stopped_store_rebuilds_and_holds_no_token(setup: Setup) -> None:
    """The last run stops cleanly; the views rebuild to what they were; the token is in no
    file the service wrote (store, views, logs), only in the calls each test counted."""
    assert setup.serve.stop(signal.SIGTERM) == 0, setup.serve.logs()
    rebuilt = ledger_command("rebuild", "--verify", env=setup.serve.env, check=False)
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    for path in setup.workdir.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), f"the token is in {path}"
    operations = [r for r in setup.fake.requests if "/apps/" in r.path]
    assert all(r.headers.get("x-authorization") == TOKEN for r in operations)


@pytest.mark.parametrize("signum", STOPS)
def test_given_a_task_queued_behind_a_call_in_flight_when_restarted_then_neither_is_sent_again(
    setup: Setup, signum: int
) -> None:
    setup.fake.hang(app=APP, action="install")
    in_flight = setup.serve.install(APP, setup.version)
    setup.fake.hangs.wait_for_waiting(1)
    queued = setup.serve.cancel(APP)
    setup.serve.wait_task(queued, lambda t: t["status"] == "pending", "queued")

    setup.restart(signum)

    task = setup.ended(queued)
    assert (task["status"], task["outcome"]) == ("failed", "interrupted")
    assert task["error"] == RESTARTED_QUEUED
    assert setup.points(queued, *FINISHED_FAILED) == FINISHED_FAILED
    outcome = setup.notices.of(queued, "task_outcome")
    assert outcome is not None and outcome["extensions"]["outcome"] == "interrupted"
    assert setup.fake.count("cancel") == 0, "the queued cancel was never sent"
    # the call in flight: app-service shows no sign of it, so it is interrupted, unsent again
    task = setup.ended(in_flight)
    assert (task["status"], task["outcome"]) == ("failed", "interrupted")
    assert task["error"].startswith(RESTARTED_IN_FLIGHT)
    assert setup.points(in_flight, "task_execute", *FINISHED_FAILED)
    assert setup.installs_sent() == 1
    stopped_store_rebuilds_and_holds_no_token(setup)


def app_service_takes_it(setup: Setup, how: str) -> None:
    """app-service, while the market is down, takes the install it was asked for: the hung
    call goes on and the install ends (its lifecycle published on NATS, kept by the stream),
    or is still going at the restart, or the app is simply listed as running."""
    if how == "listed":
        setup.fake.install(USER, APP, status_time=status_time(datetime.now(UTC)))
        return
    if how == "going":
        setup.fake.pause_at(APP, "downloading")
    setup.fake.release()
    wait_until(lambda: setup.fake.operations, "the install taken by app-service")
    if how == "ended":
        setup.fake.settle()
        # app-service lists slowly: the intake has the ending state before the task is
        # reconciled
        setup.fake.set_latency("all-apps", 0.5)


@pytest.mark.parametrize(
    ("how", "signum"),
    [
        pytest.param("ended", signal.SIGTERM, id="ended-sigterm"),
        pytest.param("ended", signal.SIGKILL, id="ended-sigkill"),
        pytest.param("going", signal.SIGKILL, id="going-sigkill"),
        pytest.param("listed", signal.SIGKILL, id="listed-sigkill"),
    ],
)
def test_given_a_call_in_flight_when_app_service_took_it_meanwhile_then_it_is_reconciled_and_closed(
    setup: Setup, signum: int, how: str
) -> None:
    setup.fake.hang(app=APP, action="install")
    task_id = setup.serve.install(APP, setup.version)
    setup.fake.hangs.wait_for_waiting(1)
    setup.serve.wait_task(task_id, lambda t: t["status"] == "running", "sent")
    setup.stop(signum)
    app_service_takes_it(setup, how)
    setup.serve.start()
    if how == "going":
        task = setup.accepted(task_id)
        assert (task["outcome"], task["op_id"]) == (None, None), "reconciled, with no op id"
        # from now on the list cannot be read: the end can reach the market on NATS only
        setup.fake.fail("all-apps", Reply.error(503, "app-service is busy"))
        setup.fake.resume(APP)

    task = setup.ended(task_id)
    assert (task["status"], task["outcome"], task["op_id"]) == ("completed", "succeeded", None)
    assert setup.serve.history(APP) == [
        "task_requested",
        "task_dispatched",
        "task_reconciled",
        "task_outcome_observed",
    ]
    assert setup.points(task_id, "task_outcome") == [
        "task_execute",
        "task_finished_succeed",
        "task_outcome",
    ]
    assert setup.installs_sent() == 1
    stopped_store_rebuilds_and_holds_no_token(setup)


def test_given_app_service_unreachable_at_the_restart_then_the_task_stays_sent_until_it_answers(
    setup: Setup,
) -> None:
    setup.fake.hang(app=APP, action="install")
    task_id = setup.serve.install(APP, setup.version)
    setup.fake.hangs.wait_for_waiting(1)
    setup.stop(signal.SIGKILL)
    setup.fake.fail("all-apps", Reply.error(503, "app-service is restarting"))
    setup.fake.release()
    wait_until(lambda: setup.fake.operations, "the install taken by app-service")
    setup.serve.start()

    setup.serve.wait_for(
        lambda: setup.serve.log.read_text().count("stays unreconciled") >= 2, "two looks"
    )
    task = setup.serve.task(task_id)
    assert task is not None and (task["status"], task["outcome"]) == ("running", None)
    setup.fake.heal("all-apps")
    task = setup.ended(task_id)
    assert (task["status"], task["outcome"]) == ("completed", "succeeded")
    assert "task_reconciled" in setup.serve.history(APP)
    assert setup.installs_sent() == 1
    stopped_store_rebuilds_and_holds_no_token(setup)


@pytest.mark.parametrize(
    ("resumed", "signum"),
    [
        pytest.param("while down", signal.SIGTERM, id="while-down-sigterm"),
        pytest.param("while down", signal.SIGKILL, id="while-down-sigkill"),
        pytest.param("after the restart", signal.SIGKILL, id="after-the-restart-sigkill"),
    ],
)
def test_given_an_accepted_task_when_restarted_then_the_lifecycle_s_end_closes_it(
    setup: Setup, signum: int, resumed: str
) -> None:
    setup.fake.pause_at(APP, "downloading")
    task_id = setup.serve.install(APP, setup.version)
    op_id = setup.accepted(task_id)["op_id"]
    assert op_id == setup.fake.op_ids("install")[0]
    wait_until(lambda: "downloading" in states_published(setup), "the download going")
    setup.stop(signum)
    if resumed == "while down":
        setup.fake.resume(APP)
        setup.fake.settle()
    setup.serve.start()
    setup.fake.resume(APP)

    task = setup.ended(task_id)
    assert (task["status"], task["outcome"], task["op_id"]) == ("completed", "succeeded", op_id)
    assert setup.serve.history(APP)[-2:] == ["task_accepted", "task_outcome_observed"]
    assert setup.points(task_id, "task_outcome")[-1] == "task_outcome"
    assert setup.installs_sent() == 1
    stopped_store_rebuilds_and_holds_no_token(setup)


def states_published(setup: Setup) -> list[str]:
    return [message["state"] for _, message in setup.fake.published]


def test_given_requests_answered_a_moment_before_a_kill_then_every_answered_task_exists(
    setup: Setup,
) -> None:
    apps = ["affine", "alist", "bazarr", "blinko"]
    versions = {app: setup.serve.catalog_version(app) for app in apps}
    answered: list[str] = []
    lock = threading.Lock()
    first = threading.Event()

    def ask(app: str) -> None:
        try:
            task_id = setup.serve.install(app, versions[app])
        except (httpx.HTTPError, AssertionError):
            return  # killed before it was answered: the client knows of no task
        with lock:
            answered.append(task_id)
        first.set()

    askers = [threading.Thread(target=ask, args=(app,)) for app in apps]
    for asker in askers:
        asker.start()
    assert first.wait(30), "no request was answered"
    setup.stop(signal.SIGKILL)
    for asker in askers:
        asker.join(30)
    setup.serve.start()

    with lock:
        assert answered
        for task_id in answered:
            assert setup.ended(task_id)["task_id"] == task_id
    sent = [r.path for r in setup.fake.requests_to("install")]
    assert len(sent) == len(set(sent)), "no app's install was sent twice"
    stopped_store_rebuilds_and_holds_no_token(setup)


@pytest.mark.parametrize("signum", STOPS)
def test_given_an_accepted_task_past_its_deadline_at_the_restart_then_the_first_sweep_times_it_out(
    setup: Setup, signum: int
) -> None:
    setup.fake.accept_silently(app=APP, action="install")
    task_id = setup.serve.install(APP, setup.version)
    accepted_at = parse_instant(setup.accepted(task_id)["completed_at"])
    setup.stop(signum)
    # the next run allows a second, and sweeps only once at start within the test
    setup.serve.env.update(LEDGER_TASK_DEADLINE="1", LEDGER_TASK_SWEEP_INTERVAL="600")
    wait_until(
        lambda: datetime.now(UTC) - accepted_at > timedelta(seconds=1), "the deadline passed"
    )
    setup.serve.start()

    task = setup.ended(task_id)
    assert (task["status"], task["outcome"]) == ("failed", "timed_out")
    assert task["error"] == "no outcome within 1 s of acceptance"
    assert setup.points(task_id, "task_outcome")[-1] == "task_outcome"
    outcome = setup.notices.of(task_id, "task_outcome")
    assert outcome is not None and outcome["extensions"]["outcome"] == "timed_out"
    assert setup.installs_sent() == 1
    stopped_store_rebuilds_and_holds_no_token(setup)
