"""market-ledger: the composition root (bootstrap) and the program's entry point."""
