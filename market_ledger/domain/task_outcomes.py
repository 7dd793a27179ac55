"""What an app's state says about the operation a task asked for.

An app-state message names the operation (``opType``) and the state it reached. Only some
states end an operation; each ends the operations of some kinds, with an outcome:

* an install or clone ends when the app is ``running`` (succeeded), when a download or the
  installation failed (failed), or when it was canceled (canceled);
* a cancel ends when the install it cancels was canceled (succeeded) or when canceling it
  failed (failed): a failed cancel leaves the install going, so it closes the cancel only;
* an uninstall ends on ``uninstalled`` or ``uninstallFailed``; an upgrade on ``running`` or
  ``upgradeFailed``.

app-service reports a cancel's states under the operation type ``install`` or ``cancel``; both
are read the same way.
"""

from __future__ import annotations

import attrs

from market_ledger.domain.task_events import (
    CANCEL,
    CANCELED,
    CLONE,
    FAILED,
    INSTALL,
    SUCCEEDED,
    UNINSTALL,
    UPGRADE,
)

_CANCELED_STATES = frozenset(
    {"installCanceled", "installingCanceled", "pendingCanceled", "downloadingCanceled"}
)
_CANCEL_FAILED_STATES = frozenset({"installCancelFailed", "downloadCancelFailed"})
_INSTALL_FAILED_STATES = frozenset({"installFailed", "downloadFailed"})


@attrs.frozen
class Ending:
    """An operation of ``kind`` ended with ``outcome``."""

    kind: str
    outcome: str


def endings(op_type: str, state: str) -> tuple[Ending, ...]:
    """The operations the state ``state`` of an ``op_type`` operation ends, and how."""
    if op_type in (INSTALL, CANCEL):
        if op_type == INSTALL and state == "running":
            return (Ending(INSTALL, SUCCEEDED), Ending(CLONE, SUCCEEDED))
        if op_type == INSTALL and state in _INSTALL_FAILED_STATES:
            return (Ending(INSTALL, FAILED), Ending(CLONE, FAILED))
        if state in _CANCELED_STATES:
            return (
                Ending(INSTALL, CANCELED),
                Ending(CLONE, CANCELED),
                Ending(CANCEL, SUCCEEDED),
            )
        if state in _CANCEL_FAILED_STATES:
            return (Ending(CANCEL, FAILED),)
        return ()
    if op_type == UNINSTALL:
        if state == "uninstalled":
            return (Ending(UNINSTALL, SUCCEEDED),)
        if state == "uninstallFailed":
            return (Ending(UNINSTALL, FAILED),)
        return ()
    if op_type == UPGRADE:
        if state == "running":
            return (Ending(UPGRADE, SUCCEEDED),)
        if state == "upgradeFailed":
            return (Ending(UPGRADE, FAILED),)
        return ()
    return ()


def endings_seen_by_correction(present: bool, state: str) -> tuple[Ending, ...]:
    """What status correction's reading of app-service says of an app's open operations:
    an app present and running ended its install, clone or upgrade; an app absent ended
    its uninstall and the cancel of its install."""
    if present and state == "running":
        return (Ending(INSTALL, SUCCEEDED), Ending(CLONE, SUCCEEDED), Ending(UPGRADE, SUCCEEDED))
    if not present:
        return (Ending(UNINSTALL, SUCCEEDED), Ending(CANCEL, SUCCEEDED))
    return ()


def taken_by_app_service(kind: str, present: bool, state: str) -> bool:
    """Whether app-service's list of apps shows that it took an operation of ``kind`` whose
    answer never came: the app is there for an install or clone, upgrading for an upgrade,
    gone or going for an uninstall or cancel."""
    if kind in (INSTALL, CLONE):
        return present
    if kind == UPGRADE:
        return present and state.lower().startswith("upgrad")
    if kind == UNINSTALL:
        return not present or state.lower().startswith("uninstall")
    if kind == CANCEL:
        return not present or "cancel" in state.lower()
    return False
