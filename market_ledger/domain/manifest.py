"""A catalog entry as offered by a market source, and the rules that read it.

One canonical app key: ``app_id`` is the entry's ``id``, else ``appID``, else ``name``. The
system this replaces matched by id in one place and by name in another, which produced
duplicates and lost moves.
"""

from __future__ import annotations

from collections.abc import Mapping
from hashlib import sha256
from typing import Any

import attrs

from market_ledger.domain.canonical import canonical_json
from market_ledger.domain.limits import name_problem, text_problem

DELISTING_LABELS = frozenset({"suspend", "remove"})
LABELS_FIELD = "appLabels"


class InvalidManifest(ValueError):
    """A catalog entry that cannot be offered; the message names the field and the value."""


def _text(entry: Mapping[str, Any], field: str) -> str:
    value = entry.get(field)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidManifest(f"field {field!r} must be a string, got {type(value).__name__}")
    return str(value).strip()


def app_key_of(entry: Mapping[str, Any]) -> str:
    """The canonical app key: ``id``, else ``appID`` (unless "0"), else ``name``."""
    for field in ("id", "appID"):
        value = _text(entry, field)
        if value and value != "0":
            return value
    return _text(entry, "name")


def _key_field(entry: Mapping[str, Any]) -> str:
    """The field the canonical app key was read from."""
    for field in ("id", "appID"):
        value = _text(entry, field)
        if value and value != "0":
            return field
    return "name"


def labels_of(entry: Mapping[str, Any]) -> tuple[str, ...]:
    raw = entry.get(LABELS_FIELD)
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(label, str) for label in raw):
        raise InvalidManifest(f"field {LABELS_FIELD!r} must be a list of strings, got {raw!r}")
    return tuple(raw)


def is_delisting(labels: tuple[str, ...]) -> bool:
    """``suspend`` or ``remove``, in any case, take an app off the market."""
    return any(label.strip().lower() in DELISTING_LABELS for label in labels)


def entry_with_labels(
    content: Mapping[str, Any], labels: list[str] | tuple[str, ...]
) -> dict[str, Any]:
    """The catalog entry again, from its stored content and the listing's labels."""
    entry = dict(content)
    if labels:
        entry[LABELS_FIELD] = list(labels)
    return entry


@attrs.frozen
class Manifest:
    """A validated catalog entry: its key, name, version, labels and content digest.

    The digest covers every field except the labels, which are tracked on their own, so that
    a change of description or price without a version bump is still an offer.
    """

    app_id: str
    name: str
    version: str
    labels: tuple[str, ...]
    digest: str
    entry: Mapping[str, Any] = attrs.field(eq=False, repr=False)
    #: the entry without its labels, as canonical JSON text: what ``digest`` is the digest of
    content: str = attrs.field(eq=False, repr=False, default="")

    @property
    def delisting(self) -> bool:
        return is_delisting(self.labels)

    @classmethod
    def from_entry(cls, entry: object) -> Manifest:
        if not isinstance(entry, Mapping):
            raise InvalidManifest(f"a catalog entry must be an object, got {type(entry).__name__}")
        app_id = app_key_of(entry)
        if not app_id:
            raise InvalidManifest("catalog entry has none of 'id', 'appID' or 'name'")
        problem = name_problem(app_id)
        if problem is not None:
            raise InvalidManifest(f"catalog entry's app key ({_key_field(entry)!r}) {problem}")
        name = _text(entry, "name") or app_id
        version = _text(entry, "version")
        if not version:
            raise InvalidManifest(f"catalog entry {app_id!r} has no 'version'")
        for field, value in (("name", name), ("version", version)):
            problem = text_problem(value)
            if problem is not None:
                raise InvalidManifest(f"catalog entry {app_id!r}: field {field!r} {problem}")
        labels = labels_of(entry)
        # The content is stored as JSON text the views read back: it must be JSON proper.
        unlabelled = {k: v for k, v in entry.items() if k != LABELS_FIELD}
        try:
            content = canonical_json(unlabelled, finite=True)
        except ValueError:
            raise InvalidManifest(
                f"catalog entry {app_id!r} holds a number JSON cannot carry (NaN or infinity)"
            ) from None
        try:
            encoded = content.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidManifest(
                f"catalog entry {app_id!r} holds text that is not valid Unicode (a lone surrogate)"
            ) from None
        return cls(
            app_id=app_id,
            name=name,
            version=version,
            labels=labels,
            digest=sha256(encoded).hexdigest(),
            entry=dict(entry),
            content=content,
        )
