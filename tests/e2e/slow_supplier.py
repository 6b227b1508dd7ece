"""A supplier for worker-process tests (``AFTERSALES_SUPPLIER=tests.e2e.slow_supplier:build``): the sandbox
supplier, whose cancel takes ``AFTERSALES_SANDBOX_SUPPLIER_DELAY`` and says on stdout when it starts and
ends, so a test can act while the call is in flight and see whether it finished."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from config.settings import Settings
from sandbox.airline import SandboxSupplier
from sandbox.airline import build as build_sandbox

CANCEL_STARTED = "slow_supplier_cancel_started"
CANCEL_FINISHED = "slow_supplier_cancel_finished"


class SlowSupplier:
    def __init__(self, inner: SandboxSupplier, delay: timedelta) -> None:
        self._inner = inner
        self._delay = delay

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def cancel_product(self, product_id: str, flow_code: str, traveller_ids: list[str] | None = None) -> None:
        print(f"{CANCEL_STARTED} {flow_code}", flush=True)
        await asyncio.sleep(self._delay.total_seconds())
        await self._inner.cancel_product(product_id, flow_code, traveller_ids)
        print(f"{CANCEL_FINISHED} {flow_code}", flush=True)


def build(settings: Settings, engine: AsyncEngine) -> SlowSupplier:
    return SlowSupplier(build_sandbox(settings, engine), settings.sandbox_supplier_delay)
