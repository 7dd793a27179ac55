"""``serve`` as a process under faults: killed, its projector killed or failing, NATS gone
or refusing it, writes failing, its port taken. The process tree and readiness tell the
truth, and the exit status says whether it stopped because a part failed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.e2e.test_serve import base_env
from tests.fixtures import EXAMPLE_CATALOG
from tests.support.nats_server import nats_for_test, nats_server_binary
from tests.support.serve_process import Service, free_port, ledger_command


def process_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state) of every process, read from /proc."""
    table: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (command) state ppid ...": the command may hold spaces and parentheses
        fields = stat[stat.rindex(")") + 2 :].split()
        table[int(entry.name)] = (int(fields[1]), fields[0])
    return table


def descendants(pid: int) -> set[int]:
    table = process_table()
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        children = {p for p, (parent, _) in table.items() if parent in frontier} - found
        found |= children
        frontier = children
    return found


def alive(pids: set[int]) -> set[int]:
    """Those of ``pids`` still running (a zombie waiting to be reaped has stopped)."""
    table = process_table()
    return {p for p in pids if p in table and table[p][1] != "Z"}


def survivors_of(tree: set[int], grace: float = 5.0) -> dict[int, str]:
    """Those of ``tree`` still running after ``grace`` seconds, killed so that they do not
    outlive the test; a process on its way out (multiprocessing's resource tracker reads
    the end of its pipe only once its parent is gone) is given the time to finish."""
    deadline = time.monotonic() + grace
    while alive(tree) and time.monotonic() < deadline:
        time.sleep(0.05)
    survivors = {p: cmdline(p) for p in alive(tree)}
    for pid in survivors:
        os.kill(pid, signal.SIGKILL)
    return survivors


def cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def projector_children(service: Service) -> set[int]:
    return {
        p
        for p in alive(descendants(service.process.pid))
        if "spawn_main" in cmdline(p) and "resource_tracker" not in cmdline(p)
    }


def readiness(service: Service) -> tuple[int, dict[str, Any]] | None:
    answer = service.get("/readyz")
    return answer.status_code, answer.json()["data"]


def ready(service: Service) -> Any:
    return service.wait_for(
        lambda: (lambda r: r if r and r[0] == 200 else None)(readiness(service)), "ready"
    )


def not_ready_because(service: Service, *words: str, timeout: float = 30.0) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        answer = readiness(service)
        if answer is None or answer[0] != 503:
            return None
        reason = answer[1]["reason"] or ""
        return answer[1] if all(w in reason for w in words) else None

    result: dict[str, Any] = service.wait_for(check, f"503 naming {words}", timeout)
    return result


def refuse_writes(db: sqlite3.Connection) -> None:
    """Every append to the event log fails (a trigger writing to a table that is not there),
    while reads go on working: a store that has stopped taking writes."""
    table = next(
        name
        for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        if "event" in name and "notification" not in name
    )
    db.execute(
        f"CREATE TRIGGER refuse_writes BEFORE INSERT ON {table} "
        "BEGIN INSERT INTO nowhere VALUES (1); END"
    )


def test_given_serve_killed_with_sigkill_then_no_process_of_its_tree_survives(
    tmp_path: Path,
) -> None:
    service = Service(base_env(tmp_path), tmp_path / "serve.log")
    try:
        ready(service)
        tree = descendants(service.process.pid)
        assert projector_children(service), "the projector child is running"
    finally:
        service.process.send_signal(signal.SIGKILL)
        service.process.wait(10)
    survivors = survivors_of(tree)
    assert not survivors, survivors


def test_given_the_projector_child_killed_then_it_is_restarted_logged_and_readiness_recovers(
    tmp_path: Path,
) -> None:
    service = Service(base_env(tmp_path), tmp_path / "serve.log")
    try:
        ready(service)
        (first,) = projector_children(service)
        os.kill(first, signal.SIGKILL)
        service.wait_for(
            lambda: "was killed by SIGKILL; restarting it" in service.log.read_text(),
            "the restart logged",
        )
        again = service.wait_for(
            lambda: projector_children(service) - {first}, "a new projector child"
        )
        assert len(again) == 1
        _, data = ready(service)
        assert data["parts"]["projector"]["state"] == "ok"
        # The new child applies what is written now.
        ledger_command("user", "add", "bob", env=service_env(tmp_path))
        service.wait_for(
            lambda: service.get("/app-store/api/v2/market/hash", "bob").status_code == 200,
            "bob's registration projected",
        )
    finally:
        code = service.stop()
    assert code == 0, service.log.read_text()


def service_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NATS_", "LEDGER_"))}
    env["LEDGER_DATABASE_URL"] = f"sqlite:///{tmp_path}/ledger.db"
    return env


def test_given_a_projector_failing_every_batch_then_readyz_is_503_with_the_reason(
    tmp_path: Path,
) -> None:
    service = Service(base_env(tmp_path), tmp_path / "serve.log")
    try:
        ready(service)
        with sqlite3.connect(tmp_path / "ledger.db", timeout=10) as db:
            db.execute("ALTER TABLE users RENAME TO users_away")
        # An event for the users view, which the projector now cannot apply.
        subprocess.run(
            [sys.executable, "-m", "market_ledger", "user", "add", "bob"],
            env=service_env(tmp_path),
            capture_output=True,
            timeout=60,
        )
        data = not_ready_because(service, "projector failing since", "no such table: users")
        assert data["parts"]["projector"]["state"] == "failing"
        with sqlite3.connect(tmp_path / "ledger.db", timeout=10) as db:
            db.execute("ALTER TABLE users_away RENAME TO users")
        ready(service)
    finally:
        code = service.stop()
    assert code == 0, service.log.read_text()


def test_given_every_write_failing_then_readyz_is_503_naming_the_store_writes(
    tmp_path: Path,
) -> None:
    catalog = tmp_path / "catalog.json"
    shutil.copy(EXAMPLE_CATALOG, catalog)
    env = base_env(tmp_path)
    ledger_command("source", "remove", "market.olares", env=env)
    ledger_command(
        "source", "add", "local.copy", "--type", "remote", "--url", f"file://{catalog}", env=env
    )
    service = Service(env, tmp_path / "serve.log")
    try:
        ready(service)
        with sqlite3.connect(tmp_path / "ledger.db", timeout=10) as db:
            refuse_writes(db)
        # The catalog changes: the next cycle has offers to write, and cannot.
        document = json.loads(catalog.read_text())
        document["data"]["apps"].pop(next(iter(document["data"]["apps"])))
        catalog.write_text(json.dumps(document))
        data = not_ready_because(service, "store_writes failing since", "nowhere")
        assert data["parts"]["store_writes"]["state"] == "failing"
        assert data["parts"]["cycle"]["state"] == "failing"
    finally:
        code = service.stop()
    assert code == 0, service.log.read_text()


def nats_env(env: dict[str, str], url: str) -> dict[str, str]:
    return {**env, "NATS_URL": url, "NATS_SUBJECT_SYSTEM_APP_STATE": "faults.app.*"}


def test_given_nats_going_down_then_readyz_is_503_naming_nats_until_it_is_back(
    tmp_path: Path,
) -> None:
    with nats_for_test(tmp_path, own=True) as nats:
        assert nats.server is not None
        service = Service(nats_env(base_env(tmp_path), nats.url), tmp_path / "serve.log")
        try:
            _, data = ready(service)
            assert data["parts"]["nats"]["state"] == "ok"
            nats.server.stop()
            data = not_ready_because(service, "nats failing since", nats.url)
            nats.server.start()
            ready(service)
        finally:
            code = service.stop()
    assert code == 0, service.log.read_text()


def test_given_nats_refusing_the_credentials_then_readyz_is_503_naming_nats_without_them(
    tmp_path: Path,
) -> None:
    port = free_port()
    credentials = ["--user", "ledger", "--pass", "the-right-one"]
    server = subprocess.Popen(
        [nats_server_binary(), "-a", "127.0.0.1", "-p", str(port), *credentials],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"nats://ledger:not-the-password@127.0.0.1:{port}"
    try:
        service = Service(nats_env(base_env(tmp_path), url), tmp_path / "serve.log")
        try:
            # the reason first says "not connected", then names the refusal once it came
            data = not_ready_because(
                service, "nats failing since", f"127.0.0.1:{port}", "Authorization"
            )
            assert "not-the-password" not in json.dumps(data)
        finally:
            code = service.stop()
    finally:
        server.terminate()
        server.wait(10)
    assert code == 0, service.log.read_text()


def test_given_a_busy_port_when_serve_starts_then_one_error_line_names_it_and_the_exit_fails(
    tmp_path: Path,
) -> None:
    env = base_env(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "market_ledger", "serve", "--http", f"127.0.0.1:{port}"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    errors = [line for line in output.splitlines() if " ERROR " in line]
    assert len(errors) == 1, output
    assert f"127.0.0.1:{port}" in errors[0] and "in use" in errors[0], output
    assert "Traceback" not in output


def test_given_serve_running_when_sigterm_arrives_then_it_exits_0(tmp_path: Path) -> None:
    service = Service(base_env(tmp_path), tmp_path / "serve.log")
    try:
        ready(service)
        tree = descendants(service.process.pid)
    finally:
        code = service.stop()
    assert code == 0, service.log.read_text()
    survivors = survivors_of(tree)
    assert not survivors, survivors
