"""How the fake app-service misanswers an operation call, per app or for every app.

A fault is set for one app (the name in the call's path) or for all (``app=None``), for one
action (``install``, which clones share, ``upgrade``, ``uninstall``, ``cancel``) or for all,
for the next ``times`` calls or until cleared. The most specific one applies: the app's and
action's, then the app's, then the action's, then the one for everything.
"""

from __future__ import annotations

import threading

import attrs

from tests.support.fakes.http_fake import Reply

HANG = "hang"
MISSING_ENV = "missing_env"
ERROR_500 = "error_500"
GARBAGE = "garbage"
BUSINESS_ERROR = "business_error"
ACCEPT_SILENTLY = "accept_silently"


@attrs.frozen
class Fault:
    mode: str
    #: the env names a ``missing_env`` answer lists
    missing: tuple[str, ...] = ()
    message: str = ""

    def reply(self) -> Reply | None:
        """The answer this fault gives instead of an acceptance (None: it has none of its
        own, the call is handled by the fake)."""
        if self.mode == MISSING_ENV:
            missing = [{"envName": n, "type": "string", "required": True} for n in self.missing]
            return Reply.json(
                {
                    "code": 422,
                    "message": self.message or "app env missing required values",
                    "data": {"type": "appenv", "Data": {"missingValues": missing}},
                },
                status=422,
            )
        if self.mode == ERROR_500:
            return Reply.json(
                {"code": 500, "message": self.message or "internal error"}, status=500
            )
        if self.mode == GARBAGE:
            return Reply.garbage(status=502)
        if self.mode == BUSINESS_ERROR:
            return Reply.json({"code": 400, "message": self.message or "app is not allowed"})
        return None


@attrs.define
class _Rule:
    fault: Fault
    remaining: int | None  # None: until cleared


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: dict[tuple[str | None, str | None], _Rule] = {}

    def set(
        self, fault: Fault, app: str | None, action: str | None, times: int | None = None
    ) -> None:
        with self._lock:
            self._rules[(app, action)] = _Rule(fault, times)

    def take(self, app: str, action: str) -> Fault | None:
        """The fault for this call, counted as used."""
        with self._lock:
            for key in ((app, action), (app, None), (None, action), (None, None)):
                rule = self._rules.get(key)
                if rule is None:
                    continue
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        del self._rules[key]
                return rule.fault
        return None

    def clear(self, app: str | None = None, *, mode: str | None = None) -> None:
        """Forget the faults of ``app`` (None: of every app and for all), of ``mode`` or all."""
        with self._lock:
            for key, rule in list(self._rules.items()):
                if (app is None or key[0] == app) and (mode is None or rule.fault.mode == mode):
                    del self._rules[key]


class Hangs:
    """Calls that wait, each on its own handler thread, until released or the fake stops.

    :meth:`arm` makes calls wait and :meth:`release` lets them all go (and any that took
    their fault but had not begun to wait yet)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._armed = False
        self._waiting = 0
        self._halted = False

    @property
    def waiting(self) -> int:
        with self._changed:
            return self._waiting

    def arm(self) -> None:
        with self._changed:
            self._armed = True

    def wait(self) -> bool:
        """Hang; True once released, False when the fake stops first."""
        with self._changed:
            self._waiting += 1
            self._changed.notify_all()
            try:
                self._changed.wait_for(lambda: self._halted or not self._armed)
            finally:
                self._waiting -= 1
            return not self._halted

    def wait_for_waiting(self, count: int, timeout: float = 10.0) -> None:
        """Wait until ``count`` calls hang (raises AssertionError if they do not)."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._waiting >= count, timeout=timeout):
                raise AssertionError(f"{self._waiting} call(s) hanging, not {count}")

    def release(self) -> None:
        with self._changed:
            self._armed = False
            self._changed.notify_all()

    def halt(self) -> None:
        with self._changed:
            self._halted = True
            self._changed.notify_all()
