"""Entry point of the ``market-ledger`` command."""

from __future__ import annotations

import os
import sys

from market_ledger.adapters.cli.commands import build_cli
from market_ledger.adapters.config import ConfigurationError
from market_ledger.adapters.logging_setup import configure_logging
from market_ledger.bootstrap import bootstrap
from market_ledger.runtime import Runtime


def main() -> None:
    try:
        configure_logging(os.environ)
    except ConfigurationError as error:  # one line naming the variable, as click would
        print(f"Error: {error}", file=sys.stderr)
        sys.exit(1)
    build_cli(bootstrap, Runtime())(prog_name="market-ledger")


if __name__ == "__main__":
    main()
