"""Bounded waits for what a test observes, one of each kind, so tests never sleep to wait.

- Where the thing offers a wait, wait on it: a workflow's result, its history (``history_event``, long-polled
  by the server), an in-memory fake's condition (``tests.workflows.fakes.InMemoryStore.wait_for``), a fake
  receiver's condition.
- Where it does not (what another process wrote: the gateway's answers, the database, a workflow's query),
  ask again until it answers (``eventually``): every ask is the thing itself, and the bound fails the test
  with what was waited for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle

T = TypeVar("T")
# Between two asks of a process that has nothing to wait on: short against any bound, long enough
# not to keep a server busy.
ASK_EVERY_S = 0.05


async def eventually(ask: Callable[[], Awaitable[T | None]], bound_s: float, what: str) -> T:
    """The first answer of ``ask`` that is not None, asked again every ``ASK_EVERY_S`` until then; fails
    naming ``what`` once ``bound_s`` seconds have passed without one."""
    try:
        async with asyncio.timeout(bound_s):
            while (answer := await ask()) is None:
                await asyncio.sleep(ASK_EVERY_S)
            return answer
    except TimeoutError:
        raise AssertionError(f"not within {bound_s:g} s: {what}") from None


async def history_event(handle: WorkflowHandle[Any, Any], event_type: EventType.ValueType, bound_s: float) -> None:
    """Until the workflow's history holds an event of ``event_type``, long-polled on a dev server (within
    ``bound_s``); fails if the workflow closes without it. Not on the time-skipping server, whose long
    poll does not answer new events: ask its history again with :func:`eventually` there."""
    async with asyncio.timeout(bound_s):
        async for event in handle.fetch_history_events(wait_new_event=True):
            if event.event_type == event_type:
                return
    raise AssertionError(f"{handle.id} closed without a {EventType.Name(event_type)}")
