"""The gateway's HTTP server: aiohttp's own, with slow clients cut off and unparseable requests
answered and logged without a byte of what they carried.

aiohttp's request handler answers a request it cannot parse (a control character in a header, a
line over 8 KB) with the parser's message, which quotes the offending line, and logs that line with
a traceback: for ``Authorization: Bearer …`` that is the whole API key, in the log and in the
answer. :class:`QuietRequestHandler` answers such a request with a plain problem document and logs
only its status and the error's class. :class:`GatewayRunner` serves the application with it.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import structlog
from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from api.problems import Problem
from config.settings import Settings

log = structlog.get_logger("api.http")

_CODES = {400: "bad_request", 408: "request_timeout", 413: "payload_too_large", 431: "bad_request", 500: "internal_error"}
_PLAIN_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store", "Server": "aftersales"}


def handler_args(settings: Settings) -> dict[str, Any]:
    """What every connection's handler is built with (also under aiohttp's test server).

    aiohttp's keep-alive timer starts when a connection opens and is not reset by incoming bytes, so
    it bounds how long the request line and headers may take to arrive (and how long an idle
    kept-alive connection stays open); the body's own deadline is ``api.middlewares.read_body``.
    """
    return {"keepalive_timeout": settings.http_header_timeout.total_seconds(), "lingering_time": 2.0}


class QuietRequestHandler(RequestHandler):
    def handle_error(
        self, request: BaseRequest, status: int = 500, exc: BaseException | None = None, message: str | None = None
    ) -> web.StreamResponse:
        if status >= 500:
            log.error("http_error", status=status, error=type(exc).__name__ if exc else None, exc_info=exc)
        else:
            # The message and the exception quote the raw request: neither is logged nor answered.
            log.info("bad_http_request", status=status, error=type(exc).__name__ if exc else None)
        if request.writer.output_size > 0:
            raise ConnectionError("the answer had started: the connection is broken")
        detail = "the request is not valid HTTP" if status < 500 else "something went wrong on our side"
        response = Problem(status, _CODES.get(status, "http_error"), detail).response(headers=_PLAIN_HEADERS)
        response.force_close()
        return response


class GatewayServer(web.Server):
    def __call__(self) -> RequestHandler:
        return QuietRequestHandler(self, loop=self._loop, **self._kwargs)


class GatewayRunner(web.AppRunner):
    """An ``AppRunner`` whose connections are handled by :class:`QuietRequestHandler`."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # The application builds a plain Server (Application._make_handler); ours only changes which
        # handler each connection gets, so the same object is re-classed rather than rebuilt.
        server.__class__ = GatewayServer
        return server


async def serve(app: web.Application, host: str, port: int, shutdown_timeout: float = 5.0) -> None:
    """Serve until SIGINT or SIGTERM; then stop accepting, finish in-flight requests, run the cleanups."""
    runner = GatewayRunner(app, access_log=None, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await web.TCPSite(runner, host, port).start()
        # Operators (and the launcher, and the chaos tests) learn from this line that it listens.
        log.info("gateway_listening", host=host, port=port)
        await stop.wait()
    finally:
        await runner.cleanup()
