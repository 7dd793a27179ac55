"""The CLI run in process against the test's store: ``run("catalog", "--user", U)``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner, Result

from market_ledger.adapters.cli.commands import build_cli
from market_ledger.bootstrap import bootstrap
from tests.conftest import StoreFactory


def cli_runner(store: StoreFactory, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """A function that runs the CLI with ``store``'s environment and checks its exit code."""
    for key, value in store.env().items():
        monkeypatch.setenv(key, value)
    cli = build_cli(bootstrap)

    def invoke(*args: str, code: int = 0) -> Result:
        result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result

    return invoke


@pytest.fixture
def run(store: StoreFactory, monkeypatch: pytest.MonkeyPatch) -> Any:
    return cli_runner(store, monkeypatch)
