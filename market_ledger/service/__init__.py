"""The application layer: the command handler, the ports, the use cases, the cycle and its
phases."""
