"""A test's own HTTP server on 127.0.0.1 (a partner's webhook, an airline, a trace collector)."""

from __future__ import annotations

from typing import Any

from aiohttp import web


async def serve_locally(app: web.Application, **runner_options: Any) -> tuple[web.AppRunner, str]:
    """``app`` served on 127.0.0.1 at a free port: its runner (to ``cleanup()``) and its base URL."""
    runner = web.AppRunner(app, **runner_options)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"
