"""The process's logging: level and format from the environment, secrets redacted, quiet libraries.

- ``LEDGER_LOG_LEVEL`` (default INFO) and ``LEDGER_LOG_FORMAT`` (``text``, or ``json``: one
  object per line with time, level, logger, message and the exception text);
- every record is redacted (:func:`market_ledger.domain.redaction.redact_text`) before it is
written, so a
  URL with credentials never reaches a log line, whichever library logged it;
- httpx and httpcore log every request at INFO: they are kept at WARNING, or a first cycle
  would write thousands of lines (with the query of every request in them).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import IO

from market_ledger.adapters.config import log_format, log_level
from market_ledger.domain.redaction import redact_text

#: libraries whose INFO lines are one per request
QUIET_LOGGERS = ("httpx", "httpcore", "alembic")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class RedactSecrets(logging.Filter):
    """Redacts the message of every record it sees (the record is changed in place)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: leave it to the handler to report
            return True
        redacted = redact_text(message)
        if redacted != message or record.args:
            record.msg = redacted
            record.args = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time``, ``level``, ``logger``, ``message`` (``exception``)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, str] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact_text(record.getMessage()),
        }
        if record.exc_info:
            entry["exception"] = redact_text(self.formatException(record.exc_info))
        elif record.exc_text:
            entry["exception"] = redact_text(record.exc_text)
        return json.dumps(entry, ensure_ascii=False)


class RedactingFormatter(logging.Formatter):
    """The text format, with the exception text (tracebacks carry URLs too) redacted."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))


def redact_library_logs() -> None:
    """Attach the redaction to the loggers of the HTTP libraries themselves.

    Their records are redacted even where no handler of ours writes them (a test's log
    capture, an embedding application's own handlers).
    """
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())


def configure_logging(env: Mapping[str, str], stream: IO[str] | None = None) -> None:
    """Set up the root logger from the environment; raises ConfigurationError on bad values."""
    level = log_level(env)
    formatter: logging.Formatter = (
        JsonFormatter() if log_format(env) == "json" else RedactingFormatter(TEXT_FORMAT)
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(RedactSecrets())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    redact_library_logs()
