"""app-service: what is installed, and the OS version."""
