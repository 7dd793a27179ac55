"""``market-ledger task ...``: the tasks users asked for (install, uninstall, upgrade, cancel,
clone), as the task views hold them."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import click
from sqlalchemy.engine import Connection

from market_ledger.adapters.cli.support import describe_store, print_json
from market_ledger.projections import task_reads

#: the fields ``task show`` prints, in this order
_SHOWN = task_reads.TASK_FIELDS


def add_task_commands(
    cli: click.Group,
    caught_up: Callable[[], AbstractContextManager[tuple[Any, Connection]]],
) -> None:
    """Add the ``task`` group; ``caught_up`` opens the store as the other commands do."""

    @cli.group(help="The tasks users asked for: list them, show one.")
    def task() -> None:
        pass

    @task.command("list", help="List tasks, newest first.")
    @click.option("--user", "user_name", default=None, help="Only this user's tasks.")
    @click.option("--json", "as_json", is_flag=True)
    def task_list(user_name: str | None, as_json: bool) -> None:
        with caught_up() as (opened, conn):
            tasks = task_reads.list_tasks(conn, opened.tables, user=user_name)
        if as_json:
            print_json(tasks)
            return
        for item in tasks:
            ended = f" ({item['outcome']})" if item["outcome"] else ""
            error = f"\t{item['error']}" if item["error"] else ""
            click.echo(
                f"{item['task_id']}\t{item['kind']:<9}\t{item['user']}\t{item['app_name']}\t"
                f"{item['status']}{ended}\t{item['created_at']}{error}"
            )
        click.echo(f"{len(tasks)} task(s)")

    @task.command("show", help="Show one task.")
    @click.argument("task_id")
    @click.option("--json", "as_json", is_flag=True)
    def task_show(task_id: str, as_json: bool) -> None:
        with caught_up() as (opened, conn):
            shown = task_reads.get_task(conn, opened.tables, task_id)
            if shown is None:
                raise click.ClickException(
                    f"unknown task {task_id!r}: not in {describe_store(opened.settings)}"
                )
        if as_json:
            print_json(shown)
            return
        for key in _SHOWN:
            value = shown[key]
            click.echo(f"{key + ':':<14}{'-' if value is None or value == '' else value}")
