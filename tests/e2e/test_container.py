"""The container: the Dockerfile and compose.yaml say only what the program understands.

There is no container engine here to build or run them; these tests read the files (the
Dockerfile is also linted by hadolint in ``make lint``).
"""

from __future__ import annotations

import ast
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from market_ledger.adapters.cli.commands import build_cli
from market_ledger.adapters.config import ENVIRONMENT_VARIABLES, Settings
from market_ledger.adapters.event_store.settings import sqlite_path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("market_ledger",)
ENV_NAME = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$")


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    return loaded


def ledger_services(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that run the ledger's image (built from this folder)."""
    return {
        name: service
        for name, service in config["services"].items()
        if "build" in service or str(service.get("image", "")).startswith("market-ledger")
    }


def environment_names(service: dict[str, Any]) -> set[str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):  # the `- NAME=value` form
        return {item.split("=", 1)[0] for item in environment}
    return set(environment)


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(instruction, arguments) of the Dockerfile, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


class EnvironmentReads(ast.NodeVisitor):
    """The variable names a module reads from the environment: ``env.get("X")``,
    ``os.environ.get("X")``, ``os.environ["X"]``, ``os.getenv("X")``, and helpers called
    with the mapping and a name (``_number(env, "X", ...)``)."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    @staticmethod
    def _is_environment(node: ast.AST) -> bool:
        if isinstance(node, ast.Name):
            return node.id == "env"
        return isinstance(node, ast.Attribute) and node.attr == "environ"

    def _constants(self, nodes: list[ast.expr]) -> None:
        for node in nodes:
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and ENV_NAME.match(node.value)
            ):
                self.names.add(node.value)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in ("get", "pop"):
            if self._is_environment(func.value):
                self._constants(node.args[:1])
        elif isinstance(func, ast.Attribute) and func.attr == "getenv":
            self._constants(node.args[:1])
        elif any(self._is_environment(arg) for arg in node.args):
            self._constants(node.args)
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if isinstance(node.ctx, ast.Load) and self._is_environment(node.value):
            self._constants([node.slice])
        self.generic_visit(node)


def test_given_the_program_then_every_variable_it_reads_is_in_the_known_list() -> None:
    reads = EnvironmentReads()
    for package in PACKAGES:
        for module in sorted((ROOT / package).rglob("*.py")):
            reads.visit(ast.parse(module.read_text(encoding="utf-8")))
    assert "LEDGER_DATABASE_URL" in reads.names, "the scan found nothing: it is broken"
    known = set(ENVIRONMENT_VARIABLES)
    assert reads.names == known, (
        "read but not in market_ledger.adapters.config.ENVIRONMENT_VARIABLES: "
        f"{sorted(reads.names - known)}; "
        f"listed there but never read: {sorted(known - reads.names)}"
    )


def test_given_the_compose_file_then_every_variable_it_sets_for_the_ledger_is_known() -> None:
    services = ledger_services(compose())
    assert {"migrate", "ledger"} <= set(services)
    for name, service in services.items():
        unknown = environment_names(service) - set(ENVIRONMENT_VARIABLES)
        assert not unknown, f"compose service {name} sets variables the ledger ignores: {unknown}"


def test_given_the_compose_file_then_the_service_starts_after_a_one_shot_migration() -> None:
    config = compose()
    services = config["services"]
    migrate, ledger = services["migrate"], services["ledger"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert ledger["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert ledger["depends_on"]["nats"]["condition"] == "service_healthy"
    # both on PostgreSQL and NATS, with JetStream on
    for service in (migrate, ledger):
        assert service["environment"]["LEDGER_DATABASE_URL"].startswith("postgresql://")
        assert "@postgres:5432/" in service["environment"]["LEDGER_DATABASE_URL"]
        assert service["environment"]["NATS_URL"] == "nats://nats:4222"
    assert "-js" in services["nats"]["command"]
    # the migration is a command of the program, and so is what the service runs

    commands = set(build_cli(lambda: None, runtime=object()).commands)
    assert migrate["command"][0] in commands and ledger["command"][0] == "serve"


def test_given_the_dockerfile_then_its_default_store_is_a_sqlite_file_on_the_volume() -> None:
    instructions = dockerfile_instructions()
    env: dict[str, str] = {}
    for instruction, arguments in instructions:
        if instruction == "ENV":
            env.update(item.split("=", 1) for item in shlex.split(arguments))
    (volume,) = [ast.literal_eval(a)[0] for i, a in instructions if i == "VOLUME"]
    ledger_env = {name for name in env if name.startswith(("LEDGER_", "NATS_", "PIPELINE_"))}
    assert ledger_env <= set(ENVIRONMENT_VARIABLES)
    settings = Settings.from_env({"LEDGER_DATABASE_URL": env["LEDGER_DATABASE_URL"]})
    assert Path(sqlite_path(settings.database_url)).parent == Path(volume)


def test_given_the_dockerfile_then_it_is_multi_stage_unprivileged_and_health_checked() -> None:
    instructions = dockerfile_instructions()
    stages = [arguments for instruction, arguments in instructions if instruction == "FROM"]
    assert len(stages) >= 2 and all(s.startswith("python:3.11-slim") for s in stages)
    users = [arguments for instruction, arguments in instructions if instruction == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    (healthcheck,) = [a for i, a in instructions if i == "HEALTHCHECK"]
    assert "/healthz" in healthcheck
    (entrypoint,) = [ast.literal_eval(a) for i, a in instructions if i == "ENTRYPOINT"]
    (command,) = [ast.literal_eval(a) for i, a in instructions if i == "CMD"]
    assert [*entrypoint, *command] == ["market-ledger", "serve", "--http", "0.0.0.0:8080"]


def test_given_the_dockerfile_when_hadolint_reads_it_then_it_finds_nothing() -> None:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "hadolint"), "--no-color", "Dockerfile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
