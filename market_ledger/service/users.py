"""Use cases: register a user (``market-ledger user add``) and the users named at start.

Registering is the User aggregate's decision: the same name, role and zone again changes
nothing, which is what lets a caller say "unchanged".
"""

from __future__ import annotations

from collections.abc import Iterable

from market_ledger.domain.user import RegisterUser
from market_ledger.service.use_case_ports import Commands


def register_user(handler: Commands, name: str, role: str = "normal", zone: str = "") -> bool:
    """Register ``name`` (or change their role or zone); whether anything changed."""
    outcome = handler.execute(RegisterUser(name, role, zone))
    return bool(outcome.events)


def register_missing_users(handler: Commands, names: Iterable[str]) -> list[str]:
    """Register those of ``names`` who are not registered yet; the names registered.

    A user registered already keeps the role and zone given since: an admin is not demoted
    by being named again.
    """
    missing = [
        RegisterUser(name)
        for name in names
        if not getattr(handler.state_of(RegisterUser(name)), "registered", False)
    ]
    if not missing:
        return []
    outcome = handler.handle(*missing)  # one transaction for all of them
    return [str(getattr(event, "name", "?")) for event in outcome.events]
