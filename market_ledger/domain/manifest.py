"""A catalog entry as offered by a market source, validated before it is offered.

The rules that read an entry (its app key, its labels) are those of
:mod:`market_ledger.domain.catalog_entry`; this module refuses entries those rules cannot
read and gives the digest an offer is recognised by.
"""

from __future__ import annotations

from collections.abc import Mapping
from hashlib import sha256
from typing import Any

import attrs

from market_ledger.domain.canonical import canonical_json
from market_ledger.domain.catalog_entry import (
    LABELS_FIELD,
    app_id_field,
    app_key_of,
    entry_with_labels,
    is_delisting,
)
from market_ledger.domain.limits import name_problem, text_problem

__all__ = [
    "InvalidManifest",
    "Manifest",
    "entry_with_labels",
    "is_delisting",
    "labels_of",
]


class InvalidManifest(ValueError):
    """A catalog entry that cannot be offered; the message names the field and the value."""


def _text(entry: Mapping[str, Any], field: str) -> str:
    value = entry.get(field)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidManifest(f"field {field!r} must be a string, got {type(value).__name__}")
    return str(value).strip()


def labels_of(entry: Mapping[str, Any]) -> tuple[str, ...]:
    raw = entry.get(LABELS_FIELD)
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(label, str) for label in raw):
        raise InvalidManifest(f"field {LABELS_FIELD!r} must be a list of strings, got {raw!r}")
    return tuple(raw)


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
        app_id = app_key_of(entry, _text)
        if not app_id:
            raise InvalidManifest("catalog entry has none of 'id', 'appID' or 'name'")
        problem = name_problem(app_id)
        if problem is not None:
            raise InvalidManifest(
                f"catalog entry's app key ({app_id_field(entry, _text) or 'name'!r}) {problem}"
            )
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
