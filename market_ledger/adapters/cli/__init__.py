"""The ``market-ledger`` command line."""
