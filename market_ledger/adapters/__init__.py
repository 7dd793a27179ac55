"""Adapters at the edge: configuration, the event store's settings, remote clients, NATS,
the HTTP read API and the command line."""
