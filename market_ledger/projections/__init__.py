"""Projections: the catalog, hash and history views, rebuilt deterministically from the log.

One projector reads the notification log in order and applies it in batches; each batch
writes its rows and its position in one transaction. Nothing here is a source of truth.
"""
