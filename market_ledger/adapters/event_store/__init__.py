"""The event store: the library's settings, the tuned SQLite module, the transcoder."""
