"""Alembic migrations for the projection tables (the event store's tables are the library's)."""
