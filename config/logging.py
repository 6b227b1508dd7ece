"""structlog set-up shared by every process: console lines in the sandbox, JSON in production."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from functools import lru_cache
from typing import Any

import structlog

from config.settings import Settings
from config.telemetry import trace_ids

_SECRET_KEYS = re.compile(r"(authorization|api_key|secret|password|token)", re.IGNORECASE)


@lru_cache(maxsize=4096)
def _secret_name(key: str) -> bool:
    # Field names come from code, a few dozen of them: each is searched once, not on every line
    # (a dozen regex searches per request log line otherwise).
    return _SECRET_KEYS.search(key) is not None


def redact_secrets(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Last line of defence: whatever a caller binds under a secret-looking name never reaches the log."""
    for key in list(event):
        if _secret_name(key):
            event[key] = "[redacted]"
    return event


def add_trace_ids(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """``trace_id`` and ``span_id`` of the span the line is written in (docs/operations.md#traces), so a
    log line leads to its trace and a trace to its log lines; nothing outside a trace."""
    for key, value in trace_ids().items():
        event.setdefault(key, value)
    return event


def configure_logging(settings: Settings, process: str) -> None:
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if settings.log_format == "json"
        # Plain tracebacks: the default (rich) one prints every frame's local variables, keys included.
        else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            add_trace_ids,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(process=process, env=settings.env)
    # Libraries (temporalio, aiohttp, sqlalchemy) log through stdlib logging: keep their warnings.
    logging.basicConfig(level=logging.WARNING, stream=sys.stdout, format="%(levelname)s %(name)s: %(message)s")
