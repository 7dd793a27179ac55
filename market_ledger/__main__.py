"""Entry point of the ``market-ledger`` command."""

from __future__ import annotations

import logging
import os

from adapters.cli import build_cli
from market_ledger.bootstrap import bootstrap
from market_ledger.runtime import Runtime


def main() -> None:
    logging.basicConfig(
        level=os.environ.get("LEDGER_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    build_cli(bootstrap, Runtime())(prog_name="market-ledger")


if __name__ == "__main__":
    main()
