"""Three ``serve`` processes on one PostgreSQL schema and one nats-server.

Each role (cycle, projector, notifier, tasks) is held by one instance at a time; killing or
pausing its holder moves it to another instance and its job goes on, with nothing written
twice. Leases are short (2 s) so that failovers take a few seconds.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import NO_POSTGRES, POSTGRES_URL
from tests.support.fakes.app_service import FakeAppService
from tests.support.instances import (
    API,
    ROLES,
    USER,
    Instance,
    Instances,
    cluster_env,
    fresh_schema,
    wait_until,
)
from tests.support.nats_server import Nats, nats_for_test
from tests.support.nats_traffic import Traffic
from tests.support.serve_process import ledger_command
from tests.support.timeline_catalog import TimelineCatalog

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not POSTGRES_URL, reason=NO_POSTGRES),
]

TOKEN = "eyJhbGciOiJIUzI1NiJ9.multi-token.sig"
#: the app whose install app-service accepts and never reports on: only the sweep ends it
SILENT_APP = "alist"
STREAMED_APPS = ["affine", "anythingllm"]


@pytest.fixture
def nats(tmp_path: Path) -> Iterator[Nats]:
    with nats_for_test(tmp_path, own=True) as server:
        yield server


@pytest.fixture
def app_service(nats: Nats) -> Iterator[FakeAppService]:
    prefix = nats.names.app_state.removesuffix(".*")
    with FakeAppService(nats_url=nats.url, subject_prefix=prefix) as fake:
        fake.accept_silently(SILENT_APP)
        yield fake


@pytest.fixture
def timeline(cluster: Instances) -> TimelineCatalog:
    """The cluster's catalog, moved along the real catalog history (the apps the traffic and
    the tasks use are never removed)."""
    return TimelineCatalog(cluster.catalog, keep=[SILENT_APP, *STREAMED_APPS])


@pytest.fixture
def cluster(tmp_path: Path, nats: Nats, app_service: FakeAppService) -> Iterator[Instances]:
    with fresh_schema(POSTGRES_URL) as url:
        env = cluster_env(
            url,
            nats,
            tmp_path,
            APP_SERVICE_SERVICE_HOST=app_service.host,
            APP_SERVICE_SERVICE_PORT=str(app_service.port),
            REPO_URL_HOST="chart-repo.test",
            LEDGER_TASK_SYNC_WAIT="0",
            LEDGER_TASK_DEADLINE="3",
        )
        instances = Instances(env, tmp_path)
        try:
            yield instances.start()
        finally:
            instances.close()


def offered(cluster: Instances, app: str, version: str) -> int:
    """How many times the log offered ``app`` at ``version``."""
    return sum(
        1
        for _, _, state in cluster.events("listing.Offered")
        if state.get("app_id") == app and state.get("app_version") == version
    )


def wait_offered_everywhere(cluster: Instances, app: str, version: str) -> None:
    for member in cluster.live():
        wait_until(
            lambda m=member: m.latest_version(app) == version,
            f"{app} {version} offered by {member.name}",
        )


def offer_next_change_set(cluster: Instances, timeline: TimelineCatalog) -> dict[str, str]:
    """The catalog's next real change set: each new version offered once, seen everywhere."""
    changed = timeline.advance()
    for app, version in changed.items():
        wait_offered_everywhere(cluster, app, version)
        assert offered(cluster, app, version) == 1, (app, version)
    return changed


def install(member: Instance, app: str) -> str:
    version = wait_until(lambda: member.latest_version(app), f"{app} in the catalog")
    answer = member.service.request(  # type: ignore[union-attr]
        "POST",
        f"{API}/apps/{app}/install",
        USER,
        body={"source": "market.olares", "app_name": app, "version": version},
        headers={"X-Authorization": TOKEN},
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["data"]["task_id"])


def task_outcome(member: Instance, task_id: str) -> str | None:
    answer = member.get(f"{API}/ledger/tasks/{task_id}")
    return str(answer.json()["data"]["outcome"]) if answer.status_code == 200 else None


def check_job(
    cluster: Instances,
    role: str,
    traffic: Traffic,
    since_notices: int,
    timeline: TimelineCatalog,
) -> None:
    """The job of ``role`` runs again, on whoever holds it now."""
    if role == "cycle":
        offer_next_change_set(cluster, timeline)
    elif role == "projector":
        head = cluster.head()
        wait_until(lambda: cluster.projected() >= head > 0, "the views caught up")
    elif role == "notifier":
        wait_until(
            lambda: len(traffic.notices_now()) > since_notices, "a notification after the kill"
        )
    else:
        member = cluster.live()[0]
        task_id = install(member, SILENT_APP)
        wait_until(lambda: task_outcome(member, task_id) == "timed_out", "the sweep timing out")


def assert_one_effect_per_message(cluster: Instances, traffic: Traffic) -> None:
    published = traffic.published_now()
    assert published, "no app-state message was published"
    wait_until(
        lambda: (
            {p.event_id for p in published}
            <= {s.get("event_id") for _, _, s in cluster.events("installation.")}
        ),
        "every published message taken in",
        60,
    )
    # an effect is an applied state; a redelivery older than the 64 event ids an installation
    # remembers is recorded again as ignored (stale), for audit, and applied never
    counts = Counter(s.get("event_id") for _, _, s in cluster.events("installation.StateObserved"))
    twice = {e: n for e, n in counts.items() if n > 1 and e and e.startswith("multi-")}
    assert not twice, f"messages taken in more than once: {twice}"
    last = {p.app: p.state for p in published}
    head = cluster.head()
    wait_until(lambda: cluster.projected() >= head, "the views caught up with the log", 60)
    with cluster.connect() as conn:
        rows = conn.execute(
            "SELECT name, state FROM installations WHERE user_name = %s", (USER,)
        ).fetchall()
        parked = conn.execute("SELECT message_id, reason FROM parked_messages").fetchall()
    assert {app: state for app, state in rows if app in last} == last
    assert parked == []


def assert_repeats_share_their_message_id(traffic: Traffic) -> None:
    first: dict[str, str | None] = {}
    for notice in traffic.notices_now():
        assert notice.msg_id, f"a notification without Nats-Msg-Id: {notice}"
        copy_of = first.setdefault(notice.body, notice.msg_id)
        assert copy_of == notice.msg_id, f"a notification repeated as a new one: {notice}"


def rebuild_verifies(cluster: Instances) -> None:
    codes = cluster.close()
    assert all(code == 0 for code in codes), (codes, cluster.logs()[-4000:])
    done = ledger_command("rebuild", "--verify", env=cluster.env, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_given_three_instances_when_polled_then_each_role_has_one_live_holder_and_all_agree(
    cluster: Instances, timeline: TimelineCatalog
) -> None:
    # given three instances serving one store
    held = cluster.wait_roles_held()
    # when each instance is asked who holds what, a few times over
    for _ in range(10):
        shown = [member.roles() for member in cluster.live()]
        # then they all name the same running holder for every role
        assert all(view == shown[0] for view in shown), shown
        assert shown[0] == held
        time.sleep(0.1)
    # and each change set of the real catalog's history is offered once, seen everywhere
    for _ in range(3):
        offer_next_change_set(cluster, timeline)
    cluster.same_hash()


def test_given_a_stream_of_app_states_when_each_roles_holder_is_killed_then_the_jobs_go_on(
    cluster: Instances, nats: Nats, timeline: TimelineCatalog
) -> None:
    with Traffic(nats, USER, STREAMED_APPS).running() as traffic, traffic.publishing():
        # given messages streaming in while the holder of each role is killed in turn
        for role in ROLES:
            old = cluster.holders()[role]
            assert old is not None
            victim = cluster.by_name(old)
            notices = len(traffic.notices_now())
            victim.kill()
            # then another instance takes the role, and the role's job goes on
            new = cluster.wait_taken_over(role, old)
            assert new != old
            check_job(cluster, role, traffic, notices, timeline)
            victim.start()
            cluster.wait_roles_held()
        # when the nats-server restarts mid-run
        assert nats.server is not None
        before = len(traffic.published_now()), len(traffic.notices_now())
        nats.server.restart()
        # then intake and notifications recover
        wait_until(lambda: len(traffic.published_now()) > before[0] + 10, "publishing again")
        wait_until(lambda: len(traffic.notices_now()) > before[1], "notifications again")
    assert_one_effect_per_message(cluster, traffic)
    assert_repeats_share_their_message_id(traffic)
    cluster.same_hash()
    rebuild_verifies(cluster)


def test_given_a_holder_paused_past_its_lease_when_it_resumes_then_nothing_is_written_twice(
    cluster: Instances, timeline: TimelineCatalog
) -> None:
    # given the holder of every role paused for longer than its lease
    held = cluster.wait_roles_held()
    paused = cluster.by_name(held["cycle"])
    paused.signal(signal.SIGSTOP)
    new = cluster.wait_taken_over("cycle", paused.name)
    first = timeline.advance()
    for app, version in first.items():
        wait_until(lambda a=app, v=version: offered(cluster, a, v) == 1, "the new holder offering")
    # when it resumes
    paused.signal(signal.SIGCONT)
    wait_until(
        lambda: "ran out unrenewed" in paused.logs() or "lost the role" in paused.logs(),
        "the resumed instance noticing it lost its roles",
    )
    second = offer_next_change_set(cluster, timeline)
    # then it wrote nothing twice and the roles are held by one running instance each
    for app, version in {**first, **second}.items():
        assert offered(cluster, app, version) == 1, (app, version)
    assert paused.running, paused.logs()
    assert cluster.holders()["cycle"] in {new, paused.name}
    cluster.wait_roles_held()
    offers = Counter(
        (s.get("app_id"), s.get("app_version")) for _, _, s in cluster.events("listing.Offered")
    )
    assert max(offers.values()) == 1, offers
    cluster.same_hash()
    assert all(m.ready()["roles"] for m in cluster.live())
    rebuild_verifies(cluster)
