"""A real partner webhook on 127.0.0.1 that checks every signature, for trigger delivery tests."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import web

from domain.signature import SIGNATURE_HEADER, verify


@dataclass
class Received:
    body: dict[str, Any]
    signed: bool
    content_type: str
    # The delivery byte for byte, and its signature header, as a partner's receiver gets them.
    raw: bytes = b""
    signature: str = ""
    # Every header of the request (the traceparent a delivery sends, for the trace test).
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class WebhookReceiver:
    """Answers 500 to the first ``failures`` requests (all of them when None), then 200; 401 when unsigned."""

    secret: str
    failures: int | None = 0
    received: list[Received] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def __aenter__(self) -> WebhookReceiver:
        app = web.Application()
        app.router.add_post("/hooks/aftersales", self._receive)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}/hooks/aftersales"
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def _receive(self, request: web.Request) -> web.Response:
        raw = await request.read()
        header = request.headers.get(SIGNATURE_HEADER, "")
        signed = verify(self.secret, header, raw, 300, time.time())
        self.received.append(Received(json.loads(raw), signed, request.content_type, raw, header,
                                      dict(request.headers)))
        async with self._arrived:
            self._arrived.notify_all()
        if not signed:
            return web.Response(status=401)
        if self.failures is None or len(self.received) <= self.failures:
            return web.Response(status=500)
        return web.Response(status=200)

    async def until(self, arrived: Callable[[], object], timeout: float) -> None:
        """Wait, at most ``timeout`` seconds, until ``arrived()`` holds of what was received."""
        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(arrived), timeout)

    def event_types(self) -> list[str]:
        return [r.body["type"] for r in self.received]
