"""The one shape of a background sweep: the gateway's flow-start reconciler and the worker's outbox
dispatcher both run in it (docs/flows.md#how-a-flow-starts, docs/triggers.md#delivery)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

import structlog

log = structlog.get_logger("services.sweeps")


async def sweep_forever(
    sweep: Callable[[], Awaitable[int]], *, name: str, every: timedelta, stop: asyncio.Event, full_batch: int | None
) -> None:
    """Run ``sweep`` (which answers how many rows it handled) until ``stop`` is set.

    A sweep that handled ``full_batch`` rows has more waiting and sweeps again at once; ``None``:
    always wait, for a sweep that finds the same rows again until they move on their own (the
    reconciler's unstarted flows), which must not spin. A failure (the database or Temporal away) is
    logged and waited out like a quiet round: the next sweep tries again.
    """
    while not stop.is_set():
        handled = 0
        try:
            handled = await sweep()
        except Exception as exc:
            log.warning("sweep_failed", sweep=name, error=type(exc).__name__, detail=str(exc)[:200])
        if full_batch is not None and handled >= full_batch:
            continue
        try:
            await asyncio.wait_for(stop.wait(), every.total_seconds())
        except TimeoutError:
            pass
