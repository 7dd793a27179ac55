"""The benchmarks' writer: installation progress for one user at a steady rate, in a process of
its own, as another writer of the store would be.

    .venv/bin/python bench/churn.py URL USER PER_SECOND [--no-catch-up]

Until its standard input closes it appends one ``ObserveInstallationState`` per
``1 / PER_SECOND`` seconds; by default it also brings the views to the head of the log after
each one, as the service does (bench/http_bench.py's ``--churn``); with ``--no-catch-up`` it
leaves them to a serving service (bench/online_rebuild_bench.py's ``--append``). It prints
how many events it wrote.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from market_ledger.adapters.config import Settings
from market_ledger.bootstrap import bootstrap
from market_ledger.domain.installation import ObserveInstallationState


def churn(url: str, user: str, per_second: float, *, catch_up: bool = True) -> int:
    """Appends until stdin closes; how many events were written."""
    ledger = bootstrap(Settings(database_url=url))
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    written = 0
    moment = datetime(2026, 6, 1, tzinfo=UTC)
    while not stop.wait(1 / per_second):
        moment += timedelta(seconds=1)
        outcome = ledger.handler.handle(
            ObserveInstallationState(
                user,
                "bench-churn",
                "downloading",
                moment,
                source="market0",
                progress=str(written % 100),
                event_id=f"churn-{written}",
            )
        )
        written += len(outcome.events)
        if catch_up:
            ledger.catch_up()
    ledger.close()
    return written


def start_churn(
    url: str, user: str, per_second: float, *, catch_up: bool = True
) -> subprocess.Popen[str]:
    """This script in a process of its own."""
    flags = [] if catch_up else ["--no-catch-up"]
    return subprocess.Popen(
        [sys.executable, __file__, url, user, str(per_second), *flags],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def stop_churn(writer: subprocess.Popen[str]) -> int:
    """Stops a writer of :func:`start_churn`: how many events it wrote."""
    return int(writer.communicate(input="", timeout=60)[0].strip() or 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("user")
    parser.add_argument("per_second", type=float)
    parser.add_argument("--no-catch-up", action="store_true", help="leave the views to serve")
    args = parser.parse_args()
    print(churn(args.url, args.user, args.per_second, catch_up=not args.no_catch_up), flush=True)


if __name__ == "__main__":
    main()
