"""Real partner webhooks on 127.0.0.1 for trigger delivery tests: one that checks every signature, one that hangs."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import web

from domain.signature import SIGNATURE_HEADER, verify
from tests.local_server import serve_locally


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
        self._runner, base = await serve_locally(app)
        self.url = f"{base}/hooks/aftersales"
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


@dataclass
class HangingReceiver:
    """A partner's webhook on 127.0.0.1 that reads each delivery and does not answer until released (at the
    latest when the test ends, with 503). A request whose client gave up (its attempt timed out) stops
    counting as in flight."""

    arrived: Counter[str] = field(default_factory=Counter)  # requests per event id
    first_arrival: dict[str, float] = field(default_factory=dict)  # event id -> loop time of its first request
    in_flight: int = 0
    most_in_flight: int = 0
    url: str = ""
    _release: asyncio.Event = field(default_factory=asyncio.Event)
    _status: int = 503
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _runner: web.AppRunner | None = None

    async def __aenter__(self) -> HangingReceiver:
        app = web.Application()
        app.router.add_post("/hooks/aftersales", self._hang)
        # Cancel a handler whose client went away, so in_flight counts only requests still waiting.
        self._runner, base = await serve_locally(app, handler_cancellation=True)
        self.url = f"{base}/hooks/aftersales"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release(503)
        assert self._runner is not None
        await self._runner.cleanup()

    def release(self, status: int) -> None:
        """Answer every request held, and every later one, with ``status``."""
        self._status = status
        self._release.set()

    async def _hang(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.arrived[body["id"]] += 1
        self.first_arrival.setdefault(body["id"], asyncio.get_running_loop().time())
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await self._notify()
        try:
            await self._release.wait()
        finally:
            self.in_flight -= 1
        return web.Response(status=self._status)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def until(self, holds: Callable[[], bool], timeout: float = 60) -> None:
        """Wait, at most ``timeout`` seconds, until ``holds()``."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(holds), timeout)
