"""The one-line cycle summary an operator reads in the log."""

from __future__ import annotations

from market_ledger.service.cycle import describe


def test_the_log_line_says_what_each_phase_did() -> None:
    summary = {
        "phases": {
            "sync": {
                "sources": {
                    "market.olares": {
                        "outcome": "synced",
                        "apps": 24,
                        "events": {"Offered": 24, "Delisted": 1},
                    },
                    "backup": {
                        "outcome": "failed",
                        "error": "market source at https://b: HTTP 500",
                    },
                }
            },
            "hydrate": {"due": 25, "rendered": 23, "failed": 2},
            "feed": {"from": 3, "to": 5, "consumed": 2},
            "status_correction": {"corrections": 1},
        },
        "failed_phases": ["status_correction"],
        "seconds": 1.234,
    }
    line = describe(summary)
    assert "market.olares synced (24 apps, 24 offered, 1 delisted)" in line
    assert "backup failed: market source at https://b: HTTP 500" in line
    assert "rendered 23, failed 2 of 25 due" in line
    assert "feed 3->5" in line and "1 status correction(s)" in line
    assert "failed: status_correction" in line and line.endswith("(1.23 s)")


def test_a_quiet_cycle_says_so() -> None:
    assert describe({"phases": {}, "seconds": 0.05}) == "nothing to do (0.05 s)"
