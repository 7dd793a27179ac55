"""The event store's JSON transcoder, on orjson.

It writes exactly the library's format: plain JSON, with values of custom types (datetimes,
decimals) as ``{"_type_": name, "_data_": value}`` envelopes. Decoding with orjson skips the
per-object Python hook of the standard decoder: envelopes are resolved where our events put
them (top-level fields), and a full walk runs only when a stored state holds envelopes deeper
down, so any state written by the library's own transcoder still decodes the same.
"""

from __future__ import annotations

from typing import Any

import orjson
from eventsourcing.persistence import JSONTranscoder

ENVELOPE = b'"_type_":'
OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS


class OrjsonTranscoder(JSONTranscoder):
    def encode(self, obj: Any) -> bytes:
        return orjson.dumps(obj, default=self._encode_obj, option=OPTIONS)

    def decode(self, data: bytes) -> Any:
        decoded = orjson.loads(data)
        envelopes = data.count(ENVELOPE)
        if not envelopes:
            return decoded
        if isinstance(decoded, dict):
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
            return self._decode_obj({k: self._walk(v) for k, v in value.items()})
        if isinstance(value, list):
            return [self._walk(v) for v in value]
        return value
