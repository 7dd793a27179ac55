"""Credentials in URLs and text: found, split off and redacted, the same way everywhere.

A URL may carry a secret in its user information (``https://user:token@host``) or in a query
parameter (``?token=...``). Whatever is shown (a log line, an error, ``status``, ``source
list``, an HTTP body) goes through :func:`redact_url` or :func:`redact_text`; and the domain
refuses to store a URL that :func:`has_credentials`, so no secret is ever appended to the log.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit, urlunsplit

import attrs

REDACTED = "***"
#: a query parameter whose name contains one of these carries a secret
SECRET_WORDS = (
    "token",
    "secret",
    "password",
    "passwd",
    "pwd",
    "key",
    "auth",
    "signature",
    "sig",
    "credential",
    "session",
)
#: URL schemes whose user name alone is no secret (a database user is shown; a user name
#: alone in an HTTP URL is usually a token: ``https://TOKEN@host``)
USER_IS_PUBLIC = ("postgresql", "postgres", "sqlite", "nats", "tls")

_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>()\[\]{}]+")
_KEY_VALUE_IN_TEXT = re.compile(
    r"(?i)\b(password|passwd|pwd|token|secret|api[_-]?key|access[_-]?token)(\s*[=:]\s*)"
    r"(?!\*\*\*)([^\s&'\",;]+)"
)


def is_secret_parameter(name: str) -> bool:
    lowered = unquote(name).lower()
    return any(word in lowered for word in SECRET_WORDS)


@attrs.frozen(repr=False)
class UrlCredentials:
    """The secret parts of a URL: its user information and its secret query parameters."""

    username: str | None = None
    password: str | None = None
    query: tuple[tuple[str, str], ...] = ()

    def __bool__(self) -> bool:
        return self.username is not None or self.password is not None or bool(self.query)

    def __repr__(self) -> str:  # never the values, even in a traceback or a debugger
        names = ", ".join(name for name, _ in self.query)
        return f"UrlCredentials(user={'yes' if self.username else 'no'}, query=[{names}])"


def _pairs(query: str) -> list[tuple[str, str, str]]:
    """(raw item, decoded name, decoded value) of each ``name=value`` of a query."""
    found = []
    for item in query.split("&"):
        if not item:
            continue
        name, _, value = item.partition("=")
        found.append((item, unquote(name.replace("+", " ")), unquote(value.replace("+", " "))))
    return found


def split_credentials(url: str) -> tuple[str, UrlCredentials]:
    """``url`` without its credentials, and the credentials it carried.

    The public URL keeps everything else (scheme, host, port, path, the other query
    parameters), so it can be stored and shown.
    """
    parts = urlsplit(url.strip())
    credentials_username: str | None = None
    credentials_password: str | None = None
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, netloc = netloc.rpartition("@")
        user, colon, password = userinfo.partition(":")
        credentials_username = unquote(user)
        credentials_password = unquote(password) if colon else None
    kept: list[str] = []
    secret: list[tuple[str, str]] = []
    for raw, name, value in _pairs(parts.query):
        if is_secret_parameter(name):
            secret.append((name, value))
        else:
            kept.append(raw)
    credentials = UrlCredentials(credentials_username, credentials_password, tuple(secret))
    if not credentials:
        return url.strip(), credentials
    public = urlunsplit(parts._replace(netloc=netloc, query="&".join(kept)))
    return public, credentials


def has_credentials(url: str) -> bool:
    try:
        return bool(split_credentials(url)[1])
    except ValueError:
        return False


def redact_url(url: str) -> str:
    """``url`` with its password, secret query values (and a lone HTTP user) as ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_key_values(url)
    netloc = parts.netloc
    changed = False
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user, colon, _password = userinfo.partition(":")
        if colon:
            userinfo = f"{user}:{REDACTED}"
        elif parts.scheme.lower() not in USER_IS_PUBLIC:
            userinfo = REDACTED
        netloc = f"{userinfo}@{host}"
        changed = True
    items = []
    for raw, name, _value in _pairs(parts.query):
        if is_secret_parameter(name):
            items.append(f"{raw.partition('=')[0]}={REDACTED}")
            changed = True
        else:
            items.append(raw)
    if not changed:
        return url
    return urlunsplit(parts._replace(netloc=netloc, query="&".join(items)))


def redact_key_values(text: str) -> str:
    """``password=...``, ``token: ...`` and the like outside URLs (e.g. a libpq DSN)."""
    return _KEY_VALUE_IN_TEXT.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)


def redact_text(text: str) -> str:
    """Every URL in ``text`` redacted, and secret ``key=value`` pairs outside them."""
    if "://" in text:
        text = _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)
    return redact_key_values(text)
