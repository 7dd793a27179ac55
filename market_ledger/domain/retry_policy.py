"""When a failed render is tried again, and when the ledger gives up on it.

Exponential backoff with equal jitter, capped, parked after ``max_attempts``. The jitter is
derived from the listing and the attempt number rather than drawn at random, so deciding is a
pure function and two failures of different apps at the same moment still spread out.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

import attrs


@attrs.frozen
class RetryPolicy:
    base_seconds: float = 1.0
    max_seconds: float = 900.0
    max_attempts: int = 10

    def __attrs_post_init__(self) -> None:
        if self.base_seconds <= 0:
            raise ValueError(f"retry base must be positive, got {self.base_seconds}")
        if self.max_seconds < self.base_seconds:
            raise ValueError(
                f"retry cap {self.max_seconds} s is below the base {self.base_seconds} s"
            )
        if self.max_attempts < 1:
            raise ValueError(f"max attempts must be at least 1, got {self.max_attempts}")

    def exhausted(self, attempt: int) -> bool:
        """True once ``attempt`` failures mean the item is parked."""
        return attempt >= self.max_attempts

    def delay(self, attempt: int, key: str) -> timedelta:
        """Delay before retry number ``attempt`` (1 for the first failure)."""
        ceiling = min(self.max_seconds, self.base_seconds * 2 ** max(attempt - 1, 0))
        fraction = int.from_bytes(hashlib.sha256(f"{key}/{attempt}".encode()).digest()[:8]) / 2**64
        return timedelta(seconds=ceiling / 2 + fraction * ceiling / 2)
