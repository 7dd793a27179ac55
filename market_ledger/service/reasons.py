"""Failure reasons as an operator reads them: one line, bounded, without credentials."""

from __future__ import annotations

import re

#: a reason is cut to this length: enough to act on, bounded in a readiness answer
MAX_REASON_CHARS = 300

_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]*@")


def clean_reason(reason: str) -> str:
    """One line, bounded, and without the credentials a URL in an error message may carry."""
    text = " ".join(_CREDENTIALS.sub(r"\g<scheme>***@", str(reason)).split())
    if len(text) > MAX_REASON_CHARS:
        text = text[: MAX_REASON_CHARS - 3] + "..."
    return text or "unknown error"


def error_reason(error: BaseException) -> str:
    """An error as an operator reads it: the driver's own error rather than the statement
    a database library wraps it in."""
    original = getattr(error, "orig", None)
    cause = original if isinstance(original, BaseException) else error
    return clean_reason(f"{type(cause).__name__}: {cause}")
