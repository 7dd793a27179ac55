"""The event store's JSON transcoder, on orjson.

It writes exactly the library's format: plain JSON, with values of custom types (datetimes,
decimals) as ``{"_type_": name, "_data_": value}`` envelopes. Decoding with orjson skips the
per-object Python hook of the standard decoder: envelopes are resolved where our events put
them (top-level fields), and a full walk runs only when a stored state holds envelopes deeper
down, so any state written by the library's own transcoder still decodes the same.

Events carry data from outside (entrances of an app state, catalog content), and such data may
itself hold a mapping with a ``_type_`` key. Stored as it is, it would read back as an envelope:
as a datetime, or as an error that stops every reader of the log at that event for good. So a
mapping of the event's own data that has a ``_type_`` key is stored inside an envelope of its
own (``ESCAPED``), which reads back as the mapping, untouched.
"""

from __future__ import annotations

from typing import Any

import orjson
from eventsourcing.persistence import JSONTranscoder

ENVELOPE = b'"_type_":'
#: the envelope of a mapping of the event's own data that has a ``_type_`` key
ESCAPED = "ledger_mapping"
ESCAPED_MARK = b'"ledger_mapping"'
OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS


class OrjsonTranscoder(JSONTranscoder):
    def encode(self, obj: Any) -> bytes:
        made = 0

        def envelope(value: Any) -> dict[str, Any]:
            nonlocal made
            made += 1
            return self._encode_obj(value)

        data = orjson.dumps(obj, default=envelope, option=OPTIONS)
        # Every ``_type_`` key in the output is an envelope made here unless the event's own
        # data holds one (a string holding the text is escaped by JSON and never counted).
        if data.count(ENVELOPE) > made:
            data = orjson.dumps(_escaped(obj), default=self._encode_obj, option=OPTIONS)
        return data

    def decode(self, data: bytes) -> Any:
        decoded = orjson.loads(data)
        envelopes = data.count(ENVELOPE)
        if not envelopes:
            return decoded
        if isinstance(decoded, dict) and ESCAPED_MARK not in data:
            resolved = 0
            for key, value in decoded.items():
                if isinstance(value, dict) and "_type_" in value:
                    decoded[key] = self._decode_obj(value)
                    resolved += 1
            if resolved == envelopes:
                return decoded
        return self._walk(decoded)

    def _walk(self, value: Any) -> Any:
        if isinstance(value, dict):
            if value.get("_type_") == ESCAPED and len(value) == 2 and "_data_" in value:
                return {k: self._walk(v) for k, v in value["_data_"].items()}
            return self._decode_obj({k: self._walk(v) for k, v in value.items()})
        if isinstance(value, list):
            return [self._walk(v) for v in value]
        return value


def _escaped(value: Any) -> Any:
    """``value`` with each mapping that has a ``_type_`` key put in an ``ESCAPED`` envelope."""
    if isinstance(value, dict):
        inner = {k: _escaped(v) for k, v in value.items()}
        return {"_type_": ESCAPED, "_data_": inner} if "_type_" in value else inner
    if isinstance(value, list | tuple):
        return [_escaped(v) for v in value]
    return value
