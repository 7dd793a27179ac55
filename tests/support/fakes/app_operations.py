"""The lifecycle app-service runs after accepting an operation: its states, published one
after another (each a step delay after the one before), and all/apps moved along with them.

- install and clone: ``pending``, ``downloading``, ``installing``, ``running``; a failing
  download ends in ``downloadFailed`` after ``downloading``, a failing install in
  ``installFailed`` after ``installing``. The app is in all/apps from ``pending`` on, in the
  state of the last message.
- upgrade: ``upgrading``, then ``running`` or ``upgradeFailed``.
- uninstall: ``uninstalling``, then ``uninstalled`` (the app leaves all/apps) or
  ``uninstallFailed``.
- cancel, while an install or clone of the app is going: the install stops where it is and,
  a step later, ``installingCanceled`` is published and the app leaves all/apps. The message
  comes as app-service's install (opType ``install``, the install's opID) or, when the fake
  reports cancels as ``cancel``, as the cancel's own (opType ``cancel``, the cancel's opID).
  A cancel with nothing going publishes ``installCancelFailed`` the same way, with the
  cancel's opID.

Each lifecycle runs on a daemon thread. Messages of one lifecycle are published in order
(all/apps first, then the message); a publish that fails ends the lifecycle and is kept in
:attr:`Lifecycles.errors`.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any, Protocol

import attrs

from tests.support.fakes.app_state_messages import (
    AppState,
    Instants,
    app_state_message,
    entrance_statuses,
    status_time,
)

INSTALL = "install"
CLONE = "clone"
UPGRADE = "upgrade"
UNINSTALL = "uninstall"
CANCEL = "cancel"
CANCELED_STATE = "installingCanceled"
CANCEL_FAILED_STATE = "installCancelFailed"
#: how a stale message differs from the one it replaces
OLD_TIME = "old_time"
OTHER_OP = "other_op"
#: the steps that can be made to fail, and the kinds whose lifecycle they end
FAILING_STEPS = {
    "download": INSTALL,
    "install": INSTALL,
    "upgrade": UPGRADE,
    "uninstall": UNINSTALL,
}


@attrs.frozen
class OperationRecord:
    """One operation app-service accepted, as it was asked for."""

    kind: str  # install, clone, upgrade, uninstall or cancel
    user: str
    app: str  # the name in the path (a clone's new name)
    op_id: str
    body: Any  # the decoded JSON body (None for a cancel)
    headers: dict[str, str]


def new_op_id() -> str:
    return uuid.uuid4().hex[:10]


class Catalog(Protocol):
    """The all/apps side of the fake, which a lifecycle moves."""

    def install(
        self,
        user: str,
        name: str,
        *,
        state: str = ...,
        source: str = ...,
        title: str | None = ...,
        entrances: Any = ...,
        status_time: str = ...,
    ) -> dict[str, Any]: ...

    def uninstall(self, user: str, name: str) -> None: ...

    def set_state(self, user: str, name: str, state: str, status_time: str = ...) -> None: ...

    def record_of(self, user: str, name: str) -> dict[str, Any] | None: ...


#: publishes one message on the subject of the user given
Publish = Callable[[str, dict[str, Any]], None]


@attrs.define
class _Run:
    record: OperationRecord
    op_type: str
    states: tuple[str, ...]
    raw_app_name: str
    title: str
    source: str
    #: the cancel that stopped this install
    cancel: OperationRecord | None = None


def _plan(kind: str, failing: set[str]) -> tuple[str, ...]:
    if kind == UPGRADE:
        return ("upgrading", "upgradeFailed" if "upgrade" in failing else "running")
    if kind == UNINSTALL:
        return ("uninstalling", "uninstallFailed" if "uninstall" in failing else "uninstalled")
    if "download" in failing:
        return ("pending", "downloading", "downloadFailed")
    if "install" in failing:
        return ("pending", "downloading", "installing", "installFailed")
    return ("pending", "downloading", "installing", "running")


class Lifecycles:
    def __init__(
        self,
        catalog: Catalog,
        publish: Publish,
        instants: Instants,
        *,
        step_delay: float,
        cancel_reports_as: str,
    ) -> None:
        if cancel_reports_as not in (INSTALL, CANCEL):
            raise ValueError(f"cancel_reports_as must be install or cancel: {cancel_reports_as}")
        self.step_delay = step_delay
        self.cancel_reports_as = cancel_reports_as
        self.errors: list[BaseException] = []
        self._catalog = catalog
        self._publish = publish
        self._instants = instants
        self._changed = threading.Condition()
        self._halted = False
        self._active = 0
        self._threads: list[threading.Thread] = []
        self._installing: dict[tuple[str, str], _Run] = {}
        self._failing: dict[str, set[str]] = {}
        self._pauses: dict[str, str] = {}
        self._stale: dict[str, tuple[str | None, str]] = {}

    # --- what a test sets, per app ----------------------------------------------------------

    def fail(self, app: str, step: str) -> None:
        """Make ``app``'s ``step`` (download, install, upgrade, uninstall) fail from now on."""
        if step not in FAILING_STEPS:
            raise ValueError(f"no such step to fail: {step}")
        with self._changed:
            self._failing.setdefault(app, set()).add(step)

    def clear_failures(self, app: str | None = None) -> None:
        with self._changed:
            if app is None:
                self._failing.clear()
            else:
                self._failing.pop(app, None)

    def pause_at(self, app: str, state: str) -> None:
        """Hold ``app``'s lifecycles once they published ``state``, until :meth:`resume` (or a
        cancel of the install)."""
        with self._changed:
            self._pauses[app] = state

    def resume(self, app: str | None = None) -> None:
        with self._changed:
            if app is None:
                self._pauses.clear()
            else:
                self._pauses.pop(app, None)
            self._changed.notify_all()

    def make_stale(self, app: str, how: str, state: str | None = None) -> None:
        """Publish ``app``'s next message (or its next one of ``state``) stale instead: dated
        an hour before the app's last message (``old_time``) or under another opID
        (``other_op``). all/apps does not move for that step."""
        if how not in (OLD_TIME, OTHER_OP):
            raise ValueError(f"a stale message is {OLD_TIME} or {OTHER_OP}: {how}")
        with self._changed:
            self._stale[app] = (state, how)

    # --- running ----------------------------------------------------------------------------

    def start(self, record: OperationRecord) -> None:
        body = record.body if isinstance(record.body, dict) else {}
        existing = self._catalog.record_of(record.user, record.app)
        raw = str(body.get("rawAppName") or record.app)
        title = str(body.get("title") or (existing or {}).get("spec", {}).get("title") or "")
        source = str(body.get("source") or (existing or {}).get("spec", {}).get("source") or "")
        with self._changed:
            if self._halted:
                return
            if record.kind == CANCEL:
                installing = self._installing.pop((record.user, record.app), None)
                if installing is not None:
                    installing.cancel = record
                    self._changed.notify_all()
                    return
                op_type = self.cancel_reports_as
                run = _Run(record, op_type, (CANCEL_FAILED_STATE,), raw, title, source)
            else:
                op_type = INSTALL if record.kind == CLONE else record.kind
                states = _plan(record.kind, self._failing.get(record.app, set()))
                run = _Run(record, op_type, states, raw, title, source)
                if op_type == INSTALL:
                    self._installing[(record.user, record.app)] = run
            self._active += 1
            thread = threading.Thread(
                target=self._drive, args=(run,), name=f"lifecycle:{record.app}", daemon=True
            )
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until every lifecycle has ended (a paused one never does)."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._active == 0, timeout=timeout):
                raise AssertionError(f"{self._active} app lifecycle(s) still going")

    def halt(self) -> None:
        with self._changed:
            self._halted = True
            self._changed.notify_all()
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=5)

    def _drive(self, run: _Run) -> None:
        try:
            for index, state in enumerate(run.states):
                if not self._sleep(run):
                    return
                last = index == len(run.states) - 1
                with self._changed:
                    if run.cancel is not None:
                        break
                    if last:
                        self._forget(run)
                self._reach(run, state)
                if not last and not self._hold(run, state):
                    return
            if run.cancel is not None and self._sleep(None):
                self._reach(run, CANCELED_STATE)
        except Exception as error:  # kept for the test to see, not lost in a thread
            self.errors.append(error)
        finally:
            with self._changed:
                self._forget(run)
                self._active -= 1
                self._changed.notify_all()

    def _sleep(self, run: _Run | None) -> bool:
        """Wait a step, cut short by a cancel of ``run``; False when the fake stops."""
        with self._changed:
            self._changed.wait_for(
                lambda: self._halted or (run is not None and run.cancel is not None),
                timeout=self.step_delay,
            )
            return not self._halted

    def _hold(self, run: _Run, state: str) -> bool:
        with self._changed:
            self._changed.wait_for(
                lambda: (
                    self._halted
                    or run.cancel is not None
                    or self._pauses.get(run.record.app) != state
                )
            )
            return not self._halted

    def _forget(self, run: _Run) -> None:
        key = (run.record.user, run.record.app)
        if self._installing.get(key) is run:
            del self._installing[key]

    def _reach(self, run: _Run, state: str) -> None:
        record = run.record
        op_type, op_id = run.op_type, record.op_id
        if state == CANCELED_STATE and run.cancel is not None and self.cancel_reports_as == CANCEL:
            op_type, op_id = CANCEL, run.cancel.op_id
        stale = self._take_stale(record.app, state)
        if stale == OLD_TIME:
            at = self._instants.stale(record.user, record.app)
        else:
            at = self._instants.next(record.user, record.app)
        if stale == OTHER_OP:
            op_id = f"stale-{new_op_id()}"
        if stale is None:
            self._show(run, state, status_time(at))
        current = self._catalog.record_of(record.user, record.app)
        content = AppState(
            user=record.user,
            name=record.app,
            state=state,
            op_type=op_type,
            op_id=op_id,
            raw_app_name=run.raw_app_name,
            title=run.title or (current or {}).get("spec", {}).get("title", ""),
            entrance_statuses=entrance_statuses(current) if current and state == "running" else (),
        )
        self._publish(record.user, app_state_message(content, at))

    def _take_stale(self, app: str, state: str) -> str | None:
        """How this message is to be stale (None: it is not), counted as used."""
        with self._changed:
            stale = self._stale.get(app)
            if stale is None or stale[0] not in (None, state):
                return None
            del self._stale[app]
            return stale[1]

    def _show(self, run: _Run, state: str, at: str) -> None:
        """Move all/apps to ``state``."""
        user, name = run.record.user, run.record.app
        if run.op_type == INSTALL and state == CANCELED_STATE:
            self._catalog.uninstall(user, name)
        elif run.op_type == INSTALL and run.record.kind != CANCEL:
            self._catalog.install(
                user,
                name,
                state=state,
                source=run.source or "market",
                title=run.title or None,
                entrances=self._entrance_names(user, name, run.raw_app_name),
                status_time=at,
            )
        elif run.op_type == UNINSTALL and state == "uninstalled":
            self._catalog.uninstall(user, name)
        elif run.op_type in (UNINSTALL, UPGRADE):
            self._catalog.set_state(user, name, state, at)

    def _entrance_names(self, user: str, name: str, raw: str) -> list[str]:
        """The app's entrances if it is listed, else the original's (a clone's), else one."""
        for known in (name, raw):
            record = self._catalog.record_of(user, known)
            if record is not None:
                return [e["name"] for e in record["spec"].get("entrances", [])] or [name]
        return [name]
