"""The NATS and HTTP benchmarks measure the bare libraries beside the project, in one run.

A smoke run at a tiny size, not a timing: each side's figures and their ratio are printed,
in the table and in the last JSON line (:mod:`bench.pairs`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.pairs import Pair, pairs_of
from tests.e2e.test_bench_smoke import last_json, run_bench


def pair_named(pairs: list[Pair], start: str) -> Pair:
    found = [pair for pair in pairs if pair.measure.startswith(start)]
    assert len(found) == 1, f"pairs starting {start!r}: {pairs}"
    return found[0]


def assert_printed(output: str, pair: Pair) -> None:
    """The table shows the pair: its measure, with the ratio beside both figures."""
    line = next((line for line in output.splitlines() if line.endswith(pair.measure)), None)
    assert line is not None, output
    assert f"{pair.ratio:.3f}" in line.split(), line


def test_given_the_nats_bench_when_run_tiny_then_it_prints_the_project_beside_the_bare_consumer(
    tmp_path: Path,
) -> None:
    output = run_bench(
        "nats_bench.py",
        *("--rates", "50", "--seconds", "0.5", "--users", "2", "--apps", "3"),
        *("--bare-extra-steps", "1", "--db", str(tmp_path / "ledger.db")),
    )
    assert "bare consumer (latency: publish to commit)" in output
    report = last_json(output)
    assert report["bare_steps"], output
    assert all(step["projected"] == step["sent"] > 0 for step in report["bare_steps"]), output
    assert [step["offered"] for step in report["bare_steps"]] == [50, 100], output
    assert all(step["commit_p99_ms"] > 0 for step in report["project_steps"]), output
    pairs = pairs_of(output)
    to_view = pair_named(pairs, "nats: p99 at 50 msg/s, publish to catalog view")
    to_commit = pair_named(pairs, "nats: p99 at 50 msg/s, publish to commit")
    for pair in (to_view, to_commit):
        assert pair.project > 0 and pair.raw > 0 and pair.unit == "ms", pair
        assert pair.ratio == pytest.approx(pair.raw / pair.project), pair
        assert pair.target == 0.5, pair
        assert_printed(output, pair)
    saturation = pair_named(pairs, "nats: saturation msg/s vs bare single-threaded")
    assert saturation.project > 0 and saturation.raw > 0 and saturation.target == 2.0
    assert "not saturated: a lower bound" in saturation.measure, saturation
    assert_printed(output, saturation)


def test_given_the_http_bench_when_run_tiny_then_it_prints_each_route_beside_the_bare_route(
    tmp_path: Path,
) -> None:
    output = run_bench(
        "http_bench.py",
        *("--listings", "20", "--rate", "20", "--seconds", "1", "--warmup", "0.2"),
        *("--churn", "2", "--db", str(tmp_path / "http.db")),
    )
    report = last_json(output)
    bare = report["bare"]
    assert bare["paths"]["data"] == f"/bare/{report['data_bytes']}", bare
    for route in ("hash", "data"):
        assert bare[route]["requests"] > 0 and bare[route]["failures"] == 0, bare
        assert bare[route]["p99_ms"] > 0, bare
        pair = pair_named(pairs_of(output), f"http: {route} p99 vs bare")
        assert pair.project == report[route]["p99_ms"] and pair.raw == bare[route]["p99_ms"]
        assert pair.ratio == pytest.approx(pair.raw / pair.project), pair
        assert_printed(output, pair)
    assert set(report["absolute_targets"]) == {"hash", "data"}, report
    assert report["absolute_targets"]["data"]["target_ms"] == 10.0, report
