"""The domain: aggregates, events, commands and the rules of the catalog.

Imports only the standard library, attrs and eventsourcing, and does no I/O of its own;
the event store behind :class:`~market_ledger.service.handler.CommandHandler` is configured by the
composition root.
"""
