"""A new user's first commands: which store was read, and one clear line for each mistake."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from market_ledger.adapters.cli.commands import build_cli
from market_ledger.bootstrap import bootstrap
from market_ledger.runtime import Runtime
from tests.conftest import StoreFactory
from tests.fixtures import EXAMPLE_CATALOG
from tests.support.fakes import FakeMarket, Reply
from tests.support.instances import fresh_schema


def command(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, code: int = 0
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "market_ledger", *args],
        env={**os.environ, **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == code, (done.stdout, done.stderr)
    return done


@pytest.fixture
def run(store: StoreFactory, monkeypatch: pytest.MonkeyPatch) -> Any:
    for key, value in store.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("LEDGER_DETAIL_BATCH_PAUSE_SECONDS", "0")
    cli = build_cli(bootstrap, Runtime())

    def invoke(*args: str, code: int = 0) -> Result:
        result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result

    return invoke


def test_given_the_default_store_when_status_is_asked_then_it_names_the_store_it_read(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "LEDGER_DATABASE_URL"}
    done = subprocess.run(
        [sys.executable, "-m", "market_ledger", "status", "--json"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    store = json.loads(done.stdout)["store"]
    assert store == {"url": "sqlite:///var/ledger.db", "path": str(tmp_path / "var/ledger.db")}
    text = command("status", cwd=tmp_path, env={"LEDGER_DATABASE_URL": ""}).stdout
    assert f"store sqlite:///var/ledger.db ({tmp_path / 'var/ledger.db'})" in text


def test_given_a_password_in_the_database_url_when_status_is_asked_then_it_is_redacted() -> None:
    url = os.environ.get("LEDGER_TEST_POSTGRES_URL", "")
    if not url.startswith("postgresql://postgres@"):
        pytest.skip("needs LEDGER_TEST_POSTGRES_URL with trust authentication")
    # a schema of its own: the command creates the store's tables where it points
    with fresh_schema(url) as in_schema:
        with_password = in_schema.replace("postgres@", "postgres:pw-3321@", 1)
        done = command("status", "--json", env={"LEDGER_DATABASE_URL": with_password})
    report = json.loads(done.stdout)
    shown = in_schema.replace("postgres@", "postgres:***@", 1)
    assert report["store"] == {"url": shown, "path": None}
    assert "pw-3321" not in done.stdout + done.stderr


def test_given_an_unknown_user_or_app_when_reading_then_the_command_says_so_and_fails(
    run: Any,
) -> None:
    run("user", "add", "alice")
    result = run("history", "--user", "nobody", "--app", "x", code=1)
    assert "unknown user 'nobody': never registered in " in result.output
    result = run("history", "--user", "alice", "--app", "x", "--json", code=1)
    assert "unknown app 'x' for user 'alice': it has no history" in result.output
    for args in (["catalog", "--user", "nobody"], ["hash", "--user", "nobody"]):
        result = run(*args, code=1)
        assert "unknown user 'nobody': not registered in " in result.output


def test_given_an_unreachable_postgresql_then_one_line_names_it_in_seconds() -> None:
    started = time.monotonic()
    url = "postgresql://postgres:pw-9921@127.0.0.1:1/ledger"
    done = command("status", env={"LEDGER_DATABASE_URL": url}, code=1)
    assert time.monotonic() - started < 20
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("Error: cannot connect to LEDGER_DATABASE_URL=")
    assert "postgres:***@127.0.0.1:1/ledger" in lines[0] and "pw-9921" not in done.stderr


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        ("LEDGER_LOG_LEVEL", "LOUD", "LEDGER_LOG_LEVEL='LOUD' is not a log level"),
        ("LEDGER_LOG_FORMAT", "xml", "LEDGER_LOG_FORMAT='xml' is not a log format"),
    ],
)
def test_given_a_bad_log_setting_then_one_line_names_the_variable(
    tmp_path: Path, variable: str, value: str, said: str
) -> None:
    env = {variable: value, "LEDGER_DATABASE_URL": f"sqlite:///{tmp_path}/l.db"}
    done = command("status", env=env, code=1)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {said} (one of "), done.stderr


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["serve", "--http", "localhost"], "'localhost' is not HOST:PORT"),
        (["serve", "--http", "127.0.0.1:99999"], "the port must be from 1 to 65535, not 99999"),
        (["user", "add", "bob", "--role", "superuser"], "'superuser' is not one of"),
    ],
)
def test_given_a_bad_argument_then_the_command_refuses_it_without_a_traceback(
    tmp_path: Path, args: list[str], said: str
) -> None:
    done = command(*args, env={"LEDGER_DATABASE_URL": f"sqlite:///{tmp_path}/l.db"}, code=2)
    assert said in done.stderr and "Traceback" not in done.stderr


def test_given_every_source_failing_when_syncing_once_then_it_exits_non_zero(run: Any) -> None:
    run("user", "add", "alice")
    with FakeMarket() as down:
        for endpoint in ("hash", "catalog"):
            down.fail(endpoint, Reply.error(500, "down"))
        run("source", "add", "market.down", "--type", "remote", "--url", down.url)
        result = run("sync", "--once", code=1)
        assert "every source failed (1): market.down: " in result.output
        run("source", "add", "market.file", "--type", "remote", "--url", EXAMPLE_CATALOG.as_uri())
        result = run("sync", "--once")
        summary = json.loads(result.stdout)
        outcomes = {k: v["outcome"] for k, v in summary["phases"]["sync"]["sources"].items()}
        assert outcomes == {"market.down": "failed", "market.file": "synced"}


@pytest.mark.parametrize(
    "url", ["mysql://u:pw-4410@db/ledger", "postgresql://u:pw-4410@127.0.0.1:5432"]
)
def test_given_an_unusable_database_url_with_a_password_then_the_error_redacts_it(
    url: str,
) -> None:
    done = command("status", env={"LEDGER_DATABASE_URL": url}, code=1)
    assert "LEDGER_DATABASE_URL=" in done.stderr and "u:***@" in done.stderr
    assert "pw-4410" not in done.stderr and "Traceback" not in done.stderr
