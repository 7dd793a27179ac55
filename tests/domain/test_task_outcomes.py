"""Given an app state, which open operations it ends, and how."""

from __future__ import annotations

import pytest

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
from market_ledger.domain.task_outcomes import (
    Ending,
    endings,
    endings_seen_by_correction,
    taken_by_app_service,
)


@pytest.mark.parametrize(
    ("op_type", "state", "expected"),
    [
        ("install", "running", {(INSTALL, SUCCEEDED), (CLONE, SUCCEEDED)}),
        ("install", "installFailed", {(INSTALL, FAILED), (CLONE, FAILED)}),
        ("install", "downloadFailed", {(INSTALL, FAILED), (CLONE, FAILED)}),
        (
            "install",
            "installingCanceled",
            {(INSTALL, CANCELED), (CLONE, CANCELED), (CANCEL, SUCCEEDED)},
        ),
        (
            "cancel",
            "pendingCanceled",
            {(INSTALL, CANCELED), (CLONE, CANCELED), (CANCEL, SUCCEEDED)},
        ),
        ("install", "downloadCancelFailed", {(CANCEL, FAILED)}),
        ("uninstall", "uninstalled", {(UNINSTALL, SUCCEEDED)}),
        ("uninstall", "uninstallFailed", {(UNINSTALL, FAILED)}),
        ("upgrade", "running", {(UPGRADE, SUCCEEDED)}),
        ("upgrade", "upgradeFailed", {(UPGRADE, FAILED)}),
    ],
)
def test_given_an_ending_state_then_it_ends_the_operations_of_its_kinds(
    op_type: str, state: str, expected: set[tuple[str, str]]
) -> None:
    assert {(e.kind, e.outcome) for e in endings(op_type, state)} == expected


@pytest.mark.parametrize(
    ("op_type", "state"),
    [
        ("install", "downloading"),
        ("install", "installing"),
        ("install", "uninstalled"),
        ("uninstall", "running"),
        ("upgrade", "upgrading"),
        ("stop", "stopped"),
        ("", "running"),
    ],
)
def test_given_a_state_on_the_way_or_of_another_operation_then_it_ends_nothing(
    op_type: str, state: str
) -> None:
    assert endings(op_type, state) == ()


def test_given_a_failed_cancel_then_the_install_it_tried_to_cancel_stays_open() -> None:
    assert Ending(INSTALL, FAILED) not in endings("install", "installCancelFailed")


def test_given_status_correction_then_present_and_running_ends_installs_absent_ends_removals() -> (
    None
):
    assert {e.kind for e in endings_seen_by_correction(True, "running")} == {
        INSTALL,
        CLONE,
        UPGRADE,
    }
    assert {e.kind for e in endings_seen_by_correction(False, "")} == {UNINSTALL, CANCEL}
    assert endings_seen_by_correction(True, "installing") == ()


@pytest.mark.parametrize(
    ("kind", "present", "state", "taken"),
    [
        (INSTALL, True, "downloading", True),
        (INSTALL, False, "", False),
        (CLONE, True, "pending", True),
        (UPGRADE, True, "upgrading", True),
        (UPGRADE, True, "running", False),
        (UNINSTALL, False, "", True),
        (UNINSTALL, True, "uninstalling", True),
        (UNINSTALL, True, "running", False),
        (CANCEL, True, "installingCanceled", True),
        (CANCEL, True, "installing", False),
    ],
)
def test_given_app_service_s_list_then_it_tells_whether_an_unanswered_operation_was_taken(
    kind: str, present: bool, state: str, taken: bool
) -> None:
    assert taken_by_app_service(kind, present, state) is taken
