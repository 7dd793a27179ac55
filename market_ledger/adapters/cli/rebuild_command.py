"""``market-ledger rebuild``: every view from position 0, beside the serving ones, switched in.

Two variables exist for tests only, to stop a rebuild at one of its steps
(market_ledger.projections.rebuild.STEPS): ``LEDGER_REBUILD_TEST_KILL_AT=STEP`` makes the
process SIGKILL itself there (crash tests), ``LEDGER_REBUILD_TEST_PAUSE_AT=STEP:SECONDS``
makes it wait there (so that readers meet the switch). Neither is meant for production.
"""

from __future__ import annotations

import logging
import os
import resource
import signal
import sys
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Any

import click

from market_ledger.adapters.cli.support import held_logs, logged_progress
from market_ledger.adapters.config import ConfigurationError
from market_ledger.projections.generations import AnotherRebuildRuns
from market_ledger.projections.rebuild import STEPS

KILL_AT = "LEDGER_REBUILD_TEST_KILL_AT"
PAUSE_AT = "LEDGER_REBUILD_TEST_PAUSE_AT"

log = logging.getLogger("market_ledger.rebuild")


def _step(name: str, raw: str) -> str:
    if raw not in STEPS:
        raise ConfigurationError(
            f"{name}={raw!r} is not a step of a rebuild (one of {', '.join(STEPS)})"
        )
    return raw


def step_hook(env: Mapping[str, str]) -> Callable[[str], None] | None:
    """The test-only stop the environment asks for, or None (the normal case)."""
    kill_raw = env.get("LEDGER_REBUILD_TEST_KILL_AT", "").strip()
    pause_raw = env.get("LEDGER_REBUILD_TEST_PAUSE_AT", "").strip()
    if not kill_raw and not pause_raw:
        return None
    kill_at = _step(KILL_AT, kill_raw) if kill_raw else None
    pause_at, pause_seconds = None, 0.0
    if pause_raw:
        step, colon, seconds = pause_raw.partition(":")
        pause_at = _step(PAUSE_AT, step)
        try:
            pause_seconds = float(seconds) if colon else -1.0
        except ValueError:
            pause_seconds = -1.0
        if pause_seconds < 0:
            raise ConfigurationError(
                f"{PAUSE_AT}={pause_raw!r}: expected STEP:SECONDS, e.g. hashed:2"
            )

    def at_step(step: str) -> None:
        log.info("rebuild: step %s", step)
        if step == pause_at:
            time.sleep(pause_seconds)
        if step == kill_at:
            logging.shutdown()  # the step's line reaches the log before the process is gone
            os.kill(os.getpid(), signal.SIGKILL)

    return at_step


def add_rebuild_command(
    cli: click.Group, ledger: Callable[[], AbstractContextManager[Any]]
) -> None:
    """Add ``rebuild``; ``ledger`` opens the store as the other commands do."""

    @cli.command(help="Rebuild every projection from position 0.")
    @click.option(
        "--verify", is_flag=True, help="Compare with the live views; exit 1 if they differ."
    )
    def rebuild(verify: bool) -> None:
        try:
            hook = step_hook(os.environ)
        except ConfigurationError as error:
            raise click.ClickException(str(error)) from error
        with ledger() as opened:
            try:
                report = _run(opened, verify, hook)
            except AnotherRebuildRuns as refused:
                raise click.ClickException(str(refused)) from None
        click.echo(
            f"rebuilt {report.events} events up to position {report.position} in "
            f"{report.seconds:.2f} s ({report.events_per_second:,.0f} events/s; peak RSS of "
            f"this process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB)"
        )
        if verify:
            if report.differences:
                for difference in report.differences:
                    click.echo(difference.describe(), err=True)
                click.echo(f"verify: {len(report.differences)} difference(s)", err=True)
                sys.exit(1)
            click.echo(f"verify: {report.compared_rows} rows identical")


def _run(opened: Any, verify: bool, hook: Callable[[str], None] | None) -> Any:
    if not sys.stderr.isatty():
        return opened.rebuild(verify=verify, progress=logged_progress(), at_step=hook)
    # A log line written mid-bar would be overwritten by the next redraw: they wait, and
    # are written once the bar is done.
    with (
        held_logs(),
        click.progressbar(
            length=max(opened.projector.head(), 1), file=sys.stderr, label="rebuilding"
        ) as bar,
    ):
        done = [0]

        def progress(position: int, target: int) -> None:
            bar.update(position - done[0])
            done[0] = position

        return opened.rebuild(verify=verify, progress=progress, at_step=hook)
