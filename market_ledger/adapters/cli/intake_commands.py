"""``market-ledger intake ...``: the NATS intake's parked messages, for the operator."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import click
from sqlalchemy.engine import Connection

from market_ledger.adapters.cli.support import print_json
from market_ledger.adapters.nats import parking


def add_intake_commands(
    cli: click.Group,
    ledger: Callable[[], AbstractContextManager[Any]],
    caught_up: Callable[[], AbstractContextManager[tuple[Any, Connection]]],
) -> None:
    """Add the ``intake`` group; ``ledger`` and ``caught_up`` open the store as the other
    commands do."""

    @cli.group(help="The NATS intake's parked messages: list, replay, discard.")
    def intake() -> None:
        pass

    @intake.command("parked", help="List the messages the intake parked.")
    @click.option("--json", "as_json", is_flag=True)
    @click.option("--all", "include_resolved", is_flag=True, help="Replayed and discarded too.")
    def intake_parked(as_json: bool, include_resolved: bool) -> None:
        with caught_up() as (opened, _conn):
            messages = parking.list_parked(opened, include_resolved=include_resolved)
        if as_json:
            print_json(messages)
            return
        for item in messages:
            click.echo(
                f"{item['id']}\t{item['status']}\t{item['kind']}\t{item['subject']}\t"
                f"{item['parked_at']}\t{item['failure']}: {item['reason']}"
            )
        click.echo(f"{len(messages)} message(s)")

    @intake.command("replay", help="Parse a parked message again and take it in.")
    @click.argument("message_id")
    def intake_replay(message_id: str) -> None:
        with caught_up() as (opened, _conn):
            try:
                result = parking.replay(opened, message_id)
            except (parking.UnknownParkedMessage, parking.ReplayFailed) as error:
                raise click.ClickException(str(error)) from error
        click.echo(f"message {message_id}: replayed, {result['outcome']} ({result['detail']})")

    @intake.command("discard", help="Give up on a parked message (it stays on the record).")
    @click.argument("message_id")
    def intake_discard(message_id: str) -> None:
        with ledger() as opened:
            try:
                parking.discard(opened, message_id)
            except parking.UnknownParkedMessage as error:
                raise click.ClickException(str(error)) from error
        click.echo(f"message {message_id}: discarded")
