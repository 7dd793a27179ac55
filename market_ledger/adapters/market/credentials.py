"""The credentials of market sources: one file per source, beside the store, never in the log.

``source add ID --url https://user:token@host/?token=T`` stores ``https://host/`` in the log
(the domain refuses a URL with credentials) and writes the user, password and secret query
parameters to ``<LEDGER_CREDENTIALS_DIR>/<ID>.json`` (readable by its owner only). The
clients read that file when they talk to the source: the user and password become HTTP basic
authentication, the secret parameters are added to every request's query. An operator may
also write the file by hand (or mount it), in the same shape::

    {"username": "user", "password": "token", "query": {"token": "T"}}
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from market_ledger.adapters.config import ConfigurationError
from market_ledger.domain.redaction import UrlCredentials


class CredentialStore:
    """The credentials folder: ``<folder>/<source id>.json`` per source that has any."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def path_for(self, source_id: str) -> Path:
        return self.folder / (quote(source_id, safe="") + ".json")

    def save(self, source_id: str, credentials: UrlCredentials) -> Path:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.path_for(source_id)
        document: dict[str, Any] = {"query": dict(credentials.query)}
        if credentials.username is not None:
            document["username"] = credentials.username
        if credentials.password is not None:
            document["password"] = credentials.password
        temporary = path.with_suffix(".json.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            json.dump(document, out)
        temporary.replace(path)
        return path

    def load(self, source_id: str) -> UrlCredentials | None:
        path = self.path_for(source_id)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as error:
            raise ConfigurationError(
                f"cannot read the credentials of source {source_id!r} ({path}): {error.strerror}"
            ) from None
        try:
            document = json.loads(text)
        except ValueError:
            document = None
        query = document.get("query", {}) if isinstance(document, dict) else None
        fields = [document.get(k) for k in ("username", "password")] if query is not None else []
        if (
            not isinstance(query, dict)
            or not all(isinstance(v, str) for v in query.values())
            or not all(v is None or isinstance(v, str) for v in fields)
        ):
            # never the content: it is the secret
            raise ConfigurationError(
                f"the credentials of source {source_id!r} ({path}) are not "
                '{"username": "...", "password": "...", "query": {"name": "value"}}'
            )
        return UrlCredentials(fields[0], fields[1], tuple(query.items()))

    def forget(self, source_id: str) -> bool:
        try:
            self.path_for(source_id).unlink()
        except FileNotFoundError:
            return False
        return True


def basic_auth(credentials: UrlCredentials | None) -> httpx.BasicAuth | None:
    if credentials is None or (credentials.username is None and credentials.password is None):
        return None
    return httpx.BasicAuth(credentials.username or "", credentials.password or "")
