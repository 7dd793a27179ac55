"""Given role holders on one store, a job runs on one instance at a time and stops when its
lease is lost."""

from __future__ import annotations

import asyncio

from market_ledger.bootstrap import Ledger
from market_ledger.projections import role_leases as leases
from market_ledger.projections.role_leases import Lease
from market_ledger.service.roles import LeaseSettings, RoleHolder

QUICK = LeaseSettings(ttl_seconds=0.6, retry_seconds=0.02, margin_seconds=0.1)


class Recorder:
    """A job that records who ran it and whether it was told to stop."""

    def __init__(self) -> None:
        self.running: set[str] = set()
        self.most_at_once = 0
        self.started: list[tuple[str, int]] = []
        self.stopped: list[str] = []

    def job_for(self, name: str):  # type: ignore[no-untyped-def]
        async def job(stop: asyncio.Event, lease: Lease) -> None:
            self.running.add(name)
            self.most_at_once = max(self.most_at_once, len(self.running))
            self.started.append((name, lease.token))
            try:
                await stop.wait()
                self.stopped.append(name)
            finally:
                self.running.discard(name)

        return job


async def until(condition, what: str) -> None:  # type: ignore[no-untyped-def]
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never: {what}")


def test_given_two_instances_then_one_runs_the_job_and_the_other_takes_over_when_it_stops(
    ledger: Ledger,
) -> None:
    async def scenario() -> Recorder:
        seen = Recorder()
        first_stop, second_stop = asyncio.Event(), asyncio.Event()
        first = RoleHolder("cycle", "a:1", ledger.writer, seen.job_for("a"), QUICK)
        second = RoleHolder("cycle", "b:2", ledger.writer, seen.job_for("b"), QUICK)
        running_first = asyncio.create_task(first.run(first_stop))
        await until(lambda: seen.running == {"a"}, "a holds the role")
        running_second = asyncio.create_task(second.run(second_stop))
        await asyncio.sleep(1.0)  # several renewals: the role stays with a
        assert seen.running == {"a"} and first.state.renewals >= 1
        first_stop.set()
        await running_first
        await until(lambda: seen.running == {"b"}, "b took the role")
        second_stop.set()
        await running_second
        return seen

    seen = asyncio.run(scenario())
    assert seen.most_at_once == 1
    assert [token for _, token in seen.started] == [1, 2]
    assert seen.stopped == ["a", "b"]


def test_given_a_holder_whose_lease_was_taken_then_its_job_is_stopped(ledger: Ledger) -> None:
    async def scenario() -> Recorder:
        seen = Recorder()
        stop = asyncio.Event()
        holder = RoleHolder("notifier", "a:1", ledger.writer, seen.job_for("a"), QUICK)
        running = asyncio.create_task(holder.run(stop))
        await until(lambda: seen.running == {"a"}, "a holds the role")
        with ledger.writer.begin() as conn:  # a takeover, as after the lease ran out
            lease = leases.current_leases(conn)["notifier"]
            leases.release(conn, lease)
            assert leases.try_acquire(conn, "notifier", "b:2", 3600.0) is not None
        await until(lambda: not holder.state.held, "a let the role go")
        assert seen.stopped == ["a"]
        await asyncio.sleep(0.3)  # b holds it: a does not run the job again
        assert seen.running == set()
        stop.set()
        await running
        return seen

    seen = asyncio.run(scenario())
    assert seen.started == [("a", 1)]


def test_given_a_holder_paused_past_its_lease_then_it_stops_before_writing_again(
    ledger: Ledger,
) -> None:
    now = [0.0]

    async def scenario() -> Recorder:
        seen = Recorder()
        stop = asyncio.Event()
        holder = RoleHolder(
            "tasks", "a:1", ledger.writer, seen.job_for("a"), QUICK, monotonic=lambda: now[0]
        )
        running = asyncio.create_task(holder.run(stop))
        await until(lambda: seen.running == {"a"}, "a holds the role")
        now[0] += 60.0  # as if the process had been stopped for a minute
        await until(lambda: seen.stopped, "a's job stopped")
        stop.set()
        await running
        return seen

    seen = asyncio.run(scenario())
    # stopped by its own clock; it may take the role again, but only with the same lease
    # (nobody else could take it while it was still live in the database)
    assert seen.stopped[0] == "a" and {token for _, token in seen.started} == {1}


def test_given_a_job_that_fails_then_the_failure_reaches_the_service(ledger: Ledger) -> None:
    async def failing(stop: asyncio.Event, lease: Lease) -> None:
        raise RuntimeError("the job broke")

    async def scenario() -> None:
        holder = RoleHolder("cycle", "a:1", ledger.writer, failing, QUICK)
        await holder.run(asyncio.Event())

    try:
        asyncio.run(scenario())
    except RuntimeError as error:
        assert str(error) == "the job broke"
    else:
        raise AssertionError("the failure was swallowed")
