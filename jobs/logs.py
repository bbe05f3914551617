"""Log lines (SPEC §9): stderr, one line per event; `--log-format json` for log collectors.

Every line written while a run is being worked on carries its RUN_ID, from a context variable
that the coordinator sets, so that a `nightly` over several campaigns can be split per run.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

from jobs.terminal import terminal_safe

__all__ = [
    "JsonFormatter",
    "RunIdFilter",
    "TextFormatter",
    "configure_logging",
    "current_run_id",
    "run_context",
]

current_run_id: ContextVar[str | None] = ContextVar("swmail_run_id", default=None)

TEXT_FORMAT = "%(levelname)s %(name)s: %(run_prefix)s%(message)s"


@contextmanager
def run_context(run_id: str) -> Iterator[None]:
    """Tag every log line inside the block with `run_id`."""
    token = current_run_id.set(run_id)
    try:
        yield
    finally:
        current_run_id.reset(token)


class RunIdFilter(logging.Filter):
    """Adds `run_id` (and a text prefix) to every record from the context variable."""

    def filter(self, record: logging.LogRecord) -> bool:
        run_id = current_run_id.get()
        record.run_id = run_id
        record.run_prefix = f"[{run_id}] " if run_id else ""
        return True


class TextFormatter(logging.Formatter):
    """Log lines go to a terminal too (stderr): the same escaping as every other output."""

    def format(self, record: logging.LogRecord) -> str:
        return terminal_safe(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, run_id (and the traceback)."""

    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "run_id": getattr(record, "run_id", None),
        }
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        # parses to the same values, with no raw C1 or bidi control for a terminal to act on
        return terminal_safe(json.dumps(data, ensure_ascii=False), json=True)


def configure_logging(level: int, log_format: str) -> None:
    """Send log records to stderr as text lines or JSON lines, each with its run_id."""
    handler = logging.StreamHandler()
    handler.addFilter(RunIdFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Alembic announces its plugins and dialect at INFO on every ledger check: debug only
    logging.getLogger("alembic").setLevel(max(level, logging.WARNING))
