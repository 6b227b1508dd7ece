"""A supplier that speaks HTTP, as a real adapter does (``AFTERSALES_SUPPLIER=tests.e2e.traced_supplier:build``):
each cancel is first announced to ``AFTERSALES_TEST_AIRLINE_URL`` with the call's ``traceparent``
(``config.telemetry.outgoing_headers``), then done by the sandbox supplier."""

from __future__ import annotations

import os
from typing import Any

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine

from config.settings import Settings
from config.telemetry import outgoing_headers
from sandbox.airline import SandboxSupplier
from sandbox.airline import build as build_sandbox


class TracedSupplier:
    def __init__(self, inner: SandboxSupplier, airline_url: str) -> None:
        self._inner = inner
        self._airline_url = airline_url

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def cancel_product(self, product_id: str, flow_code: str, traveller_ids: list[str] | None = None) -> None:
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{self._airline_url}/airline/cancel", json={"product_id": product_id},
                                 headers=outgoing_headers()) as answer:
                answer.raise_for_status()
        await self._inner.cancel_product(product_id, flow_code, traveller_ids)


def build(settings: Settings, engine: AsyncEngine) -> TracedSupplier:
    return TracedSupplier(build_sandbox(settings, engine), os.environ["AFTERSALES_TEST_AIRLINE_URL"])
