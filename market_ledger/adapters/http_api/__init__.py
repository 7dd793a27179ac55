"""The HTTP API: the app, its routes, the envelope and the OpenAPI document."""
