"""Market sources: the remote market's client, its catalog document, credentials."""
