"""A market source's credentials reach the market, and nothing else: no log, view, answer or row."""

from __future__ import annotations

import base64
import json
import logging
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from market_ledger.adapters.market.client import build_api_url
from market_ledger.adapters.market.credentials import CredentialStore
from market_ledger.domain.decider import CommandRejected
from market_ledger.domain.market_source import ConfigureSource
from market_ledger.domain.redaction import redact_text, redact_url, split_credentials
from market_ledger.runtime import Runtime
from tests.conftest import StoreFactory
from tests.support.fakes import FakeMarket
from tests.support.fakes.market import CATALOG_PATH, DETAIL_PATH, HASH_PATH
from tests.support.http_live import LEDGER, MARKET, live_api

USER = "scott-7781"
PASSWORD = "tiger-pw-8731"
TOKEN = "tok-5512-zz"
SECRETS = (USER, PASSWORD, TOKEN)


def entry(app_id: str) -> dict[str, Any]:
    return {"id": app_id, "appID": app_id, "name": app_id, "version": "1.0.0"}


def command(env: dict[str, str], *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "market_ledger", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == code, done.stderr
    return done


def assert_no_secret(where: str, text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} found in {where}"


def every_row(database: Path) -> str:
    with sqlite3.connect(database) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        rows = [repr(row) for table in tables for row in conn.execute(f'SELECT * FROM "{table}"')]
    assert any("market.private" in row for row in rows)  # the rows were read at all
    return "\n".join(rows)


def test_given_a_source_url_with_credentials_when_it_is_synced_then_only_the_market_sees_them(
    sqlite_store: StoreFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    env = {
        **sqlite_store.env(),
        "LEDGER_LOG_LEVEL": "DEBUG",
        "LEDGER_DETAIL_BATCH_PAUSE_SECONDS": "0",
    }
    with FakeMarket({"firefox": entry("firefox")}) as market:
        url = f"http://{USER}:{PASSWORD}@{market.host_port}/?token={TOKEN}&region=eu"
        shown: list[tuple[str, str]] = []
        done = command(env, "user", "add", "alice", "--role", "admin")
        done = command(env, "source", "add", "market.private", "--type", "remote", "--url", url)
        shown.append(("source add", done.stdout + done.stderr))
        kept = Path(sqlite_store.tmp_path / "credentials" / "market.private.json")
        assert str(kept) in done.stdout
        assert stat.S_IMODE(kept.stat().st_mode) == 0o600

        caplog.set_level(logging.DEBUG)
        ledger = sqlite_store.open()
        summary = Runtime().sync_once(ledger)
        assert summary["phases"]["sync"]["sources"]["market.private"]["outcome"] == "synced"
        assert any(r.name == "httpx" for r in caplog.records)  # the requests were logged
        shown += [(f"log record {r.name}", r.getMessage()) for r in caplog.records]
        shown.append(("caplog", caplog.text))

        done = command(env, "sync", "--once")
        assert "HTTP Request" not in done.stderr  # httpx stays at WARNING even at DEBUG
        shown.append(("sync --once", done.stdout + done.stderr))
        for args in (["source", "list"], ["source", "list", "--json"], ["status", "--json"]):
            done = command(env, *args)
            shown.append((" ".join(args), done.stdout + done.stderr))
        sources = json.loads(command(env, "source", "list", "--json").stdout)
        assert sources[0]["url"] == f"http://{market.host_port}/?region=eu"

        with live_api(ledger) as api:
            for path in (f"{MARKET}/market/data", f"{MARKET}/market/hash", f"{LEDGER}/status"):
                response = api.get(path)
                assert response.status_code == 200, response.text
                shown.append((path, response.text))
            shown.append(("/metrics", api.get("/metrics").text))
        ledger.close()
        shown.append(("event store and views", every_row(sqlite_store.tmp_path / "ledger.db")))

        for where, text in shown:
            assert_no_secret(where, text)
        hashes = market.requests_to("hash")
        assert hashes and all(r.path == HASH_PATH for r in hashes)
        basic = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        for endpoint, path in (("hash", HASH_PATH), ("catalog", CATALOG_PATH)):
            for request in market.requests_to(endpoint):
                assert request.path == path
                assert request.param("token") == TOKEN and request.param("region") == "eu"
                assert request.param("version")
                assert request.headers.get("authorization") == basic
        details = market.requests_to("detail")
        assert details and all(r.path == DETAIL_PATH for r in details)
        assert all(r.param("token") == TOKEN for r in details)
        assert all(r.headers.get("authorization") == basic for r in details)


def test_given_a_url_with_credentials_when_configured_directly_then_the_domain_refuses_it(
    sqlite_store: StoreFactory,
) -> None:
    ledger = sqlite_store.open()
    with pytest.raises(CommandRejected, match="carries credentials") as refused:
        ledger.handler.execute(
            ConfigureSource("m", "remote", f"https://u:{PASSWORD}@host/?token={TOKEN}")
        )
    assert_no_secret("the refusal", str(refused.value))


def test_given_a_source_removed_then_its_credentials_file_is_removed(
    sqlite_store: StoreFactory,
) -> None:
    env = sqlite_store.env()
    url = f"https://host/?access_token={TOKEN}"
    command(env, "source", "add", "m", "--type", "remote", "--url", url)
    credentials = CredentialStore(sqlite_store.tmp_path / "credentials")
    assert credentials.load("m") == split_credentials(url)[1]
    command(env, "source", "remove", "m")
    assert credentials.load("m") is None


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("https://user:pw@host:8443/p?token=t&a=1", "https://user:***@host:8443/p?token=***&a=1"),
        ("https://TOKEN@host/", "https://***@host/"),
        ("postgresql://postgres:pw@db:5432/x", "postgresql://postgres:***@db:5432/x"),
        ("postgresql://postgres@db:5432/x", "postgresql://postgres@db:5432/x"),
        ("sqlite:///var/ledger.db", "sqlite:///var/ledger.db"),
        ("https://host/?api_key=k&Signature=s", "https://host/?api_key=***&Signature=***"),
    ],
)
def test_a_url_is_shown_with_its_credentials_redacted(given: str, shown: str) -> None:
    assert redact_url(given) == shown


def test_text_is_shown_with_every_url_and_secret_pair_redacted() -> None:
    text = redact_text(
        "GET https://u:pw1@h/x?token=t1 failed; dsn host=db password=pw2; again 'http://h/?sig=s'"
    )
    assert all(secret not in text for secret in ("pw1", "t1", "pw2", "=s'"))
    assert "https://u:***@h/x?token=***" in text and "password=***" in text


def test_an_endpoint_url_joins_the_base_path_and_keeps_the_base_query() -> None:
    assert (
        build_api_url("https://host/prefix/?region=eu", "/api/v1/appstore/hash")
        == "https://host/prefix/api/v1/appstore/hash?region=eu"
    )
    assert build_api_url("host", "api/x") == "https://host/api/x"
