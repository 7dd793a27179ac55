"""Configuration, read from the environment with the replaced system's variable names.

Every setting has a default that runs the embedded service on one machine; a value that
cannot be used is refused at start with an error that names the variable and the value.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import attrs

from market_ledger.domain.redaction import redact_url
from market_ledger.projections.checkpoints import DEFAULT_EVERY

DEFAULT_DATABASE_URL = "sqlite:///var/ledger.db"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")


class ConfigurationError(ValueError):
    pass


def _number(env: Mapping[str, str], name: str, default: float, *, minimum: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not a number") from None
    if value < minimum:
        raise ConfigurationError(f"{name}={raw!r} must be at least {minimum:g}")
    return value


def _integer(env: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    value = _number(env, name, default, minimum=minimum)
    if value != int(value):
        raise ConfigurationError(f"{name}={env[name]!r} must be a whole number")
    return int(value)


def _nats_url(env: Mapping[str, str]) -> str | None:
    """``NATS_URL``, else ``nats://NATS_HOST:NATS_PORT``; ``NATS_USERNAME`` and
    ``NATS_PASSWORD``, when both are set, are the credentials of a URL that carries none
    (the URL is the one place the connection reads them from, and every log shows it
    without them)."""
    url = env.get("NATS_URL", "").strip()
    if not url:
        host = env.get("NATS_HOST", "").strip()
        if not host:
            return None
        port = _integer(env, "NATS_PORT", 4222, minimum=1)
        url = f"nats://{host}:{port}"
    username = env.get("NATS_USERNAME", "")
    password = env.get("NATS_PASSWORD", "")
    if not (username and password):
        return url
    parts = urlsplit(url if "://" in url else f"nats://{url}")
    if parts.username or parts.password:
        return url  # the URL's own credentials win
    userinfo = f"{quote(username, safe='')}:{quote(password, safe='')}"
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{parts.netloc}"))


def log_level(env: Mapping[str, str]) -> int:
    """``LEDGER_LOG_LEVEL`` (default INFO), refused unless it is a level's name."""
    raw = env.get("LEDGER_LOG_LEVEL", "").strip() or "INFO"
    if raw.upper() not in LOG_LEVELS:
        raise ConfigurationError(
            f"LEDGER_LOG_LEVEL={raw!r} is not a log level (one of {', '.join(LOG_LEVELS)})"
        )
    return int(logging.getLevelName(raw.upper()))


def log_format(env: Mapping[str, str]) -> str:
    """``LEDGER_LOG_FORMAT``: ``text`` (default) or ``json`` (one object per line)."""
    raw = env.get("LEDGER_LOG_FORMAT", "").strip() or "text"
    if raw.lower() not in LOG_FORMATS:
        raise ConfigurationError(
            f"LEDGER_LOG_FORMAT={raw!r} is not a log format (one of {', '.join(LOG_FORMATS)})"
        )
    return raw.lower()


def sqlite_file(database_url: str) -> Path | None:
    """The absolute path of a SQLite store (None for another database)."""
    if not database_url.startswith("sqlite:///"):
        return None
    path = database_url[len("sqlite:///") :]
    return None if path in ("", ":memory:") else Path(path).absolute()


def default_credentials_dir(database_url: str) -> str:
    """Beside a SQLite store; ``var/credentials`` otherwise."""
    store = sqlite_file(database_url)
    return str(store.parent / "credentials") if store else "var/credentials"


def _url_repr(url: str | None) -> str:
    """How a URL shows in the settings' text: without its credentials."""
    return repr(None if url is None else redact_url(url))


@attrs.frozen
class Settings:
    database_url: str = attrs.field(default=DEFAULT_DATABASE_URL, repr=_url_repr)
    chart_repo_host: str | None = None
    app_service_host: str | None = None
    app_service_port: int = 80
    nats_url: str | None = attrs.field(default=None, repr=_url_repr)
    subject_app_state: str = "os.application.*"
    subject_user_state: str | None = None
    subject_market_state: str = "os.market"
    pipeline_interval: float = 30.0
    sync_interval: float = 300.0
    hydration_concurrency: int = 5
    retry_base_seconds: float = 1.0
    retry_max_seconds: float = 900.0
    retry_max_attempts: int = 10
    user_list: tuple[str, ...] = ()
    #: pause between detail requests to a remote market (the replaced system's politeness, 200 ms)
    detail_batch_pause: float = 0.2
    #: the JetStream stream and durable consumer of the intake (None: derived from the subjects)
    nats_intake_stream: str | None = None
    nats_intake_durable: str | None = None
    #: chart-repo as app-service reaches it, sent as ``repoUrl`` with each install, clone and
    #: upgrade (see :attr:`repo_url`)
    repo_url_host: str | None = None
    repo_url_port: int | None = None
    #: seconds one call to app-service for a task may take before its answer is unknown
    task_http_timeout: float = 60.0
    #: app-service calls of tasks in flight at once (one per app at a time)
    task_concurrency: int = 8
    #: seconds an accepted task may wait for its outcome before it is timed out
    task_deadline: float = 1800.0
    #: seconds a ``"sync": true`` task request waits for app-service's answer before 202
    task_sync_wait: float = 60.0
    #: seconds between looks at deadlines, unanswered calls and long-accepted tasks
    task_sweep_interval: float = 30.0
    #: this instance's name in the role leases (default ``hostname:pid``)
    instance_id: str = attrs.field(factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    #: seconds a role's lease lasts unless renewed, and between tries to take a free role
    lease_ttl: float = 6.0
    lease_retry: float = 1.0
    #: positions between two checkpoints of new views (time travel reads at most that many)
    checkpoint_every: int = DEFAULT_EVERY
    #: the folder of the market sources' credentials (see market_ledger.adapters.market.credentials)
    credentials_dir: str = attrs.field()

    @credentials_dir.default
    def _credentials_beside_the_store(self) -> str:
        return default_credentials_dir(self.database_url)

    @property
    def repo_url(self) -> str | None:
        """``http://REPO_URL_HOST:REPO_URL_PORT/`` (no port: ``http://REPO_URL_HOST/``);
        None when the host is not set."""
        if self.repo_url_host is None:
            return None
        port = f":{self.repo_url_port}" if self.repo_url_port is not None else ""
        return f"http://{self.repo_url_host}{port}/"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        database_url = env.get("LEDGER_DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL
        if not database_url.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ConfigurationError(
                f"LEDGER_DATABASE_URL={redact_url(database_url)!r}: expected sqlite:///PATH or "
                "postgresql://USER@HOST:PORT/DB"
            )
        base = _number(env, "LEDGER_RETRY_BASE_SECONDS", 1.0, minimum=0.001)
        cap = _number(env, "LEDGER_RETRY_MAX_SECONDS", 900.0, minimum=0.001)
        if cap < base:
            raise ConfigurationError(
                f"LEDGER_RETRY_MAX_SECONDS={cap:g} is below LEDGER_RETRY_BASE_SECONDS={base:g}"
            )
        users = tuple(u.strip() for u in env.get("USER_LIST", "").split(",") if u.strip())
        return cls(
            database_url=database_url,
            chart_repo_host=env.get("CHART_REPO_SERVICE_HOST", "").strip() or None,
            app_service_host=env.get("APP_SERVICE_SERVICE_HOST", "").strip() or None,
            app_service_port=_integer(env, "APP_SERVICE_SERVICE_PORT", 80, minimum=1),
            nats_url=_nats_url(env),
            subject_app_state=env.get("NATS_SUBJECT_SYSTEM_APP_STATE", "").strip()
            or "os.application.*",
            subject_user_state=env.get("NATS_SUBJECT_SYSTEM_USER_STATE", "").strip() or None,
            subject_market_state=env.get("NATS_SUBJECT_SYSTEM_MARKET_STATE", "").strip()
            or "os.market",
            pipeline_interval=_number(env, "PIPELINE_INTERVAL", 30.0, minimum=0.01),
            sync_interval=_number(env, "SYNCER_SYNC_INTERVAL", 300.0, minimum=0.0),
            hydration_concurrency=_integer(env, "PIPELINE_HYDRATION_CONCURRENCY", 5, minimum=1),
            retry_base_seconds=base,
            retry_max_seconds=cap,
            retry_max_attempts=_integer(env, "LEDGER_RETRY_MAX_ATTEMPTS", 10, minimum=1),
            user_list=users,
            detail_batch_pause=_number(env, "LEDGER_DETAIL_BATCH_PAUSE_SECONDS", 0.2, minimum=0.0),
            nats_intake_stream=_jetstream_name(env, "NATS_INTAKE_STREAM"),
            nats_intake_durable=_jetstream_name(env, "NATS_INTAKE_DURABLE"),
            repo_url_host=env.get("REPO_URL_HOST", "").strip() or None,
            repo_url_port=_integer(env, "REPO_URL_PORT", 0, minimum=1) or None,
            task_http_timeout=_number(env, "LEDGER_TASK_HTTP_TIMEOUT", 60.0, minimum=0.001),
            task_concurrency=_integer(env, "LEDGER_TASK_CONCURRENCY", 8, minimum=1),
            task_deadline=_number(env, "LEDGER_TASK_DEADLINE", 1800.0, minimum=0.001),
            task_sync_wait=_number(env, "LEDGER_TASK_SYNC_WAIT", 60.0, minimum=0.0),
            task_sweep_interval=_number(env, "LEDGER_TASK_SWEEP_INTERVAL", 30.0, minimum=0.01),
            instance_id=_instance_id(env),
            lease_ttl=_number(env, "LEDGER_LEASE_TTL", 6.0, minimum=0.3),
            lease_retry=_number(env, "LEDGER_LEASE_RETRY", 1.0, minimum=0.01),
            checkpoint_every=_integer(env, "LEDGER_CHECKPOINT_EVERY", DEFAULT_EVERY, minimum=1),
            credentials_dir=env.get("LEDGER_CREDENTIALS_DIR", "").strip()
            or default_credentials_dir(database_url),
        )


def _instance_id(env: Mapping[str, str]) -> str:
    given = env.get("LEDGER_INSTANCE_ID", "").strip()
    if not given:
        return f"{socket.gethostname()}:{os.getpid()}"
    if len(given) > 255 or not given.isprintable():
        raise ConfigurationError("LEDGER_INSTANCE_ID must be at most 255 printable characters")
    return given


#: the longest stream or consumer name taken (the server stores each under a folder of its name)
MAX_JETSTREAM_NAME = 200


def _jetstream_name(env: Mapping[str, str], name: str) -> str | None:
    """A JetStream stream or consumer name: no whitespace, ``.``, ``*``, ``>``, slashes or
    control characters (the server refuses them, or reads them as subject tokens)."""
    raw = env.get(name, "").strip()
    if not raw:
        return None
    bad = sorted({ch for ch in raw if ch in ".*>/\\" or ch.isspace() or not ch.isprintable()})
    if bad:
        shown = " ".join(repr(ch) for ch in bad)
        raise ConfigurationError(
            f"{name}={raw!r}: a JetStream name may not contain {shown} "
            "(no whitespace, '.', '*', '>', slashes or control characters)"
        )
    if len(raw) > MAX_JETSTREAM_NAME:
        raise ConfigurationError(f"{name}: longer than {MAX_JETSTREAM_NAME} characters")
    return raw


#: Every environment variable the program reads; a test keeps this list and the code in step,
#: and checks that a deployment (the compose file) sets no variable outside it.
ENVIRONMENT_VARIABLES = (
    "LEDGER_DATABASE_URL",
    "CHART_REPO_SERVICE_HOST",
    "APP_SERVICE_SERVICE_HOST",
    "APP_SERVICE_SERVICE_PORT",
    "NATS_URL",
    "NATS_HOST",
    "NATS_PORT",
    "NATS_USERNAME",
    "NATS_PASSWORD",
    "NATS_SUBJECT_SYSTEM_APP_STATE",
    "NATS_SUBJECT_SYSTEM_USER_STATE",
    "NATS_SUBJECT_SYSTEM_MARKET_STATE",
    "PIPELINE_INTERVAL",
    "SYNCER_SYNC_INTERVAL",
    "PIPELINE_HYDRATION_CONCURRENCY",
    "LEDGER_RETRY_BASE_SECONDS",
    "LEDGER_RETRY_MAX_SECONDS",
    "LEDGER_RETRY_MAX_ATTEMPTS",
    "LEDGER_DETAIL_BATCH_PAUSE_SECONDS",
    "USER_LIST",
    "LEDGER_LOG_LEVEL",
    "LEDGER_LOG_FORMAT",
    "LEDGER_CREDENTIALS_DIR",
    "NATS_INTAKE_STREAM",
    "NATS_INTAKE_DURABLE",
    "REPO_URL_HOST",
    "REPO_URL_PORT",
    "LEDGER_TASK_HTTP_TIMEOUT",
    "LEDGER_TASK_CONCURRENCY",
    "LEDGER_TASK_DEADLINE",
    "LEDGER_TASK_SYNC_WAIT",
    "LEDGER_TASK_SWEEP_INTERVAL",
    "LEDGER_INSTANCE_ID",
    "LEDGER_LEASE_TTL",
    "LEDGER_LEASE_RETRY",
    "LEDGER_CHECKPOINT_EVERY",
    "LEDGER_REBUILD_TEST_KILL_AT",
    "LEDGER_REBUILD_TEST_PAUSE_AT",
)
