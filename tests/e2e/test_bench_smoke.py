"""Every benchmark the README shows runs, at a tiny size: a smoke run, not a timing.

Each script runs as the README runs it (``python bench/NAME.py``, from the project root) with
arguments that make it last a few seconds; it must exit 0 and print its figures.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import NO_POSTGRES, POSTGRES_URL

ROOT = Path(__file__).resolve().parents[2]


def run_bench(script: str, *args: str) -> str:
    """The script's standard output; fails with everything it printed when it exits non-zero."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_DATABASE")}
    done = subprocess.run(
        [sys.executable, f"bench/{script}", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"{script} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def last_json(output: str) -> dict[str, Any]:
    """The summary line in JSON that a bench prints last."""
    line = [line for line in output.splitlines() if line.startswith("{")][-1]
    report: dict[str, Any] = json.loads(line)
    return report


SMOKED = {
    "core_bench.py",
    "cycle_bench.py",
    "nats_bench.py",
    "http_bench.py",
    "idle_bench.py",
    "task_bench.py",
    "failover_bench.py",
    "time_travel_bench.py",
    "online_rebuild_bench.py",
    # run by the smoke runs of the ratios, of the cycle bench and of the NATS and HTTP anchors
    "ratios.py",
    "pairs.py",
    "nats_bare.py",
    "http_bare.py",
    "cycle_bare.py",
}


def test_given_the_readme_when_it_names_a_benchmark_then_that_benchmark_has_a_smoke_run() -> None:
    named = set(re.findall(r"bench/(\w+\.py)", (ROOT / "README.md").read_text(encoding="utf-8")))
    assert named, "the README names no benchmark"
    assert named <= SMOKED, f"benchmarks without a smoke run: {sorted(named - SMOKED)}"


def test_given_the_core_bench_when_run_tiny_then_it_prints_append_and_rebuild_figures(
    tmp_path: Path,
) -> None:
    output = run_bench(
        "core_bench.py",
        *("--events", "500", "--users", "3", "--sources", "1", "--apps", "10"),
        *("--single", "20", "--chunk", "200", "--db", str(tmp_path / "ledger.db")),
    )
    assert "append, 1 command per transaction:" in output
    assert "append, 200 commands per transaction:" in output
    assert re.search(r"^rebuild: rebuilt \d+ events", output, re.MULTILINE), output
    assert "rebuild --verify: exit 0" in output
    report = last_json(output)
    assert report["verify_exit"] == 0 and report["events"] > 0
    assert report["single_events_per_s"] > 0 and report["batched_events_per_s"] > 0


def test_given_the_core_bench_rebuild_only_when_run_twice_then_the_second_run_reuses_the_store(
    tmp_path: Path,
) -> None:
    tiny = ("--events", "500", "--users", "3", "--sources", "1", "--apps", "10", "--chunk", "200")
    db = ("--db", str(tmp_path / "ledger.db"))

    built = run_bench("core_bench.py", "--rebuild-only", *tiny, *db)
    reused = run_bench("core_bench.py", "--rebuild-only", *tiny, *db)

    assert "kept" in built.splitlines()[0] and "reused" in reused.splitlines()[0]
    for output in (built, reused):
        report = last_json(output)
        assert report["verify_exit"] == 0 and report["events"] > 0
        measures = [pair["measure"] for pair in report["pairs"]]
        assert measures[0] == "rebuild every view vs read the log", measures
    assert last_json(built)["events"] == last_json(reused)["events"]


@pytest.mark.skipif(not POSTGRES_URL, reason=NO_POSTGRES)
def test_given_postgres_when_the_core_bench_runs_tiny_then_it_pairs_single_appends_there(
    tmp_path: Path,
) -> None:
    output = run_bench(
        "core_bench.py",
        *("--events", "300", "--users", "2", "--sources", "1", "--apps", "10"),
        *("--single", "20", "--chunk", "200", "--db", str(tmp_path / "ledger.db")),
        *("--postgres", POSTGRES_URL),
    )
    assert "append on PostgreSQL, 1 command per transaction:" in output
    pairs = {pair["measure"]: pair for pair in last_json(output)["pairs"]}
    on_postgres = pairs["append, 1 event per transaction (PostgreSQL)"]
    assert on_postgres["project"] > 0 and on_postgres["raw"] > 0, output
    assert on_postgres["ratio"] == pytest.approx(on_postgres["project"] / on_postgres["raw"], 1e-3)


def test_given_the_cycle_bench_when_run_tiny_then_it_prints_the_first_its_replay_and_a_quiet_one(
    tmp_path: Path,
) -> None:
    output = run_bench(
        "cycle_bench.py",
        *("--users", "1", "--latency", "0.001", "--concurrency", "4"),
        *("--folder", str(tmp_path / "cycle")),
    )
    assert re.search(r"^first cycle: [\d.]+ s for \d+ renders", output, re.MULTILINE), output
    assert "no-change cycle: median" in output
    assert re.search(r"^a bare client posting the same \d+ renders again: [\d.]+ s", output, re.M)
    report = last_json(output)
    assert report["first_cycle_s"] > 0 and report["no_change_median_ms"] >= 0
    assert report["bare_replay_s"] > 0


def test_given_the_nats_bench_when_run_tiny_then_it_prints_a_row_per_rate(tmp_path: Path) -> None:
    output = run_bench(
        "nats_bench.py",
        *("--rates", "50", "--seconds", "0.5", "--users", "2", "--apps", "3"),
        *("--db", str(tmp_path / "ledger.db")),
    )
    rows = re.findall(r"^\s+50\s+\d+\s+(\d+)\s+(\d+)\s", output, re.MULTILINE)
    assert rows, output
    assert all(int(projected) == int(sent) > 0 for sent, projected in rows), output
    assert "sustained up to:" in output


def test_given_the_http_bench_when_run_tiny_with_churn_then_it_prints_each_routes_latency(
    tmp_path: Path,
) -> None:
    output = run_bench(
        "http_bench.py",
        *("--listings", "20", "--rate", "20", "--seconds", "1", "--warmup", "0.2"),
        *("--churn", "2", "--db", str(tmp_path / "http.db")),
    )
    for route in ("/app-store/api/v2/market/hash", "/app-store/api/v2/market/data"):
        assert re.search(rf"{re.escape(route)}\s+p50 [\d.]+ ms\s+p99 [\d.]+ ms", output), output
    report = last_json(output)
    assert report["hash"]["failures"] == 0 and report["data"]["failures"] == 0
    assert report["hash"]["requests"] > 0 and report["data"]["requests"] > 0


def test_given_the_idle_bench_when_run_tiny_then_it_prints_the_cpu_of_serve_and_its_children() -> (
    None
):
    output = run_bench("idle_bench.py", "--seconds", "1", "--settle", "4")
    report = last_json(output)
    shares = report["percent_of_a_core"]
    assert "serve" in shares, output
    assert "projector" in shares, f"no projector child: {output}"
    assert all(share >= 0 for share in shares.values()), output


def test_given_the_task_bench_when_run_tiny_then_every_install_succeeds_beside_a_hang() -> None:
    output = run_bench("task_bench.py", *("--users", "2", "--tasks", "4", "--latency", "0.01"))
    assert re.search(r"^bound: 4 x 10 ms / 8 = 0\.005 s$", output, re.MULTILINE), output
    assert re.search(r"^no hang\s+[\d.]+\s+[\d.]+\s", output, re.MULTILINE), output
    assert re.search(r"^one app hangs\s+[\d.]+\s+[\d.]+\s", output, re.MULTILINE), output
    report = last_json(output)
    for run in ("without", "with_hang"):
        figures = report[run]
        assert figures["succeeded_notified"] == figures["succeeded_in_views"] == 4, output
        assert figures["execute_p99_ms"] > 0 and figures["drain_notified_s"] > 0, output
        assert figures["serve_exit"] == 0 and figures["serve_errors"] == 0, output
    assert report["with_hang"]["hung_task_open"] is True, output
    assert report["with_hang"]["fake_calls"]["calls"] == 5, output


def test_given_the_time_travel_bench_when_run_tiny_then_checkpoints_and_replays_agree(
    tmp_path: Path,
) -> None:
    output = run_bench(
        "time_travel_bench.py",
        *("--events", "2000", "--users", "3", "--sources", "1", "--apps", "20"),
        *("--every", "50", "--runs", "1", "--db", str(tmp_path / "ledger.db")),
    )
    assert re.search(r"^rebuild with checkpoints every 50: \d+ events", output, re.M), output
    report = last_json(output)
    assert report["head"] > 0 and len(report["at"]) >= 3, output
    assert all(figures["equal"] for figures in report["at"].values()), output
    assert report["cli_head_s"] > 0, output


@pytest.mark.skipif(not POSTGRES_URL, reason=NO_POSTGRES)
def test_given_three_instances_when_the_failover_bench_runs_tiny_then_each_role_moves() -> None:
    output = run_bench(
        "failover_bench.py",
        *("--postgres", POSTGRES_URL, "--trials", "1", "--ttl", "2", "--retry", "0.2"),
        *("--messages", "40", "--seconds", "0.3"),
    )
    report = last_json(output)
    for role in ("cycle", "projector", "notifier", "tasks"):
        assert report["failover_s"][role]["n"] >= 1, output
        assert report["failover_s"][role]["min"] > 0, output
    for count in ("1", "2", "3"):
        assert report["intake_msgs_per_s"][count] > 0, output
        assert report["hash_reads_per_s"][count] > 0, output
    assert report["parked"] == 0, output


#: what ``bench/ratios.py --quick --only core,cycle`` must show, one row each
CORE_AND_CYCLE_MEASURES = {
    "append, 1 event per transaction (SQLite)",
    "append, batched",
    "append, batched: last 10 % vs first 10 % of the log",
    "rebuild every view vs read the log",
    "rebuild peak RSS vs the 300 MiB budget",
    "rebuild peak RSS vs read the log",
    "first cycle vs its lower bound",
    "first cycle vs a bare client's renders",
}
TABLE_ROW = re.compile(
    r"^\| (?P<measure>[^|]+?) \| (?P<project>[\d,.]+) (?P<unit>\S+) \| (?P<raw>[\d,.]+) (?P=unit) "
    r"\| (?P<ratio>[\d,.]+)% \((?P<of>project/raw|raw/project)\) "
    r"\| (?:>= (?P<target>[\d.]+)%)? \| (?P<met>yes|NO|) \|$",
    re.MULTILINE,
)


def number(text: str) -> float:
    return float(text.replace(",", ""))


def test_given_the_ratios_when_run_quick_for_core_and_cycle_then_one_table_holds_each_pair() -> (
    None
):
    output = run_bench("ratios.py", "--quick", "--only", "core,cycle")
    rows = {found["measure"]: found for found in TABLE_ROW.finditer(output)}
    assert set(rows) == CORE_AND_CYCLE_MEASURES, output
    for measure, found in rows.items():
        project, raw = number(found["project"]), number(found["raw"])
        share = project / raw if found["of"] == "project/raw" else raw / project
        printed = number(found["ratio"])
        # the figures are printed to 4 significant digits, the ratio to 0.1 point
        assert abs(share * 100 - printed) <= 0.05 + 0.002 * printed, (measure, output)
        if found["target"] is not None:
            assert found["met"] == ("yes" if printed >= number(found["target"]) else "NO"), output
    assert rows["first cycle vs its lower bound"]["of"] == "raw/project", output
    assert rows["append, batched"]["of"] == "project/raw", output
    for header in (
        "date: ",
        "machine: 2 cores" if os.cpu_count() == 2 else "machine: ",
        "command: ",
    ):
        assert re.search(rf"^{header}", output, re.MULTILINE), output


ONLINE_BACKENDS = [
    pytest.param([], id="sqlite"),
    pytest.param(
        ["--postgres", POSTGRES_URL or ""],
        id="postgres",
        marks=[pytest.mark.postgres, pytest.mark.skipif(not POSTGRES_URL, reason=NO_POSTGRES)],
    ),
]


@pytest.mark.parametrize("backend", ONLINE_BACKENDS)
def test_given_the_online_rebuild_bench_when_run_tiny_then_no_request_fails_in_any_phase(
    tmp_path: Path, backend: list[str]
) -> None:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    try:
        output = run_bench(
            "online_rebuild_bench.py",
            *("--events", "500", "--users", "3", "--sources", "1", "--apps", "10"),
            *("--chunk", "200", "--idle", "1", "--settle", "0", "--rate", "20", "--append", "2"),
            *("--verify", "--db", str(tmp_path / "ledger.db"), *backend, "--schema", schema),
        )
    finally:
        if backend:
            with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    report = last_json(output)
    assert report["rebuild_exit"] == 0 and report["verify_exit"] == 0, output
    for phase in ("idle", "rebuild", "after"):
        assert report[phase]["requests"] > 0 and report[phase]["failed"] == 0, output
    assert re.search(r"^ rebuild: \d+ requests, 0 failed, p50 [\d.]+ ms", output, re.MULTILINE)
