"""The market data's snapshot cache: valid per views position, built once, never stale."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import orjson

from market_ledger.adapters.http_api.routes_market import SnapshotCache


def test_a_snapshot_is_reused_at_its_position_and_rebuilt_when_the_views_move() -> None:
    cache = SnapshotCache(capacity=4)
    builds: list[int] = []

    def build(position: int) -> bytes:
        builds.append(position)
        return f'{{"at":{position}}}'.encode()

    assert orjson.dumps(cache.get_or_build("alice", 7, lambda: build(7))) == b'{"at":7}'
    assert orjson.dumps(cache.get_or_build("alice", 7, lambda: build(7))) == b'{"at":7}'
    assert orjson.dumps(cache.get_or_build("alice", 9, lambda: build(9))) == b'{"at":9}'
    assert builds == [7, 9]


def test_while_one_request_rebuilds_the_others_at_the_new_position_wait_for_it_not_the_old() -> (
    None
):
    cache = SnapshotCache(capacity=4)
    cache.get_or_build("alice", 1, lambda: b'"old"')
    building, release = threading.Event(), threading.Event()
    again: list[str] = []

    def slow_build() -> bytes:
        building.set()
        release.wait(10)
        return b'"new"'

    with ThreadPoolExecutor(2) as pool:
        rebuild = pool.submit(cache.get_or_build, "alice", 2, slow_build)
        assert building.wait(10)
        meanwhile = pool.submit(
            cache.get_or_build, "alice", 2, lambda: again.append("built") or b'"again"'
        )
        time.sleep(0.05)  # room for the old snapshot to be answered, were it ever
        release.set()
        assert orjson.dumps(meanwhile.result(timeout=10)) == b'"new"'
        assert orjson.dumps(rebuild.result(timeout=10)) == b'"new"'
    assert again == []
    assert orjson.dumps(cache.get_or_build("alice", 1, lambda: b'"older"')) == b'"new"'


def test_without_a_previous_snapshot_concurrent_requests_build_it_once() -> None:
    cache = SnapshotCache(capacity=4)
    builds: list[str] = []
    gate = threading.Event()

    def build() -> bytes:
        gate.wait(10)
        builds.append("built")
        return b"1"

    with ThreadPoolExecutor(4) as pool:
        answers = [pool.submit(cache.get_or_build, "bob", 3, build) for _ in range(4)]
        gate.set()
        assert {orjson.dumps(a.result(timeout=10)) for a in answers} == {b"1"}
    assert builds == ["built"]


def test_the_least_recently_used_snapshot_is_evicted_past_the_capacity() -> None:
    cache = SnapshotCache(capacity=2)
    for user in ("a", "b", "c"):
        cache.get_or_build(user, 1, lambda u=user: u.encode())  # type: ignore[misc]
    rebuilt: list[str] = []
    cache.get_or_build("a", 1, lambda: rebuilt.append("a") or b"a")  # type: ignore[func-returns-value]
    cache.get_or_build("c", 1, lambda: rebuilt.append("c") or b"c")  # type: ignore[func-returns-value]
    assert rebuilt == ["a"]
