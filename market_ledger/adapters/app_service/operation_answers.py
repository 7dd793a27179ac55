"""What app-service's answer to an operation means: accepted, or rejected and why.

The answer is ``{code, message, data: {opID}}``, read whatever the HTTP status. ``code == 200``
(a JSON number) is an acceptance, for every kind of operation, with ``data.opID`` when there
is one. Anything else is a rejection whose reason a user can read: the HTTP status, the code
and app-service's message; for a missing env value (``data.type == "appenv"``), the names of
the envs that need one.

Secrets: the kept answer and the reason never hold the user's token or an env value the
operation carried (a value shorter than :data:`MIN_SECRET` is left: it is no secret, and
scrubbing it would garble JSON words such as ``true``), nor a credential
:func:`~market_ledger.domain.redaction.redact_text` finds.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from market_ledger.adapters.remote.client import excerpt
from market_ledger.domain.limits import printable
from market_ledger.domain.redaction import REDACTED, redact_text
from market_ledger.domain.task_events import MAX_EXCERPT
from market_ledger.service.app_operations import Accepted, Rejected

ACCEPTED_CODE = 200
#: the shortest text scrubbed from answers as a secret
MIN_SECRET = 6
#: the longest message of app-service quoted in a reason
MESSAGE_EXCERPT = 300
#: the most missing env names listed in a reason
MAX_NAMES = 20


class Scrubber:
    """Takes the operation's secrets out of text from outside."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        # longest first, so that a secret holding another is replaced whole
        found = {s for s in secrets if s and len(s) >= MIN_SECRET}
        self._secrets = sorted(found, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return printable(redact_text(text))


def kept_answer(body: bytes, scrub: Scrubber) -> str:
    """The answer as it may be kept: secrets out, cut to ``MAX_EXCERPT`` characters."""
    return scrub(body.decode("utf-8", errors="replace"))[:MAX_EXCERPT]


def _number(value: Any) -> int | float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def _shown(code: int | float) -> str:
    return str(int(code)) if float(code).is_integer() else str(code)


def _missing_envs(answer: dict[str, Any]) -> list[str]:
    data = answer.get("data")
    if not isinstance(data, dict) or data.get("type") != "appenv":
        return []
    inner = data.get("Data")
    values = inner.get("missingValues") if isinstance(inner, dict) else None
    if not isinstance(values, list):
        return []
    names = []
    for item in values:
        name = (item.get("envName") or item.get("name")) if isinstance(item, dict) else item
        if isinstance(name, str) and name:
            names.append(name)
    return names


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:MAX_NAMES])
    more = len(names) - MAX_NAMES
    return f"{shown} and {more} more" if more > 0 else shown


def _rejection(status: int, answer: dict[str, Any], scrub: Scrubber) -> str:
    code = _number(answer.get("code"))
    said = f"app-service answered HTTP {status}"
    said += f", code {_shown(code)}" if code is not None else " without a numeric code"
    message = answer.get("message")
    text = excerpt(message, MESSAGE_EXCERPT) if isinstance(message, str) else ""
    reason = f"{said}: {text or '(no message)'}"
    missing = _missing_envs(answer)
    if missing:
        reason += f"; these envs need a value: {_listed(missing)}"
    return scrub(reason)


def read_answer(status: int, body: bytes, scrub: Scrubber) -> Accepted | Rejected:
    """What the answer ``body`` (of HTTP ``status``) to an operation means."""
    kept = kept_answer(body, scrub)
    if not body.strip():
        return Rejected(f"app-service answered HTTP {status} with an empty body", kept)
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        return Rejected(f"app-service answered HTTP {status} with a body that is not JSON", kept)
    if not isinstance(answer, dict):
        return Rejected(f"app-service answered HTTP {status} with JSON that is not an object", kept)
    if _number(answer.get("code")) == ACCEPTED_CODE:
        data = answer.get("data")
        op_id = data.get("opID") if isinstance(data, dict) else None
        return Accepted(op_id=op_id if isinstance(op_id, str) else "", answer=kept)
    return Rejected(_rejection(status, answer, scrub), kept)
