"""The ``market-ledger`` command (its commands and output shapes are a public contract).

The CLI receives an ``open_ledger`` function from the composition root, so that it knows
nothing of how the store, views or pipeline are wired.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import Any, Protocol

import click
import sqlalchemy as sa
from eventsourcing.persistence import PersistenceError
from sqlalchemy.engine import Connection

from market_ledger.adapters.cli.intake_commands import add_intake_commands
from market_ledger.adapters.cli.rebuild_command import add_rebuild_command
from market_ledger.adapters.cli.support import (
    HOST_PORT,
    ROLES,
    describe_store,
    ever_registered,
    every_source_failed,
    print_json,
    store_of,
)
from market_ledger.adapters.cli.task_commands import add_task_commands
from market_ledger.adapters.cli.time_travel_options import travel_options, travelled, when
from market_ledger.adapters.config import Settings
from market_ledger.adapters.market.credentials import CredentialStore
from market_ledger.domain.decider import CommandRejected
from market_ledger.domain.market_source import ConfigureSource, RemoveSource
from market_ledger.domain.redaction import redact_text, split_credentials
from market_ledger.domain.user import RemoveUser
from market_ledger.projections import queries
from market_ledger.projections.projector import Projector
from market_ledger.projections.rebuild import RebuildReport
from market_ledger.projections.schema import ViewTables
from market_ledger.service.application import LedgerApplication
from market_ledger.service.handler import CommandHandler
from market_ledger.service.parked_renders import NotParked, ParkedInSeveral, retry_parked_render
from market_ledger.service.users import register_user


class LedgerServices(Protocol):
    """What the commands need from the wired service."""

    settings: Settings
    handler: CommandHandler
    tables: ViewTables
    projector: Projector
    application: LedgerApplication

    def read(self) -> AbstractContextManager[Connection]: ...

    def catch_up(self) -> int: ...

    def rebuild(
        self,
        *,
        verify: bool = False,
        progress: Callable[[int, int], None] | None = None,
        at_step: Callable[[str], None] | None = None,
    ) -> RebuildReport: ...

    def close(self) -> None: ...


class Runtime(Protocol):
    """The long-running parts, wired by the composition root."""

    def sync_once(self, ledger: Any) -> dict[str, Any]: ...

    def serve(self, ledger: Any, http: str | None) -> None: ...


def _store_failure(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return "the store failed: " + redact_text(lines[0] if lines else type(error).__name__)


def build_cli(
    open_ledger: Callable[[], LedgerServices], runtime: Runtime | None = None
) -> click.Group:
    @contextmanager
    def ledger() -> Iterator[LedgerServices]:
        try:
            opened = open_ledger()
        except ValueError as error:  # configuration errors name the variable
            raise click.ClickException(str(error)) from error
        except (PersistenceError, sa.exc.OperationalError, sa.exc.InterfaceError) as error:
            raise click.ClickException(_store_failure(error)) from error
        try:
            yield opened
        except CommandRejected as error:
            raise click.ClickException(str(error)) from error
        except queries.UnknownUser as error:
            # Say which store was read: run from another folder, the default store is
            # another (empty) file.
            raise click.ClickException(
                f"{error}: not registered in {describe_store(opened.settings)}"
            ) from error
        except (PersistenceError, sa.exc.OperationalError, sa.exc.InterfaceError) as error:
            raise click.ClickException(_store_failure(error)) from error
        finally:
            opened.close()

    @contextmanager
    def caught_up() -> Iterator[tuple[LedgerServices, Connection]]:
        with ledger() as opened:
            opened.catch_up()  # reads see their writes
            with opened.read() as conn:
                yield opened, conn

    @click.group(help="The app-catalog ledger of the Olares market.")
    def cli() -> None:
        pass

    # --- sources ---------------------------------------------------------------------------

    @cli.group(help="Configure market sources.")
    def source() -> None:
        pass

    @source.command("add", help="Add (or reconfigure) a market source.")
    @click.argument("source_id")
    @click.option("--type", "source_type", type=click.Choice(["remote", "local"]), required=True)
    @click.option("--url", required=True, help="https://... for a remote market, file://... local")
    @click.option("--priority", type=int, default=0, show_default=True)
    @click.option("--inactive", is_flag=True, help="Configure it without syncing it.")
    def source_add(
        source_id: str, source_type: str, url: str, priority: int, inactive: bool
    ) -> None:
        # The log gets the URL without its credentials; they go to the source's own file.
        public_url, credentials = split_credentials(url)
        with ledger() as opened:
            outcome = opened.handler.execute(
                ConfigureSource(source_id, source_type, public_url, priority, not inactive)
            )
            kept = (
                CredentialStore(opened.settings.credentials_dir).save(source_id, credentials)
                if credentials
                else None
            )
        said = "configured" if outcome.events else "unchanged"
        if kept is not None:
            said += f"; its credentials are kept in {kept}, not in the log"
        click.echo(f"source {source_id}: {said}")

    @source.command("remove", help="Remove a market source.")
    @click.argument("source_id")
    def source_remove(source_id: str) -> None:
        with ledger() as opened:
            opened.handler.execute(RemoveSource(source_id))
            CredentialStore(opened.settings.credentials_dir).forget(source_id)
        click.echo(f"source {source_id}: removed")

    @source.command("list", help="List the configured sources.")
    @click.option("--json", "as_json", is_flag=True)
    def source_list(as_json: bool) -> None:
        with caught_up() as (opened, conn):
            rows = queries.sources(conn, opened.tables)
        if as_json:
            print_json(rows)
            return
        for row in rows:
            state = "active" if row["active"] else "inactive"
            click.echo(
                f"{row['id']}\t{row['type']}\t{row['url']}\tpriority {row['priority']}\t{state}"
            )

    # --- users -----------------------------------------------------------------------------

    @cli.group(help="Register users.")
    def user() -> None:
        pass

    @user.command("add", help="Register a user (or change their role or zone).")
    @click.argument("name")
    @click.option("--role", type=click.Choice(ROLES), default="normal", show_default=True)
    @click.option("--zone", default="", help="The user's zone (domain).")
    def user_add(name: str, role: str, zone: str) -> None:
        with ledger() as opened:
            changed = register_user(opened.handler, name, role, zone)
        click.echo(f"user {name}: {'registered' if changed else 'unchanged'}")

    @user.command("remove", help="Remove a user.")
    @click.argument("name")
    def user_remove(name: str) -> None:
        with ledger() as opened:
            opened.handler.execute(RemoveUser(name))
        click.echo(f"user {name}: removed")

    @user.command("list", help="List the registered users.")
    @click.option("--json", "as_json", is_flag=True)
    def user_list(as_json: bool) -> None:
        with caught_up() as (opened, conn):
            rows = queries.users(conn, opened.tables)
        if as_json:
            print_json(rows)
            return
        for row in rows:
            click.echo(f"{row['name']}\t{row['role']}\t{row['zone']}\t{row['hash']}")

    # --- reading ---------------------------------------------------------------------------

    @cli.command(help="What a user sees now, or saw at a position of the log or a moment.")
    @click.option("--user", "user_name", required=True)
    @click.option("--json", "as_json", is_flag=True)
    @travel_options
    def catalog(
        user_name: str, as_json: bool, position: int | None, moment: datetime | None
    ) -> None:
        view = travelled(ledger, user_name, position, moment)
        if view is None:
            with caught_up() as (opened, conn):
                view = queries.catalog(conn, opened.tables, user_name)
        if as_json:
            print_json(view)
            return
        click.echo(f"user {view['user']}  hash {view['hash']}{when(view)}")
        for source_id, shown in view["sources"].items():
            click.echo(f"{source_id} ({shown['type']}): {len(shown['apps'])} apps")
            for app in shown["apps"]:
                extra = [f"pending {app['pending_version']}"] if app["pending_version"] else []
                if app["installed_state"]:
                    extra.append(f"installed: {app['installed_state']}")
                if app["labels"]:
                    extra.append("labels: " + ",".join(app["labels"]))
                click.echo(
                    f"  {app['app_id']:<28} {app['status']:<9} {app['latest_version'] or '-':<10}"
                    + ("  " + "; ".join(extra) if extra else "")
                )

    @cli.command("hash", help="The user's content hash (now, or at a position or a moment).")
    @click.option("--user", "user_name", required=True)
    @travel_options
    def hash_(user_name: str, position: int | None, moment: datetime | None) -> None:
        view = travelled(ledger, user_name, position, moment)
        if view is not None:
            click.echo(view["hash"])
            return
        with caught_up() as (opened, conn):
            click.echo(queries.stored_hash(conn, opened.tables, user_name))

    @cli.command(help="What happened to an app for a user, and when.")
    @click.option("--user", "user_name", required=True)
    @click.option("--app", required=True, help="The app id (or the installed app's name).")
    @click.option("--source", default=None)
    @click.option("--json", "as_json", is_flag=True)
    def history(user_name: str, app: str, source: str | None, as_json: bool) -> None:
        with caught_up() as (opened, conn):
            if not ever_registered(conn, opened.tables, user_name):
                raise click.ClickException(
                    f"unknown user {user_name!r}: never registered in "
                    f"{describe_store(opened.settings)}"
                )
            entries = queries.history(conn, opened.tables, user_name, app, source)
            if not entries:
                where = f" in source {source!r}" if source else ""
                raise click.ClickException(
                    f"unknown app {app!r} for user {user_name!r}{where}: it has no history"
                )
        if as_json:
            print_json(entries)
            return
        for entry in entries:
            details = {k: v for k, v in entry.items() if k not in ("position", "at", "event") and v}
            shown = " ".join(f"{k}={v}" for k, v in details.items())
            click.echo(f"{entry['position']:>8} {entry['at']} {entry['event']:<20} {shown}")

    @cli.command(help="Positions, projector lag, counts per status and parked renders.")
    @click.option("--json", "as_json", is_flag=True)
    def status(as_json: bool) -> None:
        with ledger() as opened, opened.read() as conn:
            report = queries.status(conn, opened.tables, opened.projector.head())
            report["store"] = store_of(opened.settings)
        if as_json:
            print_json(report)
            return
        click.echo(f"store {describe_store(opened.settings)}")
        click.echo(
            f"log head {report['log_head']}, views at {report['projector_position']} "
            f"(lag {report['projector_lag']})"
        )
        click.echo(f"users {report['users']}, sources {report['sources']}")
        counts = report["listings"]
        click.echo(
            "listings: "
            + ", ".join(f"{k} {v}" for k, v in counts.items())
            + f", delisted {report['delisted']}"
        )
        for feed, position in report["feeds"].items():
            click.echo(f"feed {feed}: consumed up to {position}")
        versions = report["views_version"]
        serving = "-" if versions["serving"] is None else versions["serving"]
        click.echo(
            f"views built by projection version {serving} (this code builds {versions['code']})"
        )
        rebuilding = report["rebuild"]
        if rebuilding["building"]:
            how = "running" if rebuilding["running"] else "left by a stopped rebuild"
            click.echo(
                f"rebuild: fresh views (version {rebuilding['version']}) at "
                f"{rebuilding['position']} of {rebuilding['target']} "
                f"({how}; the serving views are unchanged until the switch)"
            )
        click.echo(f"parked NATS messages: {report['parked_messages']}")
        click.echo(f"parked renders: {len(report['parked'])}")
        for item in report["parked"]:
            click.echo(
                f"  {item['user']} {item['source']} {item['app_id']} {item['version']} "
                f"after {item['attempts']} attempts: {item['step']}: {item['reason']}"
            )

    # --- operating -------------------------------------------------------------------------

    @cli.command(help="Retry a parked render.")
    @click.option("--user", "user_name", required=True)
    @click.option("--app", required=True)
    @click.option("--source", default=None, help="Needed when the app is parked in several.")
    def retry(user_name: str, app: str, source: str | None) -> None:
        with ledger() as opened:
            opened.catch_up()  # the parked list sees every write
            try:
                retried = retry_parked_render(opened, user_name, app, source)
            except NotParked as not_parked:
                raise click.ClickException(str(not_parked)) from None
            except ParkedInSeveral as several:
                raise click.ClickException(f"{several}: pass --source") from None
        click.echo(f"{app} for {user_name} in {retried.source}: back to pending")

    add_intake_commands(cli, ledger, caught_up)
    add_rebuild_command(cli, ledger)
    add_task_commands(cli, caught_up)

    if runtime is not None:

        @cli.command(help="Run exactly one full cycle, then exit.")
        @click.option("--once", is_flag=True, required=True, help="Required: one cycle.")
        def sync(once: bool) -> None:
            with ledger() as opened:
                summary = runtime.sync_once(opened)
            print_json(summary)
            failed = every_source_failed(summary)
            if failed:  # some sources working is a partial cycle; none is a cycle not done
                raise click.ClickException(failed)

        @cli.command(help="Run the service: cycles, NATS intake and notifications, read API.")
        @click.option(
            "--http", type=HOST_PORT, default="127.0.0.1:8080", show_default=True, help="HOST:PORT"
        )
        def serve(http: str) -> None:
            with ledger() as opened:
                runtime.serve(opened, http)

    return cli
