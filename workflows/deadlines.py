"""Waiting with a deadline: a durable timer raced against a condition the flow's handlers set."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from temporalio import workflow


async def wait_until(condition: Callable[[], bool], deadline: datetime, summary: str) -> bool:
    """Wait for ``condition`` until ``deadline``; False when the time ran out.

    A deadline, not a duration: the flow waits until the instant it showed, however long it took
    to get here (recording the move that shows it, a busy worker)."""
    timeout = deadline - workflow.now()
    if timeout <= timedelta(0):
        return condition()
    try:
        await workflow.wait_condition(condition, timeout=timeout, timeout_summary=summary)
    except TimeoutError:
        return False
    return True
