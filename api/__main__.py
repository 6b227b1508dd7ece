"""The gateway process: ``python -m api``."""

from __future__ import annotations

import structlog
from aiohttp import web

from api.app import create_app
from config.logging import configure_logging
from config.settings import exit_on_bad_settings


def main() -> None:
    settings = exit_on_bad_settings()
    configure_logging(settings, "api")
    log = structlog.get_logger("api")
    log.info("gateway_starting", host=settings.http_host, port=settings.http_port)
    # run_app handles SIGINT/SIGTERM: stops accepting, finishes in-flight requests, runs cleanups.
    # It calls ``print`` once the socket listens: operators (and the launcher) learn it is ready.
    web.run_app(
        create_app(settings), host=settings.http_host, port=settings.http_port,
        print=lambda _banner: log.info("gateway_listening", host=settings.http_host, port=settings.http_port),
        access_log=None, shutdown_timeout=5,
    )


if __name__ == "__main__":
    main()
