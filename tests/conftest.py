"""Shared fixtures: a ledger on a real store (SQLite, and PostgreSQL when one is given)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from market_ledger.adapters.config import Settings
from market_ledger.bootstrap import Ledger, bootstrap

POSTGRES_URL = os.environ.get("LEDGER_TEST_POSTGRES_URL", "").strip()
NO_POSTGRES = "PostgreSQL tests need LEDGER_TEST_POSTGRES_URL (e.g. postgresql://postgres@127.0.0.1:5432/test)"


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


class StoreFactory:
    """Opens ledgers on a fresh database: a SQLite file, or a PostgreSQL schema."""

    def __init__(self, backend: str, tmp_path: Path) -> None:
        self.backend = backend
        self.tmp_path = tmp_path
        self.schema: str | None = None
        if backend == "sqlite":
            self.url = f"sqlite:///{tmp_path / 'ledger.db'}"
        else:
            self.url = POSTGRES_URL
            self.schema = f"t_{uuid.uuid4().hex[:12]}"
            with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
                conn.execute(f'CREATE SCHEMA "{self.schema}"')
        self.opened: list[Ledger] = []

    def settings(self, **overrides: object) -> Settings:
        return Settings(database_url=self.url, **overrides)  # type: ignore[arg-type]

    def open(self, clock: FakeClock | None = None, **overrides: object) -> Ledger:
        kwargs = {"clock": clock} if clock else {}
        ledger = bootstrap(self.settings(**overrides), schema=self.schema, **kwargs)  # type: ignore[arg-type]
        self.opened.append(ledger)
        return ledger

    def env(self) -> dict[str, str]:
        """Environment for running the CLI against this store."""
        env = {"LEDGER_DATABASE_URL": self.url}
        if self.schema:
            env["LEDGER_DATABASE_URL"] = f"{self.url}?schema={self.schema}"
        return env

    def close(self) -> None:
        for ledger in self.opened:
            ledger.close()
        if self.schema:
            with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{self.schema}" CASCADE')


def _backends() -> list[object]:
    return [
        pytest.param("sqlite", id="sqlite"),
        pytest.param(
            "postgres",
            id="postgres",
            marks=[pytest.mark.postgres, pytest.mark.skipif(not POSTGRES_URL, reason=NO_POSTGRES)],
        ),
    ]


@pytest.fixture(params=_backends())
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    factory = StoreFactory(request.param, tmp_path)
    yield factory
    factory.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[StoreFactory]:
    factory = StoreFactory("sqlite", tmp_path)
    yield factory
    factory.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def ledger(store: StoreFactory, clock: FakeClock) -> Ledger:
    return store.open(clock)
