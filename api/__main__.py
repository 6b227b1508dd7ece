"""The gateway process: ``python -m api``."""

from __future__ import annotations

import asyncio

import structlog

from api.app import create_app
from api.http_server import serve
from config.logging import configure_logging
from config.settings import exit_on_bad_settings
from config.telemetry import configure_tracing


def main() -> None:
    settings = exit_on_bad_settings()
    configure_logging(settings, "api")
    configure_tracing(settings, "api")
    structlog.get_logger("api").info("gateway_starting", host=settings.http_host, port=settings.http_port)
    # SIGINT/SIGTERM: stop accepting, finish in-flight requests (5 s at most), run the cleanups.
    asyncio.run(serve(create_app(settings), settings.http_host, settings.http_port))


if __name__ == "__main__":
    main()
