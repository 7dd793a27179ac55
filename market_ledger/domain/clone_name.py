"""The name of a clone: the original app's name followed by a digest of the clone request.

The replaced system named a clone ``raw_app_name + request_hash``, where the hash is the first
six hex digits of a sha256 over the request as Go's ``json.Marshal`` writes it. A clone made
there and asked for again here must get the same name (the same request targets the same
app), so the encoding is reproduced byte for byte:

- an object ``{"source","app_name","title","envs","entrances"}`` in that order, compact;
  ``title`` is always written, ``envs`` and ``entrances`` are left out when empty;
- an env is ``{"envName", "value", "valueFrom": {"envName"}}``: ``envName`` always, ``value``
  only when not empty, ``valueFrom`` only when given (and its ``envName`` only when not empty,
  so a ``valueFrom`` naming no env is written ``{}``); an entrance is ``{"name","title"}``;
- envs sorted by name, entrances by name (byte order of UTF-8, which is code point order);
- strings escaped as Go does: ``"`` and ``\\``; ``\\b \\f \\n \\r \\t`` in their short forms
  (Go 1.22 and later, which the replaced system is built with); other control characters as
  ``\\u00xx``; ``<``, ``>``, ``&`` as ``\\u003c``, ``\\u003e``, ``\\u0026``; U+2028 and U+2029
  as ``\\u2028`` and ``\\u2029``; everything else, non-ASCII included, as UTF-8;
- a lone surrogate (which only a Python string can hold) is written as U+FFFD, as Go's
  decoder would have made it of the ``\\udXXX`` escape that produced it.

Equal sort keys: Go sorts with ``sort.Slice``, which is not stable in general, but it sorts
12 elements or fewer by insertion, which keeps equal keys in request order. The sort here is
stable, so the names agree for every request of up to 12 envs (and up to 12 entrances); beyond
that, two envs of the same name might be ordered differently by Go.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Protocol

import attrs

#: how many hex digits of the sha256 name a clone
HASH_LENGTH = 6
_HASH = re.compile(r"[0-9a-f]{6}")

_SHORT_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}
_NEEDS_ESCAPE = re.compile('[\x00-\x1f"\\\\<>&\u2028\u2029\ud800-\udfff]')


class CloneEnvInput(Protocol):
    """What the hash reads of an env (the service's env values have this shape)."""

    @property
    def name(self) -> str: ...

    @property
    def value(self) -> str | None: ...

    @property
    def value_from(self) -> str | None: ...


@attrs.frozen
class CloneEnv:
    """One env of a clone request: a value, or (``value_from``) the env to read it from."""

    name: str
    value: str | None = attrs.field(default=None, repr=False)
    value_from: str | None = None


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    short = _SHORT_ESCAPES.get(char)
    if short is not None:
        return short
    if "\ud800" <= char <= "\udfff":
        return "\ufffd"
    return f"\\u{ord(char):04x}"


def go_json_string(text: str) -> str:
    """``text`` as a JSON string, escaped as Go's ``json.Marshal`` escapes it."""
    return '"' + _NEEDS_ESCAPE.sub(_escape, text) + '"'


def _key(text: str) -> str:
    """The sort key Go compares: the string as decoded (a lone surrogate became U+FFFD)."""
    return re.sub("[\ud800-\udfff]", "\ufffd", text)


def _env_json(env: CloneEnvInput) -> str:
    parts = ['"envName":' + go_json_string(env.name)]
    if env.value:
        parts.append('"value":' + go_json_string(env.value))
    if env.value_from is not None:
        inner = '"envName":' + go_json_string(env.value_from) if env.value_from else ""
        parts.append('"valueFrom":{' + inner + "}")
    return "{" + ",".join(parts) + "}"


def _entrance_json(entrance: tuple[str, str]) -> str:
    name, title = entrance
    return '{"name":' + go_json_string(name) + ',"title":' + go_json_string(title) + "}"


def clone_hash_input(
    source: str,
    app_name: str,
    title: str,
    envs: Iterable[CloneEnvInput] = (),
    entrances: Iterable[tuple[str, str]] = (),
) -> bytes:
    """The bytes the clone hash is taken over (see the module's docstring for the rules)."""
    sorted_envs = sorted(envs, key=lambda env: _key(env.name))
    sorted_entrances = sorted(entrances, key=lambda entrance: _key(entrance[0]))
    parts = [
        '"source":' + go_json_string(source),
        '"app_name":' + go_json_string(app_name),
        '"title":' + go_json_string(title),
    ]
    if sorted_envs:
        parts.append('"envs":[' + ",".join(_env_json(env) for env in sorted_envs) + "]")
    if sorted_entrances:
        items = ",".join(_entrance_json(entrance) for entrance in sorted_entrances)
        parts.append('"entrances":[' + items + "]")
    return ("{" + ",".join(parts) + "}").encode("utf-8")


def clone_request_hash(
    source: str,
    app_name: str,
    title: str,
    envs: Iterable[CloneEnvInput] = (),
    entrances: Iterable[tuple[str, str]] = (),
) -> str:
    """The first six hex digits of the sha256 of :func:`clone_hash_input`."""
    data = clone_hash_input(source, app_name, title, envs, entrances)
    return hashlib.sha256(data).hexdigest()[:HASH_LENGTH]


def clone_app_name(raw_app_name: str, request_hash: str) -> str:
    """The clone's app name: the original's name followed by the request hash."""
    if not raw_app_name:
        raise ValueError("a clone needs the name of the app it copies")
    if not _HASH.fullmatch(request_hash):
        raise ValueError(f"a clone request hash is six lowercase hex digits, not {request_hash!r}")
    return raw_app_name + request_hash
