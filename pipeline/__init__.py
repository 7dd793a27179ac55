"""The pipeline: the cycle's phases read views and remote systems and emit commands."""
