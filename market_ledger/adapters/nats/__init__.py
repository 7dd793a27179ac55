"""NATS: the connection, the intake's consumer, message parsing, parking, notifications out."""
