"""The one error a remote call raises: which service, which URL, and why."""

from __future__ import annotations

from market_ledger.domain.redaction import redact_text, redact_url


class RemoteError(Exception):
    """A remote system could not give a usable answer.

    ``status`` is the HTTP status when there was a response, else ``None`` (transport error,
    timeout, or a local file that could not be read).
    """

    def __init__(self, service: str, url: str, reason: str, *, status: int | None = None) -> None:
        # Errors are logged, summarised and shown: never with a URL's credentials in them.
        url = redact_url(url)
        reason = redact_text(reason)
        super().__init__(f"{service} at {url}: {reason}")
        self.service = service
        self.url = url
        self.reason = reason
        self.status = status

    def __reduce__(self) -> tuple[object, ...]:
        # Keep the error picklable (keyword-only ``status`` needs help).
        return (_rebuild, (self.service, self.url, self.reason, self.status))


def _rebuild(service: str, url: str, reason: str, status: int | None) -> RemoteError:
    return RemoteError(service, url, reason, status=status)
