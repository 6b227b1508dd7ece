"""Waiting with a deadline: a durable timer raced against a condition the flow's handlers set."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from temporalio import workflow


async def wait_until(condition: Callable[[], bool], limit: timedelta | datetime, summary: str) -> bool:
    """Wait for ``condition`` until ``limit`` (a timeout, or a deadline); False when the time ran out."""
    timeout = limit - workflow.now() if isinstance(limit, datetime) else limit
    if timeout <= timedelta(0):
        return condition()
    try:
        await workflow.wait_condition(condition, timeout=timeout, timeout_summary=summary)
    except TimeoutError:
        return False
    return True
